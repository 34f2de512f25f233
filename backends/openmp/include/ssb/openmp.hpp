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

template <>
struct launcher<openmp> {
  static constexpr bool available = true;
  template <class F>
  static void for_each(const openmp& exec, std::int64_t count, F&& f) {
    if (exec.num_threads > 0) {
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
