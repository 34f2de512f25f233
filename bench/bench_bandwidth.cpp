// ssbnet benchmarks: the bandwidth references, measured in the same binary as the samplers.
//
// Both kernels stream whole tensors once with plain (write-allocate) stores, vectorised over
// channels, OpenMP-parallel with the thread count of the backend they are compared with. They
// are layout-free: pixels of C contiguous floats, as in NHWC.
//   reduce  dst (N x Hr*Wr x C) pixel p of image n = sum of src (N x H*W x C) pixels
//           [p*H*W/(Hr*Wr), (p+1)*H*W/(Hr*Wr)) of image n: every input element read once, every
//           output element written once. Bytes = 4*(N*H*W*C + N*Hr*Wr*C). The best a sampler can
//           do: it must read X and write Xr.
//   expand  dst (N x H*W x C) pixel q of image n = scale * src pixel q*Hr*Wr/(H*W) of image n: the
//           mirror, shaped like sample_inverse. Same bytes.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "problem.hpp"

namespace ssb_bench {
namespace {

constexpr int block = 64;  // channels accumulated in registers

void reduce_kernel(const float* src, float* dst, std::int64_t images, std::int64_t p_in,
                   std::int64_t p_out, std::int64_t channels, int threads) {
  const std::int64_t total = images * p_out;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#else
  (void)threads;
#endif
  for (std::int64_t o = 0; o < total; ++o) {
    const std::int64_t n = o / p_out, p = o % p_out;
    const std::int64_t begin = p * p_in / p_out, end = (p + 1) * p_in / p_out;
    const float* s = src + (n * p_in + begin) * channels;
    float* d = dst + o * channels;
    std::int64_t c0 = 0;
    for (; c0 + block <= channels; c0 += block) {
      float acc[block] = {};
      for (std::int64_t q = 0; q < end - begin; ++q) {
        const float* row = s + q * channels + c0;
        for (int c = 0; c < block; ++c) acc[c] += row[c];
      }
      for (int c = 0; c < block; ++c) d[c0 + c] = acc[c];
    }
    for (; c0 < channels; ++c0) {
      float acc = 0.0f;
      for (std::int64_t q = 0; q < end - begin; ++q) acc += s[q * channels + c0];
      d[c0] = acc;
    }
  }
}

void expand_kernel(const float* src, float* dst, std::int64_t images, std::int64_t p_small,
                   std::int64_t p_big, std::int64_t channels, float scale, int threads) {
  const std::int64_t total = images * p_big;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads)
#else
  (void)threads;
#endif
  for (std::int64_t o = 0; o < total; ++o) {
    const std::int64_t n = o / p_big, q = o % p_big;
    const float* s = src + (n * p_small + q * p_small / p_big) * channels;
    float* d = dst + o * channels;
    for (std::int64_t c = 0; c < channels; ++c) d[c] = scale * s[c];
  }
}

}  // namespace

void run_reference(Reference r, Problem& p, int threads) {
  const Shape& s = p.shape;
  const std::int64_t p_in = std::int64_t(s.height) * s.width;
  const std::int64_t p_out = std::int64_t(s.out_h) * s.out_w;
  if (r == Reference::reduce) {
    reduce_kernel(p.input.data(), p.sampled_out.data(), s.batch, p_in, p_out, s.channels, threads);
  } else {
    expand_kernel(p.sampled.data(), p.input_out.data(), s.batch, p_out, p_in, s.channels,
                  float(p_out) / float(p_in), threads);
  }
}

double reference_bandwidth(Reference r, Problem& p, int threads) {
  using clock = std::chrono::steady_clock;
  struct Measured {
    double bandwidth;
    clock::time_point when;
  };
  static std::map<std::tuple<std::string, int, int>, Measured> cache;
  const auto key = std::make_tuple(p.shape.name(), int(r), threads);
  const auto found = cache.find(key);
  if (found != cache.end() &&
      std::chrono::duration<double>(clock::now() - found->second.when).count() < 2.0) {
    return found->second.bandwidth;
  }
  for (int i = 0; i < 2; ++i) run_reference(r, p, threads);
  std::vector<double> seconds;
  double sum = 0.0;
  while (seconds.size() < 7 || sum < 0.03) {
    const auto t0 = clock::now();
    run_reference(r, p, threads);
    seconds.push_back(std::chrono::duration<double>(clock::now() - t0).count());
    sum += seconds.back();
  }
  const auto middle = seconds.begin() + std::ptrdiff_t(seconds.size() / 2);
  std::nth_element(seconds.begin(), middle, seconds.end());
  const double bandwidth = reference_bytes(r, p.shape) / *middle;
  cache[key] = Measured{bandwidth, clock::now()};
  return bandwidth;
}

void register_bandwidth(const Options& options, const Shape& shape) {
  for_each_backend(options, [&](const auto& backend) {
    const std::string name = backend.name();
    const int threads = backend.threads();
    for (const Reference r : {Reference::reduce, Reference::expand}) {
      benchmark::RegisterBenchmark(
          bench_name(std::string("bw_") + to_string(r), name, "raw", "none", shape).c_str(),
          [shape, r, threads](benchmark::State& state) {
            Problem& p = problem(shape);
            const double cached = reference_bandwidth(r, p, threads);
            for (auto _ : state) {
              run_reference(r, p, threads);
              benchmark::ClobberMemory();
            }
            state.SetBytesProcessed(
                std::int64_t(reference_bytes(r, shape) * double(state.iterations())));
            state.counters["cached_GBps"] = benchmark::Counter(cached * 1e-9);
            state.counters["MB_per_call"] = benchmark::Counter(reference_bytes(r, shape) * 1e-6);
          })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  });
}

}  // namespace ssb_bench
