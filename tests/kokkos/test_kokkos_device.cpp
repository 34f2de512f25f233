// The Kokkos backend on a device execution space: Kokkos::DefaultExecutionSpace of a Kokkos built
// with CUDA or HIP (tests/kokkos/CMakeLists.txt builds this only then). Every verb over views in
// the device's memory space, through the portable kernels (ssb/detail/kokkos_portable.hpp):
//   - the weights are the serial backend's bits (the segment walk has no product to contract);
//   - every other output agrees with the serial reference normwise, max|got - ref| <= tol
//     max|ref| with tol = 1e-4 (float) or 1e-12 (double): the device compiler contracts
//     multiply-adds, the host build may not, and a wrong index or term is off by O(1);
//   - a second run (with (N, 1, H, W) saliency views) gives the same bits (no atomics);
//   - a bad saliency value throws the host backends' ssb::error and leaves the workspace as it
//     was.
// The NCHW reference of d_weights and d_saliency is serial's on the same maps stored NHWC
// (ktest::serial_reference).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kokkos_support.hpp"

using test::Layout;

namespace {

using namespace ktest;
using Space = Kokkos::DefaultExecutionSpace;
using Memory = Space::memory_space;

template <class T>
void check_close(const char* what, const std::vector<T>& got, const std::vector<T>& ref,
                 double tol) {
  REQUIRE(got.size() == ref.size());
  double scale = 0.0, err = 0.0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::fabs(double(ref[i])));
    const double d = std::fabs(double(got[i]) - double(ref[i]));
    err = std::isnan(d) ? std::numeric_limits<double>::infinity() : std::max(err, d);
  }
  INFO(what << ": max |got - ref| " << err << ", max |ref| " << scale);
  CHECK(err <= tol * scale);
}

template <class T>
void check_device_against_serial(double tol) {
  std::mt19937 rng(1234);
  std::vector<test::Shape> shapes = test::test_shapes(rng, 6);
  shapes.push_back({4, 28, 28, 64, 16, 16});
  shapes.push_back({2, 14, 14, 37, 8, 8});
  shapes.push_back({1, 5, 7, 3, 12, 11});  // zooming in
  for (const auto& sh : shapes) {
    for (Layout layout : {Layout::nhwc, Layout::nchw}) {
      CAPTURE(test::describe(sh.n, sh.h, sh.w, sh.c, sh.hr, sh.wr, layout));
      const Inputs<T> in = random_inputs<T>(rng, sh, layout);
      const Outputs<T> ref = serial_reference<Space>(in);
      const Outputs<T> got = run_views(Space(), in, false);
      CHECK(test::bitwise_equal(got.gy, ref.gy));
      CHECK(test::bitwise_equal(got.gx, ref.gx));
      check_close("xr", got.xr, ref.xr, tol);
      check_close("z", got.z, ref.z, tol);
      check_close("d_x", got.dx, ref.dx, tol);
      check_close("d_y", got.dy, ref.dy, tol);
      check_close("d_weights", got.dw, ref.dw, tol);
      check_close("d_saliency", got.ds, ref.ds, tol);
      CHECK(bitwise_equal_outputs(got, run_views(Space(), in, true)));
    }
  }
}

}  // namespace

TEST_CASE("Kokkos device space: every verb on device views agrees with serial, reproducibly") {
  static_assert(ssb::detail::kokkos_portable<Space>(), "a device space takes the portable path");
  MESSAGE("execution space " << std::string(Space::name()));
  check_device_against_serial<float>(1e-4);
  check_device_against_serial<double>(1e-12);
}

TEST_CASE("Kokkos device space: a bad saliency value throws and writes nothing") {
  using T = float;
  const int n = 3, h = 5, w = 6, hr = 3, wr = 4;
  test::Saliency<T> sal(n, h, w, T(1));
  sal.at(1, 2, 3) = std::numeric_limits<T>::quiet_NaN();
  const auto s = saliency_view<Memory>(sal, false).first;
  Kokkos::View<unsigned char*, Memory> workspace("workspace",
                                                 ssb::workspace_size<T>(n, h, w, hr, wr));
  Kokkos::deep_copy(workspace, static_cast<unsigned char>(0xA5));
  const auto weights = ssb::weights_view<T>(workspace, n, h, w, hr, wr);
  std::string message;
  try {
    ssb::compute_weights(Space(), s, hr, wr, weights);
  } catch (const ssb::error& e) {
    message = e.what();
  }
  CHECK(message.find("ssb::compute_weights: saliency[n=1, h=2, w=3] is nan") != std::string::npos);
  const std::vector<unsigned char> bytes = values(workspace);
  CHECK(std::all_of(bytes.begin(), bytes.end(), [](unsigned char b) { return b == 0xA5; }));
}
