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
#include <vector>

#include "support.hpp"

using test::Layout;

namespace {

// Every output of every verb for one problem.
template <class T>
struct Outputs {
  std::vector<T> gy, gx, xr, z, dx, dy, dw, ds;
};

template <class T>
bool bitwise_equal_outputs(const Outputs<T>& a, const Outputs<T>& b) {
  return test::bitwise_equal(a.gy, b.gy) && test::bitwise_equal(a.gx, b.gx) &&
         test::bitwise_equal(a.xr, b.xr) && test::bitwise_equal(a.z, b.z) &&
         test::bitwise_equal(a.dx, b.dx) && test::bitwise_equal(a.dy, b.dy) &&
         test::bitwise_equal(a.dw, b.dw) && test::bitwise_equal(a.ds, b.ds);
}

template <class T>
struct Inputs {
  test::Saliency<T> s;
  test::Tensor<T> x, y, dxr, dz;
};

template <class T>
Inputs<T> random_inputs(std::mt19937& rng, const test::Shape& sh, Layout layout) {
  return {test::spiky_saliency<T>(rng, sh.n, sh.h, sh.w),
          test::random_tensor<T>(rng, sh.n, sh.h, sh.w, sh.c, layout),
          test::random_tensor<T>(rng, sh.n, sh.hr, sh.wr, sh.c, layout),
          test::random_tensor<T>(rng, sh.n, sh.hr, sh.wr, sh.c, layout),
          test::random_tensor<T>(rng, sh.n, sh.h, sh.w, sh.c, layout)};
}

// The raw-pointer verbs on any backend.
template <class T, class Exec>
Outputs<T> run_raw(const Exec& exec, const Inputs<T>& in) {
  Outputs<T> o;
  const auto w = test::weights_for(exec, in.s, in.y.h, in.y.w);
  const auto d = ssb::dense::to_dense(w);
  o.gy = d.gy, o.gx = d.gx;
  o.xr = test::sampled(exec, w, in.x).data;
  o.z = test::inverse_sampled(exec, w, in.y).data;
  test::Tensor<T> dx(in.x.n, in.x.h, in.x.w, in.x.c, in.x.layout);
  test::Tensor<T> dy(in.y.n, in.y.h, in.y.w, in.y.c, in.y.layout);
  ssb::HostWeightsGrad<T> dw(w);
  ssb::sample_backward(exec, w, in.x.cview(), in.dxr.cview(), dx.view(), dw);
  ssb::sample_inverse_backward(exec, w, in.y.cview(), in.dz.cview(), dy.view(), dw);
  test::Saliency<T> ds(in.s.n, in.s.h, in.s.w);
  ssb::compute_weights_backward(exec, in.s.view(), w, dw, ds.mut());
  o.dx = dx.data, o.dy = dy.data, o.dw = dw.values(), o.ds = ds.data;
  return o;
}

template <class T>
using View4 = Kokkos::View<T****, Kokkos::LayoutRight, Kokkos::HostSpace>;

// A LayoutRight view holding a tensor: extents (N, H, W, C) for NHWC, (N, C, H, W) for NCHW,
// the same memory order as the tensor.
template <class T>
View4<T> to_view(const test::Tensor<T>& t, const std::string& label) {
  View4<T> v = t.layout == Layout::nhwc ? View4<T>(label, t.n, t.h, t.w, t.c)
                                        : View4<T>(label, t.n, t.c, t.h, t.w);
  std::memcpy(v.data(), t.data.data(), t.data.size() * sizeof(T));
  return v;
}

template <class V>
std::vector<typename V::non_const_value_type> values(const V& v) {
  return {v.data(), v.data() + v.size()};
}

// The same verbs on Kokkos views. rank4_saliency: (N, 1, H, W) saliency views instead of
// (N, H, W).
template <class T, class Space>
Outputs<T> run_views(const Space& space, const Inputs<T>& in, bool rank4_saliency) {
  const Layout layout = in.x.layout;
  const int n = in.s.n, h = in.s.h, w = in.s.w, hr = in.y.h, wr = in.y.w;
  Kokkos::View<T***, Kokkos::HostSpace> s3("s", n, h, w), ds3("ds", n, h, w);
  Kokkos::View<T****, Kokkos::HostSpace> s4("s", n, 1, h, w), ds4("ds", n, 1, h, w);
  std::memcpy(s3.data(), in.s.data.data(), in.s.data.size() * sizeof(T));
  std::memcpy(s4.data(), in.s.data.data(), in.s.data.size() * sizeof(T));
  Kokkos::View<std::byte*, Kokkos::HostSpace> workspace("workspace",
                                                        ssb::workspace_size<T>(n, h, w, hr, wr));
  const auto weights = ssb::weights_view<T>(workspace, n, h, w, hr, wr);
  if (rank4_saliency) {
    ssb::compute_weights(space, s4, hr, wr, weights);
  } else {
    ssb::compute_weights(space, s3, hr, wr, weights);
  }
  const View4<const T> x = to_view(in.x, "x"), y = to_view(in.y, "y");
  const View4<const T> dxr = to_view(in.dxr, "d_xr"), dz = to_view(in.dz, "d_z");
  View4<T> xr = to_view(in.y, "xr"), z = to_view(in.x, "z");
  View4<T> dx = to_view(in.x, "d_x"), dy = to_view(in.y, "d_y");
  ssb::sample(space, weights, x, xr, layout);
  ssb::sample_inverse(space, weights, y, z, layout);
  Kokkos::View<T*, Kokkos::HostSpace> grad("d_weights", ssb::weights_grad_size(weights));
  const auto d_weights = ssb::weights_grad_view(weights, grad);
  ssb::sample_backward(space, weights, x, dxr, dx, d_weights, layout);
  ssb::sample_inverse_backward(space, weights, y, dz, dy, d_weights, layout);
  if (rank4_saliency) {
    ssb::compute_weights_backward(space, s4, weights, d_weights, ds4);
  } else {
    ssb::compute_weights_backward(space, s3, weights, d_weights, ds3);
  }
  Outputs<T> o;
  const auto d = ssb::dense::to_dense(static_cast<const ssb::Weights<T>&>(weights));
  o.gy = d.gy, o.gx = d.gx;
  o.xr = values(xr), o.z = values(z), o.dx = values(dx), o.dy = values(dy);
  o.dw = values(grad);
  o.ds = rank4_saliency ? values(ds4) : values(ds3);
  return o;
}

template <class T, class Space>
void check_views_equal_serial() {
  std::mt19937 rng(97);
  std::vector<test::Shape> shapes = test::test_shapes(rng, 3);
  shapes.push_back({3, 28, 28, 64, 16, 16});
  for (const auto& sh : shapes) {
    for (Layout layout : {Layout::nhwc, Layout::nchw}) {
      CAPTURE(test::describe(sh.n, sh.h, sh.w, sh.c, sh.hr, sh.wr, layout));
      const Inputs<T> in = random_inputs<T>(rng, sh, layout);
      const Outputs<T> reference = run_raw(ssb::serial{}, in);
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
      CHECK(bitwise_equal_outputs(run_raw(ssb::serial{}, in), run_raw(Space{}, in)));
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
