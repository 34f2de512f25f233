// ssbnet: what the GPU backends' kernels share: gpu_error, the launch and pointer checks, the
// storage types, launch sizes, the shared-memory budget, and 16-byte packs. Part of
// ssb/detail/gpu_verbs.hpp; include <ssb/cuda.cuh> or <ssb/hip.hpp>, not this header.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <ssb/ssb.hpp>  // the core: views, weights, shared bodies, checks, the host verbs

#include "gpu_runtime.hpp"

namespace ssb {

// A failure of the GPU runtime (a launch, an allocation): not a bad argument.
class gpu_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace gpu_detail {

using detail::Direction;

inline void check_runtime(gpu::error_t e, const char* verb, const char* what) {
  if (e != gpu::success) {
    throw gpu_error(std::string(verb) + ": " + what + " failed: " + gpu::error_string(e));
  }
}

// Every kernel launch is followed by this: a bad configuration fails at once, not at the next
// synchronisation.
inline void check_launch(const char* verb, const char* kernel) {
  check_runtime(gpu::last_error(), verb, kernel);
}

template <class P>
void check_device(const char* verb, const char* name, const P* p) {
#if !defined(SSB_GPU_NO_POINTER_CHECKS)
  if (p != nullptr && !gpu::device_accessible(static_cast<const void*>(p))) {
    detail::fail(std::string(verb) + ": " + name + " is not device-accessible memory (" +
                 gpu::platform + " kernels read and write it)");
  }
#else
  (void)verb, (void)name, (void)p;
#endif
}

// Storage types of maps: the weights' scalar, or half/bfloat16 over float weights.
template <class S>
constexpr bool is_reduced =
    std::is_same<S, gpu::half>::value || std::is_same<S, gpu::bfloat16>::value;
template <class S, class T>
constexpr bool storage_ok = std::is_same<std::remove_const_t<S>, T>::value ||
                            (std::is_same<T, float>::value && is_reduced<std::remove_const_t<S>>);
template <class S, class T>
constexpr void require_storage() {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "ssbnet weights are float or double");
  static_assert(storage_ok<S, T>,
                "GPU maps hold the weights' scalar, or half / bfloat16 with float weights");
}

constexpr int block_threads = 256;
constexpr std::int64_t min_blocks = 1024;  // blocks that keep an H100's 132 SMs busy

inline unsigned grid_for(std::int64_t items, std::int64_t per_block) {
  const std::int64_t blocks = (items + per_block - 1) / per_block;
  return unsigned(std::max<std::int64_t>(1, std::min<std::int64_t>(blocks, std::int64_t(1) << 20)));
}

// The most dynamic shared memory a kernel takes (the default limit, no opt-in). The
// compute_weights and compute_weights_backward kernels stage what their serial parts read and
// write there (a serial loop over global memory waits on every load in turn), the row gather its
// segments and y sums, the pair dots their x offsets; each works on global memory directly (or
// the per-element gather is used) where its staging would not fit.
// Every kernel declares it `extern __shared__ __align__(16) double staging[]` (16-byte packs are
// stored there; without the attribute HIP places it 8 bytes off a 16-byte boundary).
constexpr std::size_t staging_bytes = 48 * 1024;
// What a kernel with static shared memory (a few doubles) leaves below staging_bytes for it: a
// launch whose static and dynamic shared memory exceed 48 KiB fails.
constexpr std::size_t static_shared_reserve = 1024;

// 16 bytes of storage elements: the unit of the NHWC fast path's loads and stores.
template <class S>
struct alignas(16) Pack {
  static constexpr int size = int(16 / sizeof(S));
  S v[size];
};

// out[i] = in[i] for i < count, by the threads of a block: 16-byte packs from the first 16-byte
// boundary of `in` on (four in flight per thread), single elements before and after. `out` has
// the address of `in` modulo 16.
template <class S>
__device__ inline void block_copy(const S* in, S* out, std::int64_t count, int thread,
                                  int threads) {
  constexpr int V = Pack<S>::size;
  const std::int64_t lead =
      std::int64_t((16 - reinterpret_cast<std::uintptr_t>(in) % 16) % 16 / sizeof(S));
  const std::int64_t head = lead < count ? lead : count;
  if (thread < head) out[thread] = in[thread];
  const std::int64_t packs = (count - head) / V;
  const Pack<S>* from = reinterpret_cast<const Pack<S>*>(in + head);
  Pack<S>* to = reinterpret_cast<Pack<S>*>(out + head);
  std::int64_t i = thread;
  for (; i + 3 * threads < packs; i += 4 * threads) {
    const Pack<S> a = from[i], b = from[i + threads], c = from[i + 2 * threads],
                  d = from[i + 3 * threads];
    to[i] = a;
    to[i + threads] = b;
    to[i + 2 * threads] = c;
    to[i + 3 * threads] = d;
  }
  for (; i < packs; i += threads) to[i] = from[i];
  const std::int64_t done = head + packs * V;
  if (done + thread < count) out[done + thread] = in[done + thread];
}

// Whether two maps (of one storage type) can be read and written in 16-byte packs: both NHWC,
// channels a multiple of Pack<S>::size, data 16-byte aligned.
template <class A, class B>
bool packs_fit(const FeatureMap<A>& a, const FeatureMap<B>& b) {
  using S = std::remove_const_t<A>;
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  return a.layout == Layout::nhwc && b.layout == Layout::nhwc && a.channels % Pack<S>::size == 0 &&
         b.channels % Pack<S>::size == 0 && aligned(a.data) && aligned(b.data);
}

}  // namespace gpu_detail
}  // namespace ssb
