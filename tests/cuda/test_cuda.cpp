// CUDA-only checks: device-pointer and saliency errors, bitwise determinism, the weights' bits
// against the serial backend, and half / bfloat16 storage against a float reference. (The shared
// test bodies run on the CUDA backend through test::cuda_mirror.)
#include <cmath>
#include <cstring>
#include <limits>

#include "support.hpp"

namespace {

test::ReducedInputs make_inputs(std::mt19937& rng, int n, int h, int w, int c, int hr, int wr) {
  test::ReducedInputs in;
  in.n = n, in.h = h, in.w = w, in.c = c, in.hr = hr, in.wr = wr;
  const auto s = test::smooth_saliency<float>(rng, n, h, w);
  in.saliency = s.data;
  in.x = test::random_tensor<float>(rng, n, h, w, c, test::Layout::nhwc).data;
  in.y = test::random_tensor<float>(rng, n, hr, wr, c, test::Layout::nhwc).data;
  in.d_xr = test::random_tensor<float>(rng, n, hr, wr, c, test::Layout::nhwc).data;
  in.d_z = test::random_tensor<float>(rng, n, h, w, c, test::Layout::nhwc).data;
  return in;
}

template <class T>
test::Tensor<T> tensor(const std::vector<T>& data, int n, int h, int w, int c,
                       test::Layout layout) {
  test::Tensor<T> t(n, h, w, c, layout);
  t.data = data;
  return t;
}

// `values` of an in.n x h x w x in.c map in layout `from`, in layout `to`.
std::vector<float> relayout_values(const test::ReducedInputs& in, const std::vector<float>& values,
                                   int h, int w, test::Layout from, test::Layout to) {
  return test::relayout(tensor(values, in.n, h, w, in.c, from), to).data;
}

// `in` (NHWC maps) with its four feature maps in `layout`.
test::ReducedInputs in_layout(const test::ReducedInputs& in, test::Layout layout) {
  const auto nhwc = test::Layout::nhwc;
  test::ReducedInputs out = in;
  out.x = relayout_values(in, in.x, in.h, in.w, nhwc, layout);
  out.y = relayout_values(in, in.y, in.hr, in.wr, nhwc, layout);
  out.d_xr = relayout_values(in, in.d_xr, in.hr, in.wr, nhwc, layout);
  out.d_z = relayout_values(in, in.d_z, in.h, in.w, nhwc, layout);
  return out;
}

// The serial float reference of one layer (the outputs of test::ReducedRun) on `in`.
test::ReducedRun serial_reference(const test::ReducedInputs& in) {
  const ssb::serial exec{};
  test::Saliency<float> s(in.n, in.h, in.w);
  s.data = in.saliency;
  ssb::HostWeights<float> w(in.n, in.h, in.w, in.hr, in.wr);
  ssb::compute_weights(exec, s.view(), in.hr, in.wr, w);
  const auto L = test::Layout::nhwc;
  const auto x = tensor(in.x, in.n, in.h, in.w, in.c, L);
  const auto y = tensor(in.y, in.n, in.hr, in.wr, in.c, L);
  const auto d_xr = tensor(in.d_xr, in.n, in.hr, in.wr, in.c, L);
  const auto d_z = tensor(in.d_z, in.n, in.h, in.w, in.c, L);
  test::Tensor<float> xr(in.n, in.hr, in.wr, in.c, L), z(in.n, in.h, in.w, in.c, L),
      d_x(in.n, in.h, in.w, in.c, L), d_y(in.n, in.hr, in.wr, in.c, L);
  ssb::HostWeightsGrad<float> dw(w);
  test::Saliency<float> ds(in.n, in.h, in.w);
  ssb::sample(exec, w, x.cview(), xr.view());
  ssb::sample_inverse(exec, w, y.cview(), z.view());
  ssb::sample_backward(exec, w, x.cview(), d_xr.cview(), d_x.view(), dw);
  ssb::sample_inverse_backward(exec, w, y.cview(), d_z.cview(), d_y.view(), dw);
  ssb::compute_weights_backward(exec, s.view(), w, dw, ds.mut());
  test::ReducedRun ref;
  ref.xr = xr.data, ref.z = z.data, ref.d_x = d_x.data, ref.d_y = d_y.data;
  ref.d_saliency = ds.data;
  ref.d_weights = dw.values();
  return ref;
}

// |got - ref| <= unit * |ref| (the rounding of the stored result) + k * eps(T) * scale (arithmetic
// in another order), with scale = max(|ref|, 1) elementwise, or max_j |ref_j| for `normwise`
// (sums that may cancel: the weight and saliency gradients).
template <class T>
void check_stored(const std::vector<T>& got, const std::vector<T>& ref, double unit, double k,
                  const char* what, bool normwise = false) {
  REQUIRE(got.size() == ref.size());
  const double eps = std::numeric_limits<T>::epsilon();
  double largest = 0.0;
  for (T r : ref) largest = std::max(largest, std::abs(double(r)));
  double worst = 0.0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double r = ref[i];
    const double excess = std::abs(double(got[i]) - r) - unit * std::abs(r);
    const double err = excess / (k * eps * (normwise ? largest : std::max(std::abs(r), 1.0)));
    if (!(err <= worst)) worst = err, at = i;
  }
  INFO(what << ": worst error " << worst << " of the bound at element " << at << " (got " << got[at]
            << ", expected " << ref[at] << ")");
  CHECK(worst <= 1.0);
}

}  // namespace

