// ssbnet: the pair dots of the weight gradients, row by row, for maps in any layouts (all-NCHW
// maps have planar_dots.hpp's own bodies too), and the rows of the backward verbs on NHWC maps that
// form them together with the data gradient's gather of kernels.hpp.
//
// Pair dots (backward.hpp): every pair (k, l) of a y and an x segment belongs to exactly one
// destination pixel (a, b) and one source pixel. With `other` a map on the destination grid,
//     dots[k * stride + l] = sum_c src[source pixel of (k, l), c] * other[a, b, c]
// is D(k, l) of backward.hpp for both backward verbs (row_pair_dots below, with the dot products
// of pair_dot.hpp).
#pragma once

#include <cstdint>

#include "kernels.hpp"
#include "pair_dot.hpp"
#include "types.hpp"
#include "vector.hpp"

namespace ssb {
namespace detail {

// Where the pair dots of one image go (file comment).
template <class T>
struct PairDots {
  FeatureMap<const T> other;  // on the destination grid
  T* dots = nullptr;          // dots of the image: [capacity_y][stride]
  int stride = 0;             // capacity_x
};

#if defined(SSB_VECTOR_EXTENSIONS)
// Before the pair dots of pixel b (of dst_w) against `other` (that pixel's vector): in the inverse
// direction, `other` is the large map (on the input grid), and its next pixel is prefetched: with
// the hardware's prefetch alone these loops waited on memory (with this one, the d_weights pass
// of sample_backward took 0.55-0.81x the time on 512-channel maps, 0.77-1.13x on the others,
// 2 threads). A hint, so no result changes. The forward direction's large map is src;
// prefetching its next pixels there took 0.86-0.98x on 512-channel maps but 1.07-1.13x on 6x6
// to 16x16 planes, so it is left out.
template <Direction D, class T>
inline void prefetch_next_other(const T* other, int channels, int b, int dst_w) {
  if (D == Direction::inverse && b + 1 < dst_w) {
    prefetch_bytes(other + channels, std::int64_t(channels) * std::int64_t(sizeof(T)));
  }
}

// The pair dots of destination pixel (n, a, b) (file comment) when src and pair.other are both
// NHWC; y range [ky0, ky1) of row a. The pairs share `other`'s pixel: up to shared_dots_max dots
// per pass over it.
template <Direction D, class T>
inline void pixel_pair_dots_nhwc(const AxisImage<T>& ay, const AxisImage<T>& ax,
                                 const FeatureMap<const T>& src, const PairDots<T>& pair, int n,
                                 int a, int b, int ky0, int ky1) {
  const int dst_w = D == Direction::forward ? ax.out_size : ax.in_size;
  const T* other = pair.other.data + pair.other.pixel_offset(n, a, b);
  const int kx0 = range_begin<D>(ax, b), kx1 = range_begin<D>(ax, b + 1);
  prefetch_next_other<D>(other, pair.other.channels, b, dst_w);
  const T* in[shared_dots_max];
  T* out[shared_dots_max];
  int m = 0;
  for (int k = ky0; k < ky1; ++k) {
    const int sy = source_index<D>(ay, k);
    for (int l = kx0; l < kx1; ++l) {
      in[m] = src.data + src.pixel_offset(n, sy, source_index<D>(ax, l));
      out[m] = pair.dots + std::int64_t(k) * pair.stride + l;
      if (++m == shared_dots_max) {
        pair_dots_shared<shared_dots_max>(in, other, src.channels, out);
        m = 0;
      }
    }
  }
  if (m > 0) pair_dots_shared_upto<shared_dots_max - 1>(m, in, other, src.channels, out);
}
#endif

// The pair dots of destination row (n, a) (file comment), for maps in any layouts.
template <Direction D, class T>
SSB_HOST_DEVICE inline void row_pair_dots(const AxisImage<T>& ay, const AxisImage<T>& ax,
                                          const FeatureMap<const T>& src, const PairDots<T>& pair,
                                          int n, int a) {
  const int ky0 = range_begin<D>(ay, a), ky1 = range_begin<D>(ay, a + 1);
  const int dst_w = D == Direction::forward ? ax.out_size : ax.in_size;
  const bool contiguous = src.layout == Layout::nhwc && pair.other.layout == Layout::nhwc;
  const std::int64_t src_cs = src.channel_stride(), other_cs = pair.other.channel_stride();
  for (int b = 0; b < dst_w; ++b) {
#if defined(SSB_VECTOR_EXTENSIONS)
    if (contiguous) {
      pixel_pair_dots_nhwc<D>(ay, ax, src, pair, n, a, b, ky0, ky1);
      continue;
    }
#endif
    const T* other = pair.other.data + pair.other.pixel_offset(n, a, b);
    const int kx0 = range_begin<D>(ax, b), kx1 = range_begin<D>(ax, b + 1);
    for (int k = ky0; k < ky1; ++k) {
      const int sy = source_index<D>(ay, k);
      for (int l = kx0; l < kx1; ++l) {
        const T* in = src.data + src.pixel_offset(n, sy, source_index<D>(ax, l));
        pair.dots[std::int64_t(k) * pair.stride + l] =
            contiguous ? pair_dot(in, 1, other, 1, src.channels)
                       : pair_dot(in, src_cs, other, other_cs, src.channels);
      }
    }
  }
}

#if defined(SSB_FIXED_PIXELS)
// gather_pixel_fixed and the pair dots of the same destination pixel (pixel_pair_dots_nhwc) in
// one pass over the channels, for ranges of KY x KX segments and at least dot_lanes channels:
// each source vector is loaded once for its term of the gather and for its pair's dot with
// `other` (the destination pixel's vector of the other map). The gather's operations are those
// of gather_pixel_fixed (the channels past the last whole group of dot_lanes by
// gather_pixel_blocks), the dots' those of pair_dots_shared (lanes, order, tree): the same bits.
template <Direction D, int KY, int KX, class T>
inline void gather_dots_pixel_fixed(const AxisImage<T>& ay, const AxisImage<T>& ax, int ky0,
                                    int kx0, const T* image, std::int64_t row_stride, int channels,
                                    T scale, T* out, const T* other, T* dots, int dots_stride) {
  typedef typename Vec<T>::type V;
  constexpr int per = int(vector_bytes / sizeof(T));
  constexpr int lanes = dot_lanes<T>();
  const FixedPixel<KY, KX, T> f =
      fixed_pixel<D, KY, KX>(ay, ax, ky0, kx0, image, row_stride, channels);
  V dot[KX][KY][4] = {};
  int c = 0;
  for (; c + lanes <= channels; c += lanes) {
    for (int j = 0; j < 4; ++j) {
      const int e = c + j * per;
      V o;
      vec_load(o, other + e);
      V acc = fixed_pixel_vector<V>(f, e, [&](int l, int k, const V& x) { dot[l][k][j] += x * o; });
      acc *= scale;
      vec_store(out + e, acc);
    }
  }
  gather_pixel_blocks<D>(ay, ax, ky0, ky0 + KY, kx0, kx0 + KX, image, row_stride, channels, c,
                         scale, out);
  T lane[lanes];
  for (int l = 0; l < KX; ++l) {
    for (int k = 0; k < KY; ++k) {
      dots[std::int64_t(ky0 + k) * dots_stride + kx0 + l] =
          finish_pair_dot_accumulators(dot[l][k], lane, f.p[l][k], other, c, channels);
    }
  }
}
#endif

#if defined(SSB_VECTOR_EXTENSIONS)
// Destination row (n, a) of a backward verb with src, dst and pair.other all NHWC: the gather of
// gather_row_nhwc and the pair dots of row_pair_dots, pixel by pixel, both in one pass over the
// channels (gather_dots_pixel_fixed) for ranges of up to 2 x 2 segments and at least dot_lanes
// channels, else one after the other, so that each source pixel comes from memory once for both.
// The same operations per element as the two rows apart: the same bits.
template <Direction D, class T>
inline void backward_row_nhwc(const AxisImage<T>& ay, const AxisImage<T>& ax,
                              const FeatureMap<const T>& src, const FeatureMap<T>& dst,
                              const PairDots<T>& pair, int n, int a, T scale) {
  const NhwcRow<T> r = nhwc_row<D>(ay, ax, src, dst, n, a);
  const int ky0 = r.ky0, ky1 = r.ky1, channels = r.channels;
  T* out = r.out;
  for (int b = 0; b < r.dst_w; ++b, out += channels) {
#if defined(SSB_FIXED_PIXELS)
    const int kx0 = range_begin<D>(ax, b), kx1 = range_begin<D>(ax, b + 1);
    const int cy = ky1 - ky0, cx = kx1 - kx0;
    if (cy >= 1 && cy <= 2 && cx >= 1 && cx <= 2 && channels >= dot_lanes<T>()) {
      const T* other = pair.other.data + pair.other.pixel_offset(n, a, b);
      prefetch_next_other<D>(other, channels, b, r.dst_w);
#define SSB_FUSED_CASE(Y, X)                                                                   \
  case Y * 4 + X:                                                                              \
    gather_dots_pixel_fixed<D, Y, X>(ay, ax, ky0, kx0, r.image, r.row_stride, channels, scale, \
                                     out, other, pair.dots, pair.stride);                      \
    break;
      switch (cy * 4 + cx) {
        SSB_FUSED_CASE(1, 1)
        SSB_FUSED_CASE(1, 2)
        SSB_FUSED_CASE(2, 1)
        SSB_FUSED_CASE(2, 2)
      }
#undef SSB_FUSED_CASE
      continue;
    }
#endif
    gather_pixel_nhwc<D>(ay, ax, ky0, ky1, b, r.image, r.row_stride, channels, scale, out);
    pixel_pair_dots_nhwc<D>(ay, ax, src, pair, n, a, b, ky0, ky1);
  }
}
#endif

}  // namespace detail
}  // namespace ssb
