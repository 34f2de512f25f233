// ssbnet: the OpenMP backend (target ssbnet::openmp).
//     ssb::sample(ssb::openmp{}, weights, x, xr);          // OpenMP's default thread count
//     ssb::sample(ssb::openmp{4}, weights, x, xr);         // 4 threads
// Parallel over images and destination rows (sample: output rows; sample_inverse and d_x: input
// rows), over segments for the weight gradients, over images for the weights themselves. Every
// element is computed by one thread with the serial backend's arithmetic: results are bitwise
// identical to ssb::serial at any thread count. No atomics, no locks.
#pragma once

#include <cstdint>
#include <ssb/ssb.hpp>

#ifndef _OPENMP
#error "ssb/openmp.hpp needs OpenMP: link ssbnet::openmp (or compile with -fopenmp)"
#endif

namespace ssb {
namespace detail {

// The default of openmp::min_parallel_work: launches that touch fewer elements run on the calling
// thread, because forking the team costs microseconds, more than the whole launch on small maps
// (compute_weights on 5x5 maps).
#ifndef SSB_OPENMP_MIN_WORK
#define SSB_OPENMP_MIN_WORK 32768
#endif

template <>
struct launcher<openmp> {
  static constexpr bool available = true;
  template <class F>
  static void for_each(const openmp& exec, std::int64_t count, F&& f, std::int64_t work) {
    const std::int64_t min_work =
        exec.min_parallel_work < 0 ? std::int64_t(SSB_OPENMP_MIN_WORK) : exec.min_parallel_work;
    if (count < 2 || work < min_work) {
      for (std::int64_t i = 0; i < count; ++i) f(i);
    } else if (exec.num_threads > 0) {
#pragma omp parallel for schedule(static) num_threads(exec.num_threads)
      for (std::int64_t i = 0; i < count; ++i) f(i);
    } else {
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < count; ++i) f(i);
    }
  }
};

}  // namespace detail
}  // namespace ssb