TEST_CASE("CUDA: host pointers are refused before anything runs") {
  const std::string message = test::cuda_host_pointer_message();
  CHECK(message.find("ssb::sample: x is not device-accessible memory") != std::string::npos);
}

TEST_CASE("CUDA: bad saliency is reported by check_weights_status and writes no segments") {
  for (float bad :
       {-1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    CAPTURE(bad);
    const auto result = test::cuda_bad_saliency(bad);
    CHECK(result.message.find("ssb::compute_weights: saliency[n=1, h=2, w=3]") !=
          std::string::npos);
    CHECK(result.segments_untouched);
  }
}

TEST_CASE(
    "CUDA: every verb is bitwise reproducible, and the weights are the serial backend's bits") {
  std::mt19937 rng(2022);
  // The second shape's maps take two tiles in the masses kernel, one of them not in 16-byte
  // packs, and its second image starts 8 bytes off a 16-byte boundary.
  for (const auto& shape :
       {std::vector<int>{5, 29, 23, 70, 12, 9}, std::vector<int>{2, 130, 97, 4, 72, 40}})
    for (test::Layout layout : {test::Layout::nhwc, test::Layout::nchw}) {
      CAPTURE(ssb::to_string(layout));
      CAPTURE(shape[1]);
      const auto in = make_inputs(rng, shape[0], shape[1], shape[2], shape[3], shape[4], shape[5]);
      const auto runs = test::cuda_pipeline_twice(in, layout);
      REQUIRE(runs.size() == 2);
      CHECK(runs[0].workspace == runs[1].workspace);
      CHECK(test::bitwise_equal(runs[0].xr, runs[1].xr));
      CHECK(test::bitwise_equal(runs[0].z, runs[1].z));
      CHECK(test::bitwise_equal(runs[0].d_x, runs[1].d_x));
      CHECK(test::bitwise_equal(runs[0].d_y, runs[1].d_y));
      CHECK(test::bitwise_equal(runs[0].d_weights, runs[1].d_weights));
      CHECK(test::bitwise_equal(runs[0].d_saliency, runs[1].d_saliency));

      // The weights: masses, totals and segments (everything before the gradient scratch).
      test::Saliency<float> s(in.n, in.h, in.w);
      s.data = in.saliency;
      ssb::HostWeights<float> host(in.n, in.h, in.w, in.hr, in.wr);
      ssb::compute_weights(ssb::serial{}, s.view(), in.hr, in.wr, host);
      const auto* base = static_cast<const unsigned char*>(host.workspace());
      const std::size_t made =
          std::size_t(reinterpret_cast<const unsigned char*>(host.gradient_scratch) - base);
      REQUIRE(runs[0].workspace.size() == host.workspace_bytes);
      CHECK(std::memcmp(runs[0].workspace.data(), base, made) == 0);
    }
}

TEST_CASE("CUDA: half and bfloat16 storage against a float reference on the rounded inputs") {
  std::mt19937 rng(16);
  struct Case {
    test::Storage storage;
    double unit;  // unit roundoff of the storage type
    const char* name;
  };
  for (const Case& c : {Case{test::Storage::half, std::ldexp(1.0, -11), "half"},
                        Case{test::Storage::bfloat16, std::ldexp(1.0, -8), "bfloat16"}}) {
    CAPTURE(c.name);
    const auto run = test::cuda_reduced_run(c.storage, make_inputs(rng, 3, 17, 14, 45, 7, 9));
    const auto ref = serial_reference(run.rounded);
    check_stored(run.xr, ref.xr, c.unit, 64, "sample");
    check_stored(run.z, ref.z, c.unit, 64, "sample_inverse");
    check_stored(run.d_x, ref.d_x, c.unit, 64, "d_x");
    check_stored(run.d_y, ref.d_y, c.unit, 64, "d_y");
    // Weight gradients stay in float (float weights): sums over channels in another order.
    check_stored(run.d_weights, ref.d_weights, 0.0, 256, "d_weights", true);
    check_stored(run.d_saliency, ref.d_saliency, c.unit, 256, "d_saliency", true);
  }
}

namespace {

// The mirror's device copies 8 bytes off 16-byte boundaries while it lives.
struct Misaligned {
  Misaligned() { test::set_mirror_offset(8); }
  ~Misaligned() { test::set_mirror_offset(0); }
  Misaligned(const Misaligned&) = delete;
  Misaligned& operator=(const Misaligned&) = delete;
};

// sample, sample_inverse and sample_backward of one NHWC problem through the mirror: the values
// and the weight gradients.
template <class T>
struct GatherRun {
  std::vector<T> xr, z, d_x, d_weights;
};
template <class T>
GatherRun<T> gather_run(const ssb::Weights<T>& w, const test::Tensor<T>& x,
                        const test::Tensor<T>& y) {
  const test::cuda_mirror exec{};
  GatherRun<T> run;
  run.xr = test::sampled(exec, w, x).data;
  run.z = test::inverse_sampled(exec, w, y).data;
  test::Tensor<T> d_x(x.n, x.h, x.w, x.c, x.layout);
  ssb::HostWeightsGrad<T> dw(w);
  ssb::sample_backward(exec, w, x.cview(), y.cview(), d_x.view(), dw);
  run.d_x = d_x.data;
  run.d_weights = dw.values();
  return run;
}

template <class T>
void check_packs_against_elements(std::mt19937& rng) {
  constexpr int pack = int(16 / sizeof(T));
  for (const test::Shape& s :
       {test::Shape{2, 28, 28, 16 * pack, 16, 16}, test::Shape{3, 9, 13, 3 * pack, 20, 7},
        test::Shape{1, 6, 5, pack, 6, 5}, test::Shape{2, 30, 17, 2 * pack, 5, 4},
        // few rows of many channels: rows split over several blocks
        test::Shape{1, 12, 10, 96 * pack, 5, 7}}) {
    CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, test::Layout::nhwc));
    const auto w = test::weights_for(test::cuda_mirror{},
                                     test::smooth_saliency<T>(rng, s.n, s.h, s.w), s.hr, s.wr);
    const auto x = test::random_tensor<T>(rng, s.n, s.h, s.w, s.c, test::Layout::nhwc);
    const auto y = test::random_tensor<T>(rng, s.n, s.hr, s.wr, s.c, test::Layout::nhwc);
    const GatherRun<T> packed = gather_run(w, x, y);
    GatherRun<T> elements;
    {
      const Misaligned off;
      elements = gather_run(w, x, y);
    }
    CHECK(test::bitwise_equal(packed.xr, elements.xr));
    CHECK(test::bitwise_equal(packed.z, elements.z));
    CHECK(test::bitwise_equal(packed.d_x, elements.d_x));
    // The pair dots sum the channels in another (fixed) order on each path.
    test::check_close(packed.d_weights, elements.d_weights, 64.0 * s.c, "d_weights");
  }
}

}  // namespace

