// The Kokkos backend's own checks, on every enabled execution space (SSB_TEST_BACKENDS):
//   - every verb on Kokkos::View arguments (NHWC and NCHW, rank-3 and rank-4 saliency) returns
//     the raw-pointer serial backend's bits;
//   - the raw-pointer verbs on the space return the serial bits too, forked on every launch
//     (SSB_KOKKOS_MIN_WORK 0), at the thread count Kokkos was initialised with (OMP_NUM_THREADS;
//     CTest runs this case at 1, 2 and 4 threads in separate processes);
//   - every kernel is a Kokkos::parallel_for labelled with its verb;
//   - views the backend cannot read as NHWC/NCHW/N x H x W are refused at run time with
//     ssb::error (non-contiguous LayoutStride subviews, a rank-4 saliency with C != 1, a small
//     workspace), contiguous LayoutStride subviews are accepted, and empty views skip outputs.
// LayoutLeft views and views in a memory space the execution space cannot access are refused at
// compile time: compile_fail.cpp, built by CTest (tests/CMakeLists.txt).
#include <algorithm>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kokkos_support.hpp"

using test::Layout;

namespace {

using namespace ktest;

template <class T>
using View4 = DeviceView4<T, Kokkos::HostSpace>;

template <class T, class Space>
void check_views_equal_serial() {
  std::mt19937 rng(97);
  std::vector<test::Shape> shapes = test::test_shapes(rng, 3);
  shapes.push_back({3, 28, 28, 64, 16, 16});
  for (const auto& sh : shapes) {
    for (Layout layout : {Layout::nhwc, Layout::nchw}) {
      CAPTURE(test::describe(sh.n, sh.h, sh.w, sh.c, sh.hr, sh.wr, layout));
      const Inputs<T> in = random_inputs<T>(rng, sh, layout);
      const Outputs<T> reference = serial_reference<Space>(in);
      CHECK(bitwise_equal_outputs(reference, run_views(Space{}, in, false)));
      CHECK(bitwise_equal_outputs(reference, run_views(Space{}, in, true)));
    }
  }
}

template <class T, class Space>
void check_raw_equal_serial() {
  std::mt19937 rng(41);
  std::vector<test::Shape> shapes = test::test_shapes(rng, 6);
  shapes.push_back({4, 28, 28, 64, 16, 16});
  shapes.push_back({1, 14, 14, 37, 8, 8});
  for (const auto& sh : shapes) {
    for (Layout layout : {Layout::nhwc, Layout::nchw}) {
      CAPTURE(test::describe(sh.n, sh.h, sh.w, sh.c, sh.hr, sh.wr, layout));
      const Inputs<T> in = random_inputs<T>(rng, sh, layout);
      CHECK(bitwise_equal_outputs(serial_reference<Space>(in), run_raw(Space{}, in)));
    }
  }
}

// The labels of the parallel_for kernels launched while a callback is installed.
std::vector<std::string>* recorded_labels = nullptr;

void record_label(const char* name, const std::uint32_t, std::uint64_t* id) {
  if (recorded_labels != nullptr) recorded_labels->push_back(name);
  *id = 0;
}

}  // namespace

TEST_CASE_TEMPLATE("Kokkos views: every verb gives the raw-pointer serial bits (NHWC, NCHW)", Space,
                   SSB_TEST_BACKENDS) {
  check_views_equal_serial<float, Space>();
  check_views_equal_serial<double, Space>();
}

TEST_CASE_TEMPLATE("Kokkos spaces equal serial bit for bit at this thread count, forked", Space,
                   SSB_TEST_BACKENDS) {
  INFO("concurrency " << Space().concurrency());
  MESSAGE(std::string(Space::name()) << ": concurrency " << Space().concurrency());
  check_raw_equal_serial<float, Space>();
  check_raw_equal_serial<double, Space>();
}

TEST_CASE_TEMPLATE("Kokkos kernels are labelled with their verb", Space, SSB_TEST_BACKENDS) {
  std::mt19937 rng(5);
  const Inputs<float> in = random_inputs<float>(rng, {2, 9, 7, 5, 4, 3}, Layout::nhwc);
  for (const bool views : {false, true}) {
    CAPTURE(views);
    std::vector<std::string> labels;
    recorded_labels = &labels;
    Kokkos::Tools::Experimental::set_begin_parallel_for_callback(record_label);
    if (views) {
      run_views(Space{}, in, false);
    } else {
      run_raw(Space{}, in);
    }
    Kokkos::Tools::Experimental::set_begin_parallel_for_callback(nullptr);
    recorded_labels = nullptr;
    std::set<std::string> seen;
    for (const std::string& label : labels) {
      // The tests' own View allocations initialise their views with Kokkos kernels.
      if (label.rfind("Kokkos::View::initialization", 0) == 0) continue;
      INFO(label);
      CHECK(label.rfind("ssb::", 0) == 0);
      seen.insert(label);
    }
    for (const char* verb :
         {"ssb::compute_weights", "ssb::sample", "ssb::sample_inverse", "ssb::sample_backward",
          "ssb::sample_inverse_backward", "ssb::compute_weights_backward"}) {
      INFO(verb);
      CHECK(seen.count(verb) == 1);
    }
  }
}

