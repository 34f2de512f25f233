// ssbnet benchmarks: the paper's dense form, as a user would write it in a framework, and the
// naive dense loop of ssb/dense.hpp.
//   dense_blas_sample/openblas<T>/...    Xr = Hr*Wr * Gy X Gx^T with OpenBLAS cblas_sgemm
//   dense_blas_inverse/openblas<T>/...   Z  = H*W  * Gy^T Y Gx
//   dense_naive_sample/serial/.../<shape>_n1   ssb::dense::sample, ONE image (batch 1, not the
//                                        shape's batch): plain double loops, O(Hr*H*W*C) per image
// Gy (Hr x H) and Gx (Wr x W) per image are materialised outside the timing, as a framework keeps
// them between the forward and backward pass. Per image, float32, row-major:
//   NHWC sample   P (Hr x W*C) = Gy . X[n] (H x W*C)              one sgemm
//                 Xr[n,i] (Wr x C) = s * Gx . P[i] (W x C)         Hr sgemms, i = 0..Hr-1
//   NCHW sample   Q (C*H x Wr) = X[n] (C*H x W) . Gx^T             one sgemm
//                 Xr[n,c] (Hr x Wr) = s * Gy . Q[c] (H x Wr)       C sgemms
//   inverse       the same with Gy^T, Gx^T and the grids swapped
// OpenBLAS runs with openblas_set_num_threads(T), T = the OpenMP backend's thread count (main.cpp).
// Each benchmark checks its result against ssb::sample / ssb::sample_inverse once, untimed.
#include <algorithm>
#include <cmath>
#include <exception>
#include <set>
#include <string>

#if SSB_BENCH_OPENBLAS
#include <cblas.h>
#endif

#include "problem.hpp"

namespace ssb_bench {
namespace {

// max |a - b| <= tol * max(1, max |b|)
bool close(const float* a, const float* b, std::int64_t count, double tol) {
  double diff = 0.0, scale = 1.0;
  for (std::int64_t i = 0; i < count; ++i) {
    diff = std::fmax(diff, std::fabs(double(a[i]) - double(b[i])));
    scale = std::fmax(scale, std::fabs(double(b[i])));
  }
  return diff <= tol * scale;
}

// Checks a result once per benchmark name (the function runs once per repetition).
bool first_time(const std::string& name) {
  static std::set<std::string> seen;
  return seen.insert(name).second;
}

#if SSB_BENCH_OPENBLAS

void blas_sample(const ssb::dense::DenseWeights<float>& d, const ssb::FeatureMap<float>& x,
                 const ssb::FeatureMap<float>& xr, float* scratch) {
  const int H = d.in_h, W = d.in_w, Hr = d.out_h, Wr = d.out_w, C = x.channels;
  const float scale = float(Hr) * float(Wr);
  for (int n = 0; n < d.batch; ++n) {
    const float* xn = x.data + std::int64_t(n) * H * W * C;
    float* xrn = xr.data + std::int64_t(n) * Hr * Wr * C;
    if (x.layout == ssb::Layout::nhwc) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Hr, W * C, H, 1.0f, d.gy_of(n), H, xn,
                  W * C, 0.0f, scratch, W * C);
      for (int i = 0; i < Hr; ++i) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Wr, C, W, scale, d.gx_of(n), W,
                    scratch + std::int64_t(i) * W * C, C, 0.0f, xrn + std::int64_t(i) * Wr * C, C);
      }
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C * H, Wr, W, 1.0f, xn, W, d.gx_of(n), W,
                  0.0f, scratch, Wr);
      for (int c = 0; c < C; ++c) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Hr, Wr, H, scale, d.gy_of(n), H,
                    scratch + std::int64_t(c) * H * Wr, Wr, 0.0f, xrn + std::int64_t(c) * Hr * Wr,
                    Wr);
      }
    }
  }
}

void blas_inverse(const ssb::dense::DenseWeights<float>& d, const ssb::FeatureMap<float>& y,
                  const ssb::FeatureMap<float>& z, float* scratch) {
  const int H = d.in_h, W = d.in_w, Hr = d.out_h, Wr = d.out_w, C = y.channels;
  const float scale = float(H) * float(W);
  for (int n = 0; n < d.batch; ++n) {
    const float* yn = y.data + std::int64_t(n) * Hr * Wr * C;
    float* zn = z.data + std::int64_t(n) * H * W * C;
    if (y.layout == ssb::Layout::nhwc) {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, Wr * C, Hr, 1.0f, d.gy_of(n), H, yn,
                  Wr * C, 0.0f, scratch, Wr * C);
      for (int h = 0; h < H; ++h) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, W, C, Wr, scale, d.gx_of(n), W,
                    scratch + std::int64_t(h) * Wr * C, C, 0.0f, zn + std::int64_t(h) * W * C, C);
      }
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C * Hr, W, Wr, 1.0f, yn, Wr,
                  d.gx_of(n), W, 0.0f, scratch, W);
      for (int c = 0; c < C; ++c) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, W, Hr, scale, d.gy_of(n), H,
                    scratch + std::int64_t(c) * Hr * W, W, 0.0f, zn + std::int64_t(c) * H * W, W);
      }
    }
  }
}