TEST_CASE("CUDA: the NHWC 16-byte pack path gives the per-element path's bits") {
  std::mt19937 rng(31);
  check_packs_against_elements<float>(rng);
  check_packs_against_elements<double>(rng);
  // half: packs of 8, float arithmetic.
  const auto in = make_inputs(rng, 2, 12, 10, 48, 7, 6);
  const auto packed = test::cuda_reduced_run(test::Storage::half, in);
  test::ReducedRun elements;
  {
    const Misaligned off;
    elements = test::cuda_reduced_run(test::Storage::half, in);
  }
  CHECK(test::bitwise_equal(packed.xr, elements.xr));
  CHECK(test::bitwise_equal(packed.z, elements.z));
  CHECK(test::bitwise_equal(packed.d_x, elements.d_x));
  CHECK(test::bitwise_equal(packed.d_y, elements.d_y));
  check_stored(packed.d_weights, elements.d_weights, 0.0, 256, "d_weights", true);
}

namespace {

// Every sampler verb of one problem through the mirror, in `layout`, returned in NHWC: the values
// and data gradients, and the weight gradients of sample_backward and sample_inverse_backward.
template <class T>
struct LayerRun {
  std::vector<T> xr, z, d_x, d_y, dw_forward, dw_inverse;
};
template <class T>
LayerRun<T> layer_run(const ssb::Weights<T>& w, const test::Tensor<T>& x, const test::Tensor<T>& y,
                      test::Layout layout) {
  const test::cuda_mirror exec{};
  const auto nhwc = [](const test::Tensor<T>& t) {
    return test::relayout(t, test::Layout::nhwc).data;
  };
  const auto xl = test::relayout(x, layout), yl = test::relayout(y, layout);
  LayerRun<T> run;
  run.xr = nhwc(test::sampled(exec, w, xl));
  run.z = nhwc(test::inverse_sampled(exec, w, yl));
  test::Tensor<T> d_x(x.n, x.h, x.w, x.c, layout), d_y(y.n, y.h, y.w, y.c, layout);
  ssb::HostWeightsGrad<T> forward(w), inverse(w);
  ssb::sample_backward(exec, w, xl.cview(), yl.cview(), d_x.view(), forward);
  ssb::sample_inverse_backward(exec, w, yl.cview(), xl.cview(), d_y.view(), inverse);
  run.d_x = nhwc(d_x);
  run.d_y = nhwc(d_y);
  run.dw_forward = forward.values();
  run.dw_inverse = inverse.values();
  return run;
}

template <class T>
void check_planes_against_nhwc(std::mt19937& rng) {
  for (const test::Shape& s :
       {test::Shape{2, 28, 28, 37, 16, 16},   // few tasks: one plane each
        test::Shape{2, 5, 5, 3001, 3, 3},     // several planes per task, the last one short
        test::Shape{1, 100, 120, 3, 70, 90},  // planes split into blocks of rows, both ways
        test::Shape{3, 9, 13, 5, 20, 7}}) {   // zooming in along y
    CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, test::Layout::nchw));
    const auto w = test::weights_for(test::cuda_mirror{},
                                     test::smooth_saliency<T>(rng, s.n, s.h, s.w), s.hr, s.wr);
    const auto x = test::random_tensor<T>(rng, s.n, s.h, s.w, s.c, test::Layout::nhwc);
    const auto y = test::random_tensor<T>(rng, s.n, s.hr, s.wr, s.c, test::Layout::nhwc);
    const LayerRun<T> planes = layer_run(w, x, y, test::Layout::nchw);
    const LayerRun<T> pixels = layer_run(w, x, y, test::Layout::nhwc);
    LayerRun<T> shifted;  // device copies 8 bytes off 16-byte boundaries: the same kernels
    {
      const Misaligned off;
      shifted = layer_run(w, x, y, test::Layout::nchw);
    }
    CHECK(test::bitwise_equal(shifted.xr, planes.xr));
    CHECK(test::bitwise_equal(shifted.z, planes.z));
    CHECK(test::bitwise_equal(shifted.d_x, planes.d_x));
    CHECK(test::bitwise_equal(shifted.d_y, planes.d_y));
    CHECK(test::bitwise_equal(shifted.dw_forward, planes.dw_forward));
    CHECK(test::bitwise_equal(shifted.dw_inverse, planes.dw_inverse));
    CHECK(test::bitwise_equal(planes.xr, pixels.xr));
    CHECK(test::bitwise_equal(planes.z, pixels.z));
    CHECK(test::bitwise_equal(planes.d_x, pixels.d_x));
    CHECK(test::bitwise_equal(planes.d_y, pixels.d_y));
    // The pair dots sum the channels in another (fixed) order on each layout, and the weight
    // gradients add many of them with both signs.
    check_stored(planes.dw_forward, pixels.dw_forward, 0.0, 64.0 * s.c, "d_weights of sample",
                 true);
    check_stored(planes.dw_inverse, pixels.dw_inverse, 0.0, 64.0 * s.c,
                 "d_weights of sample_inverse", true);
  }
}

}  // namespace

