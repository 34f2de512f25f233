// ssbnet: the host vector helpers that the gathers (kernels.hpp) and the pair dots (pair_dot.hpp)
// share: the widest register width of the target and, for host GCC/Clang builds
// (SSB_VECTOR_EXTENSIONS), GCC vector types of that width with unaligned loads and stores.
#pragma once

namespace ssb {
namespace detail {

// Bytes of the widest vector register the target has (AVX-512, AVX, else SSE/NEON-sized). The
// register blocks of kernels.hpp and pair_dot.hpp are sized in these units, so that the vector
// types map to registers.
#if defined(__AVX512F__)
constexpr int vector_bytes = 64;
#elif defined(__AVX__)
constexpr int vector_bytes = 32;
#else
constexpr int vector_bytes = 16;
#endif

#if defined(__GNUC__) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
#define SSB_VECTOR_EXTENSIONS 1
// One vector register of T as a GCC/Clang vector; load and store go through memcpy, which
// compiles to unaligned vector moves. Element-wise IEEE arithmetic, so it gives the bits of the
// scalar loops; it only keeps the compiler from vectorising the wrong loop (gathers across the
// segments instead of contiguous channels).
typedef float vec_float __attribute__((vector_size(vector_bytes)));
typedef double vec_double __attribute__((vector_size(vector_bytes)));
template <class T>
struct Vec;
template <>
struct Vec<float> {
  using type = vec_float;
};
template <>
struct Vec<double> {
  using type = vec_double;
};
template <class V, class T>
inline void vec_load(V& v, const T* p) {
  __builtin_memcpy(&v, p, sizeof v);
}
template <class T, class V>
inline void vec_store(T* p, const V& v) {
  __builtin_memcpy(p, &v, sizeof v);
}
#endif

}  // namespace detail
}  // namespace ssb
