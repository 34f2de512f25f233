// ssbnet benchmarks: the data of one shape, the bytes model of every verb and the counters.
//
// Bytes model (float32, bytes one call moves at the least; E = N*H*W*C input-grid elements,
// Er = N*Hr*Wr*C sampled-grid elements, K = N*(H+Hr-1 + W+Wr-1) segment slots):
//   segments(fwd)           K*8 (weight + source index) + N*(Hr+1 + Wr+1)*4 (out_begin)
//   segments(inv)           K*8 + N*(H+1 + W+1)*4 (in_begin)
//   compute_weights         saliency N*H*W*4 read + workspace_size() written
//   sample                  X 4E read + Xr 4Er written + segments(fwd)
//   sample_inverse          Y 4Er read + Z 4E written + segments(inv)
//   sample_backward         d_x part: dXr 4Er read + dX 4E written + segments(inv)
//     (d_x and d_weights)   d_weights part: X 4E read + d_weights 2*4K (read-modify-write)
//   sample_backward_dx      dXr 4Er + dX 4E + segments(inv)
//   sample_backward_dw      X 4E + dXr 4Er + 2*4K + segments(fwd)
//   sample_inverse_backward dZ 4E + Y 4Er read + dY 4Er written + 2*4K + segments(fwd)
//   compute_weights_backward d_weights 4K + flags/in_index 5K + masses N*(H+W)*8 read,
//                           scratch N*(H+W+2)*8 + d_saliency N*H*W*4 written
//   round_trip              compute_weights + sample + sample_inverse + zeroing d_weights 4K +
//                           sample_inverse_backward + sample_backward + compute_weights_backward
// Each term is booked to one of two bandwidth references (bench_bandwidth.cpp), measured in the
// same binary with the same thread count:
//   reduce  reads an input-grid tensor once, writes a sampled-grid tensor (the shape of sample)
//   expand  reads a sampled-grid tensor, writes an input-grid tensor (the shape of sample_inverse)
// Terms whose big stream is written (inverse gathers, d_x, d_saliency) go to expand, the rest to
// reduce. The reference time of a call is reduce_bytes / B_reduce + expand_bytes / B_expand and
//     pct_of_bw_ref = 100 * reference time / measured time
// which for sample and sample_inverse is simply (bytes / time) / (reference bytes / s).
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ssb/ssb.hpp>
#include <string>

#include "backends.hpp"
#include "shapes.hpp"
#include "traffic.hpp"

namespace ssb_bench {

// Saliency as at the start of training (sigmoid of N(0,1) noise) or uniform (all ones).
enum class Saliency { sigmoid, uniform };
inline const char* to_string(Saliency s) {
  return s == Saliency::sigmoid ? "sigmoid" : "uniform";
}

// A zero-initialised float array that starts on a 4 KiB boundary. A load whose address equals
// an in-flight store's in bits 0-11 waits for that store (4 KiB aliasing, x86), so a gather's
// time depends on where its destination starts relative to its source modulo 4 KiB: with the
// destination 48-256 bytes above, NHWC sample and sample_inverse took 1.15-1.6x their time (one
// thread, 7x7 to 28x28 maps of 512-2048 channels). With 64-byte alignment, those offsets came
// from the allocator's history: after the first shape's buffers were freed, glibc served the
// next ones from its heap at 256, 384, ..., 768 bytes past a page, and they moved between builds
// whose scratch allocations differed, so that an A/B of two builds could measure two cases.
// Page-aligned buffers put every map at the same offset modulo 4 KiB (a source and its
// destination 0 bytes apart): every run and build measures that case. One thread, it was 0-5%
// slower than the fastest offset on those maps (bench/results/ab-6931b23-lane-thresholds.md).
class Buffer {
 public:
  static constexpr std::size_t page = 4096;
  explicit Buffer(std::size_t count = 0);
  float* data() const { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float[], Free> data_;
  std::size_t size_ = 0;
};

// Everything the benchmarks of one shape touch. Inputs are random in [-1, 1); the same buffer
// serves as X and dZ (input grid) or Y and dXr (sampled grid), since the values do not matter.
struct Problem {
  explicit Problem(const Shape& shape);

  Shape shape;
  Buffer saliency[2];  // by Saliency
  std::unique_ptr<ssb::HostWeights<float>> weights[2];
  std::unique_ptr<ssb::HostWeightsGrad<float>> grad[2];  // random values
  Buffer input, sampled;                                 // read-only inputs
  Buffer input_out, input_out2;                          // outputs on the input grid (Z, dX)
  Buffer sampled_out, sampled_out2;                      // outputs on the sampled grid (Xr, dY)
  Buffer d_saliency;

  ssb::FeatureMap<float> on_input(const Buffer& b, ssb::Layout layout) const;
  ssb::FeatureMap<float> on_sampled(const Buffer& b, ssb::Layout layout) const;
  ssb::SaliencyMap<float> saliency_map(Saliency s) const;
  // ssb::sample(ssb::serial{}) of `input`, computed on first use: what the dense forms must give.
  const Buffer& reference_sample(Saliency s, ssb::Layout layout);

 private:
  std::unique_ptr<Buffer> reference_[2][2];
};

// The problem of `shape`; building a new one frees the previous one, so register benchmarks
// shape by shape.
Problem& problem(const Shape& shape);

enum class Reference { reduce, expand };
inline const char* to_string(Reference r) {
  return r == Reference::reduce ? "reduce" : "expand";
}
// The bytes model of a reference kernel: the tensor read plus the tensor written.
double reference_bytes(Reference r, const Shape& shape);
// One call of the reference kernel on problem p's buffers with `threads` OpenMP threads.
void run_reference(Reference r, Problem& p, int threads);
// Reference bytes/s for (shape, threads): the median call of at least 30 ms (and 7 calls) of
// timing after 2 warm-ups. Cached for 2 seconds only: a shared machine's memory bandwidth drifts
// (other tenants), so each result is compared with a reference measured next to it in time. The
// separate bw_* benchmarks measure the same kernels the usual way, once per shape.
double reference_bandwidth(Reference r, Problem& p, int threads);

// Wall-clock seconds of the timed loop, measured next to Google Benchmark's own timer (which
// the State does not expose) so that percentages are plain counters.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// bytes_per_second (SetBytesProcessed), pct_of_bw_ref (see the file comment), bw_ref_GBps (the
// reference bandwidth for this mix of traffic), MB_per_call and its split reduce_MB + expand_MB
// (report.py recomputes the percentage from them and the bw_* benchmarks); `seconds` is the
// timed loop's.
void set_counters(benchmark::State& state, const Traffic& t, Problem& p, int threads,
                  double seconds);

// Untimed registration, shape by shape (main.cpp).
void register_bandwidth(const Options& options, const Shape& shape);
void register_verbs(const Options& options, const Shape& shape);
void register_dense(const Options& options, const Shape& shape);

// Benchmark names: family/backend/layout/saliency/shape (five fields; report.py relies on it).
std::string bench_name(const std::string& family, const std::string& backend, const char* layout,
                       const char* saliency, const Shape& shape);

}  // namespace ssb_bench