TEST_CASE("CUDA: the NCHW plane kernels give the NHWC kernels' values") {
  std::mt19937 rng(47);
  check_planes_against_nhwc<float>(rng);
  check_planes_against_nhwc<double>(rng);
  // half, both layouts: the data paths' bits agree. The second shape's planes hold an odd number
  // of values (63, 15), so that copies of inverse gathers start at every 2-byte offset.
  for (const test::Shape& shape :
       {test::Shape{2, 12, 10, 48, 7, 6}, test::Shape{2, 9, 7, 40, 5, 3}}) {
    const auto in = make_inputs(rng, shape.n, shape.h, shape.w, shape.c, shape.hr, shape.wr);
    CAPTURE(test::describe(in.n, in.h, in.w, in.c, in.hr, in.wr, test::Layout::nchw));
    const auto to_nhwc = [&](const std::vector<float>& v, int h, int w) {
      return relayout_values(in, v, h, w, test::Layout::nchw, test::Layout::nhwc);
    };
    const auto pixels = test::cuda_reduced_run(test::Storage::half, in);
    const auto planes = test::cuda_reduced_run(
        test::Storage::half, in_layout(in, test::Layout::nchw), test::Layout::nchw);
    CHECK(test::bitwise_equal(to_nhwc(planes.xr, in.hr, in.wr), pixels.xr));
    CHECK(test::bitwise_equal(to_nhwc(planes.z, in.h, in.w), pixels.z));
    CHECK(test::bitwise_equal(to_nhwc(planes.d_x, in.h, in.w), pixels.d_x));
    CHECK(test::bitwise_equal(to_nhwc(planes.d_y, in.hr, in.wr), pixels.d_y));
    check_stored(planes.d_weights, pixels.d_weights, 0.0, 256, "d_weights", true);
  }
}