TEST_CASE_TEMPLATE(
    "Kokkos views that are not contiguous row-major, or the wrong shape, are refused", Space,
    SSB_TEST_BACKENDS) {
  const Space space{};
  const int n = 2, h = 6, w = 5, c = 3, hr = 4, wr = 3;
  Kokkos::View<double***, Kokkos::HostSpace> s("s", n, h, w);
  Kokkos::deep_copy(s, 1.0);
  Kokkos::View<double*, Kokkos::HostSpace> workspace("workspace",
                                                     ssb::workspace_size<double>(n, h, w, hr, wr));
  const auto weights = ssb::weights_view<double>(workspace, n, h, w, hr, wr);
  ssb::compute_weights(space, s, hr, wr, weights);

  // A contiguous LayoutStride subview (whole images) is accepted and read like the full view.
  View4<double> x("x", n, h, w, c), xr("xr", n, hr, wr, c), xr_ref("xr_ref", n, hr, wr, c);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = double(i % 7) - 3.0;
  ssb::sample(space, weights, x, xr_ref);
  Kokkos::View<double****, Kokkos::LayoutStride, Kokkos::HostSpace> x_strided =
      Kokkos::subview(x, Kokkos::ALL, Kokkos::ALL, Kokkos::ALL, Kokkos::ALL);
  ssb::sample(space, weights, x_strided, xr);
  CHECK(test::bitwise_equal(values(xr), values(xr_ref)));

  // Channels 0..1 of 3: not contiguous.
  View4<double> x4("x4", n, h, w, c + 1);
  const auto x_sliced =
      Kokkos::subview(x4, Kokkos::ALL, Kokkos::ALL, Kokkos::ALL, std::make_pair(0, c));
  Kokkos::deep_copy(xr, -1.0);
  CHECK_THROWS_WITH_AS(ssb::sample(space, weights, x_sliced, xr),
                       doctest::Contains("ssb::sample: x must be a contiguous row-major view"),
                       ssb::error);
  CHECK(std::all_of(xr.data(), xr.data() + xr.size(), [](double v) { return v == -1.0; }));

  // The same view read as NCHW has the wrong grid.
  CHECK_THROWS_WITH_AS(ssb::sample(space, weights, x, xr, Layout::nchw),
                       doctest::Contains("ssb::sample: x is"), ssb::error);

  // Rank-4 saliency must be (N, 1, H, W).
  Kokkos::View<double****, Kokkos::HostSpace> s2("s2", n, 2, h, w);
  CHECK_THROWS_WITH_AS(ssb::compute_weights(space, s2, hr, wr, weights),
                       doctest::Contains("saliency is a rank-4 view with extent(1) = 2"),
                       ssb::error);

  // A workspace too small for the weights.
  Kokkos::View<char*, Kokkos::HostSpace> small("small", 16);
  CHECK_THROWS_WITH_AS(ssb::weights_view<double>(small, n, h, w, hr, wr),
                       doctest::Contains("ssb::weights_view: workspace too small"), ssb::error);

  // Weight gradients of the wrong length.
  Kokkos::View<double*, Kokkos::HostSpace> short_grad("short", 3);
  CHECK_THROWS_WITH_AS(ssb::weights_grad_view(weights, short_grad),
                       doctest::Contains("ssb::weights_grad_view: buffer too small"), ssb::error);
}

TEST_CASE_TEMPLATE("Kokkos views: empty views skip optional outputs", Space, SSB_TEST_BACKENDS) {
  const Space space{};
  const int n = 1, h = 5, w = 4, c = 2, hr = 3, wr = 3;
  Kokkos::View<float***, Kokkos::HostSpace> s("s", n, h, w);
  Kokkos::deep_copy(s, 2.0f);
  Kokkos::View<std::byte*, Kokkos::HostSpace> workspace(
      "workspace", ssb::workspace_size<float>(n, h, w, hr, wr));
  const auto weights = ssb::weights_view<float>(workspace, n, h, w, hr, wr);
  ssb::compute_weights(space, s, hr, wr, weights);
  View4<float> x("x", n, h, w, c), d_xr("d_xr", n, hr, wr, c), d_x("d_x", n, h, w, c);
  Kokkos::deep_copy(x, 1.0f);
  Kokkos::deep_copy(d_xr, 1.0f);
  Kokkos::View<float*, Kokkos::HostSpace> grad("d_weights", ssb::weights_grad_size(weights));
  // d_x only, then d_weights only.
  CHECK_NOTHROW(ssb::sample_backward(space, weights, x, d_xr, d_x, ssb::WeightsGrad<float>{}));
  CHECK(d_x(0, 0, 0, 0) != 0.0f);
  CHECK_NOTHROW(ssb::sample_backward(space, weights, x, d_xr, View4<float>{},
                                     ssb::weights_grad_view(weights, grad)));
  CHECK(std::any_of(grad.data(), grad.data() + grad.size(), [](float v) { return v != 0.0f; }));
  // An ssb::HostWeightsGrad (host memory) is accepted too.
  ssb::HostWeightsGrad<float> host_grad(weights);
  ssb::sample_backward(space, weights, x, d_xr, View4<float>{}, host_grad);
  CHECK(test::bitwise_equal(host_grad.values(), values(grad)));
  // A plain, non-empty WeightsGrad carries no memory space: refused on the View overloads.
  std::vector<float> raw(ssb::weights_grad_size(weights));
  CHECK_THROWS_WITH_AS(
      ssb::sample_backward(space, weights, x, d_xr, d_x,
                           ssb::weights_grad_view(static_cast<const ssb::Weights<float>&>(weights),
                                                  raw.data(), raw.size())),
      doctest::Contains("d_weights is a plain ssb::WeightsGrad"), ssb::error);
}