void run_blas(benchmark::State& state, const std::string& name, const Shape& shape, bool inverse,
              ssb::Layout layout, Saliency sal, int threads) {
  Problem& p = problem(shape);
  const ssb::dense::DenseWeights<float> d =
      ssb::dense::weights(p.saliency_map(sal), shape.out_h, shape.out_w);
  // Holds P or Q of either direction and layout.
  Buffer scratch(std::size_t(std::max(shape.height, shape.out_h)) *
                 std::size_t(std::max(shape.width, shape.out_w)) * std::size_t(shape.channels));
  const ssb::FeatureMap<float> x = p.on_input(p.input, layout),
                               xr = p.on_sampled(p.sampled_out, layout);
  const ssb::FeatureMap<float> y = p.on_sampled(p.sampled, layout),
                               z = p.on_input(p.input_out, layout);
  const auto call = [&] {
    if (inverse) {
      blas_inverse(d, y, z, scratch.data());
    } else {
      blas_sample(d, x, xr, scratch.data());
    }
  };
  call();
  if (first_time(name)) {
    bool ok;
    if (inverse) {
      Buffer expected(std::size_t(shape.input_elements()));
      ssb::sample_inverse(ssb::serial{}, *p.weights[int(sal)], y, p.on_input(expected, layout));
      ok = close(z.data, expected.data(), shape.input_elements(), 1e-4);
    } else {
      ok = close(xr.data, p.reference_sample(sal, layout).data(), shape.sampled_elements(), 1e-4);
    }
    if (!ok) {
      state.SkipWithError("the cblas_sgemm result differs from ssb::sample(_inverse)");
      return;
    }
  }
  const Stopwatch stopwatch;
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
  set_counters(state, traffic(inverse ? Verb::sample_inverse : Verb::sample, shape), p, threads,
               stopwatch.seconds());
}

#endif  // SSB_BENCH_OPENBLAS

void run_naive(benchmark::State& state, const std::string& name, const Shape& shape,
               ssb::Layout layout, Saliency sal) {
  Problem& p = problem(shape);
  Shape one = shape;
  one.batch = 1;
  const ssb::SaliencyMap<float> s{p.saliency[int(sal)].data(), 1, shape.height, shape.width};
  const ssb::dense::DenseWeights<float> d = ssb::dense::weights(s, shape.out_h, shape.out_w);
  const ssb::FeatureMap<float> x{p.input.data(), 1,     shape.height, shape.width,
                                 shape.channels, layout};
  const ssb::FeatureMap<float> xr{p.sampled_out.data(), 1,     shape.out_h, shape.out_w,
                                  shape.channels,       layout};
  ssb::dense::sample(d, x, xr);
  // Image 0 of a batch is the first H*W*C elements in both layouts.
  if (first_time(name) &&
      !close(xr.data, p.reference_sample(sal, layout).data(), one.sampled_elements(), 1e-4)) {
    state.SkipWithError("ssb::dense::sample differs from ssb::sample");
    return;
  }
  const Stopwatch stopwatch;
  for (auto _ : state) {
    ssb::dense::sample(d, x, xr);
    benchmark::ClobberMemory();
  }
  set_counters(state, traffic(Verb::sample, one), p, 1, stopwatch.seconds());
  state.SetLabel("batch 1, not " + std::to_string(shape.batch));
}

}  // namespace

void register_dense(const Options& options, const Shape& shape) {
  for (const Saliency sal : {Saliency::sigmoid, Saliency::uniform}) {
    for (const ssb::Layout layout : {ssb::Layout::nhwc, ssb::Layout::nchw}) {
      const bool nhwc = layout == ssb::Layout::nhwc, sigmoid = sal == Saliency::sigmoid;
#if SSB_BENCH_OPENBLAS
      const std::string blas = "openblas" + std::to_string(options.threads);
      for (const bool inverse : {false, true}) {
        if (!options.full && !(sigmoid && (nhwc || !inverse))) continue;
        const std::string name = bench_name(inverse ? "dense_blas_inverse" : "dense_blas_sample",
                                            blas, ssb::to_string(layout), to_string(sal), shape);
        const int threads = options.threads;
        benchmark::RegisterBenchmark(
            name.c_str(),
            [name, shape, inverse, layout, sal, threads](benchmark::State& st) {
              run_blas(st, name, shape, inverse, layout, sal, threads);
            })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
#endif
      if (!shape.naive_dense() || (!options.full && !(sigmoid && nhwc))) continue;
      Shape one = shape;
      one.batch = 1;
      const std::string name =
          bench_name("dense_naive_sample", "serial", ssb::to_string(layout), to_string(sal), one);
      benchmark::RegisterBenchmark(name.c_str(),
                                   [name, shape, layout, sal](benchmark::State& st) {
                                     run_naive(st, name, shape, layout, sal);
                                   })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace ssb_bench