TEST_CASE("CUDA: maps too wide for the shared-memory staging, against the serial reference") {
  // W + Wr - 1 = 3219 x segments: the segment walk, the marginal gradients, the inverse gather and
  // the pair dots work on global memory instead of shared-memory copies (48 KiB).
  std::mt19937 rng(5);
  for (test::Layout layout : {test::Layout::nhwc, test::Layout::nchw}) {
    CAPTURE(ssb::to_string(layout));
    const auto in = make_inputs(rng, 1, 2, 3100, 8, 2, 120);  // NHWC
    const auto got = test::cuda_pipeline_twice(in_layout(in, layout), layout).front();
    const auto ref = serial_reference(in);
    const auto nhwc = [&](const std::vector<float>& v, int h, int w) {
      return relayout_values(in, v, h, w, layout, test::Layout::nhwc);
    };
    check_stored(nhwc(got.xr, in.hr, in.wr), ref.xr, 0.0, 64, "sample");
    check_stored(nhwc(got.z, in.h, in.w), ref.z, 0.0, 64, "sample_inverse");
    check_stored(nhwc(got.d_x, in.h, in.w), ref.d_x, 0.0, 64, "d_x");
    check_stored(nhwc(got.d_y, in.hr, in.wr), ref.d_y, 0.0, 64, "d_y");
    check_stored(got.d_weights, ref.d_weights, 0.0, 256, "d_weights", true);
    check_stored(got.d_saliency, ref.d_saliency, 0.0, 256, "d_saliency", true);
  }
}
