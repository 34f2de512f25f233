// ssbnet: the pair dot products of the weight gradients (pair_dot_rows.hpp, "Pair dots";
// backward.hpp): sums over the channels with a fixed reassociation into lanes (dot_lanes), so
// that they vectorise without -ffast-math and give the same bits contiguous or strided for a given
// vector width.
#pragma once

#include <cstdint>

#include "types.hpp"
#include "vector.hpp"

namespace ssb {
namespace detail {

// Lanes of the partial sums of pair_dot: four vector registers, so that four independent chains
// of fused multiply-adds keep the FMA units busy. (So the bits of the weight gradients depend on
// the target's vector width, as they do on its FMA contraction; they do not depend on anything
// else.)
template <class T>
SSB_HOST_DEVICE constexpr int dot_lanes() {
  return int(4 * vector_bytes / sizeof(T));
}

// The end of pair_dot (below): channels c .. count-1 into lanes 0, 1, ..., then the lanes added
// as a halving tree.
template <class T>
SSB_HOST_DEVICE inline T finish_pair_dot(T* lane, const T* a, std::int64_t sa, const T* b,
                                         std::int64_t sb, int c, int count) {
  constexpr int lanes = dot_lanes<T>();
  for (int u = 0; c < count; ++c, ++u) lane[u] += a[c * sa] * b[c * sb];
  for (int width = lanes / 2; width > 0; width /= 2) {
    for (int u = 0; u < width; ++u) lane[u] += lane[u + width];
  }
  return lane[0];
}

#if defined(SSB_VECTOR_EXTENSIONS)
// finish_pair_dot's tree when no channels are left over, with the lanes still in the four
// vectors acc0..acc3 (lanes 0..per-1, per..2per-1, ...): its first two levels add whole vectors,
// (acc0 + acc2) + (acc1 + acc3), then the halving goes on inside one vector. The same additions
// of the same pairs, so the same bits, in about a quarter of the scalar adds.
template <class T, class V>
inline T finish_pair_dot_vectors(const V& acc0, const V& acc1, const V& acc2, const V& acc3) {
  constexpr int per = int(sizeof(V) / sizeof(T));
  const V sum = (acc0 + acc2) + (acc1 + acc3);
  T lane[per];
  vec_store(lane, sum);
  for (int width = per / 2; width > 0; width /= 2) {
    for (int u = 0; u < width; ++u) lane[u] += lane[u + width];
  }
  return lane[0];
}

// The end of a pair dot whose first `c` channels sit in four vector accumulators (as
// pair_dots_shared keeps them): finish_pair_dot_vectors when no channels are left, else the
// accumulators stored to `lane` (dot_lanes elements) and finish_pair_dot over channels
// c .. count-1 of a and b (contiguous).
template <class T, class V>
inline T finish_pair_dot_accumulators(const V* acc, T* lane, const T* a, const T* b, int c,
                                      int count) {
  constexpr int per = int(sizeof(V) / sizeof(T));
  if (c == count) return finish_pair_dot_vectors<T>(acc[0], acc[1], acc[2], acc[3]);
  for (int j = 0; j < 4; ++j) vec_store(lane + j * per, acc[j]);
  return finish_pair_dot(lane, a, std::int64_t(1), b, std::int64_t(1), c, count);
}
#endif

#if defined(SSB_VECTOR_EXTENSIONS)
// Asks the caches for the `bytes` bytes from p, one request per 64-byte line. A hint: it never
// faults and changes no result.
inline void prefetch_bytes(const void* p, std::int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (std::int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o);
}

// The same for bytes about to be written: the lines are asked for with intent to write
// (prefetchw where the target has it).
inline void prefetch_bytes_for_write(void* p, std::int64_t bytes) {
  char* c = static_cast<char*>(p);
  for (std::int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 1);
}

// Groups of pair dots that share their second operand, at most this many per call: M groups of
// four accumulators plus the shared vector fit the register file (32 registers with AVX-512, 16
// otherwise).
constexpr int shared_dots_max = vector_bytes == 64 ? 4 : 2;

// out[m] = pair_dot(a[m], 1, b, 1, count) for m < M (below: its contiguous case is M = 1), with
// the same lanes, order and tree for every M (so the same bits), loading each vector of b once
// for all M dots, whose 4 M chains of fused multiply-adds are independent. (On one cached 28x28x512
// image, the d_weights pass took 0.73x the time of one pair_dot after another with this and
// finish_pair_dot_vectors together; with the vector tree alone 0.96x, with the shared loads alone
// about 1.05x.)
template <int M, class T>
inline void pair_dots_shared(const T* const* a, const T* b, int count, T* const* out) {
  typedef typename Vec<T>::type V;
  constexpr int per = int(vector_bytes / sizeof(T));
  constexpr int lanes = dot_lanes<T>();
  V acc[M][4] = {};
  int c = 0;
  for (; c + lanes <= count; c += lanes) {
    for (int j = 0; j < 4; ++j) {
      V y, x;
      vec_load(y, b + c + j * per);
      for (int m = 0; m < M; ++m) {
        vec_load(x, a[m] + c + j * per);
        acc[m][j] += x * y;
      }
    }
  }
  T lane[lanes];
  for (int m = 0; m < M; ++m)
    *out[m] = finish_pair_dot_accumulators(acc[m], lane, a[m], b, c, count);
}

// pair_dots_shared<m> for a run-time 0 < m <= M.
template <int M, class T>
inline void pair_dots_shared_upto(int m, const T* const* a, const T* b, int count, T* const* out) {
  if (m == M) {
    pair_dots_shared<M>(a, b, count, out);
  } else if constexpr (M > 1) {
    pair_dots_shared_upto<M - 1>(m, a, b, count, out);
  }
}
#endif

// sum_{c < count} a[c * sa] * b[c * sb]: lane u sums the channels c = u (mod dot_lanes) in
// ascending order, then the lanes are added as a halving tree. A fixed reassociation, so it
// vectorises without -ffast-math and gives the same bits everywhere, contiguous or strided.
template <class T>
SSB_HOST_DEVICE inline T pair_dot(const T* a, std::int64_t sa, const T* b, std::int64_t sb,
                                  int count) {
  constexpr int lanes = dot_lanes<T>();
#if defined(SSB_VECTOR_EXTENSIONS)
  if (sa == 1 && sb == 1) {
    // The same lanes as the loop below, in vector registers.
    T result;
    T* out = &result;
    pair_dots_shared<1>(&a, b, count, &out);
    return result;
  }
#endif
  T lane[lanes];
  for (int u = 0; u < lanes; ++u) lane[u] = T(0);
  int c = 0;
  for (; c + lanes <= count; c += lanes) {
    for (int u = 0; u < lanes; ++u) lane[u] += a[(c + u) * sa] * b[(c + u) * sb];
  }
  return finish_pair_dot(lane, a, sa, b, sb, c, count);
}

}  // namespace detail
}  // namespace ssb
