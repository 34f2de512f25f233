// ssbnet: the gather bodies for NCHW maps (see kernels.hpp for the formulas and the summation
// order, which is the same here, bit for bit).
//
// Small planes (channel_tile_fits): a block of channel_block planes is transposed into a
// channels-last tile, gathered by the NHWC row body (vectorised over the block), and transposed
// back. Large planes: one plane at a time,
//   1. y sums, vectorised along source rows:  R[a][w] = sum_{k in range_y(a)} wy_k
//   src[source_y(k)][w]
//   2. transpose R (A x L) to Rt (L x A)
//   3. x sums, vectorised along destination rows: Ot[b][:] = sum_{l in range_x(b)} wx_l
//   Rt[source_x(l)][:]
//   4. dst[a][b] = scale * Ot[b][a]
// Either way every sum starts from its first term and runs in ascending order, as kernels.hpp says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#if defined(__AVX__) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
#include <immintrin.h>
#define SSB_PLANAR_AVX 1
#endif

#include "kernels.hpp"
#include "types.hpp"
#include "weights.hpp"

namespace ssb {
namespace detail {

// Whether a channels-last tile of one block of planes (source and destination) stays within
// 256 KiB, the regime where the tile body beats the plane body.
template <class T>
SSB_HOST_DEVICE inline bool channel_tile_fits(const Weights<T>& w) {
  const std::size_t pixels =
      std::size_t(w.in_height()) * w.in_width() + std::size_t(w.out_height()) * w.out_width();
  return pixels * channel_block * sizeof(T) <= (std::size_t(1) << 18);
}

// Elements of scratch that gather_plane or gather_channel_tile needs.
template <Direction D, class T>
SSB_HOST_DEVICE inline std::size_t plane_scratch_size(const Weights<T>& w) {
  const bool forward = D == Direction::forward;
  const std::size_t dst_h = std::size_t(forward ? w.out_height() : w.in_height());
  const std::size_t dst_w = std::size_t(forward ? w.out_width() : w.in_width());
  const std::size_t src_w = std::size_t(forward ? w.in_width() : w.out_width());
  if (channel_tile_fits(w)) {
    const std::size_t pixels =
        std::size_t(w.in_height()) * w.in_width() + std::size_t(w.out_height()) * w.out_width();
    return (pixels + src_w) * channel_block;
  }
  return 2 * dst_h * src_w + dst_w * dst_h;
}

#if defined(SSB_PLANAR_AVX)
// Rows 0..7 of `in` (8 floats each, `in_stride` apart) become columns of `out`.
inline void transpose_8x8(const float* in, std::int64_t in_stride, float* out,
                          std::int64_t out_stride) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in + i * in_stride);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(out + i * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(out + (i + 4) * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
#endif

// to[j * rows + i] = from[i * cols + j] for a rows x cols block with row strides `from_stride`
// and `to_stride`: the transposes between planes and channels-last tiles.
template <class T>
SSB_HOST_DEVICE inline void transpose(const T* from, std::int64_t from_stride, int rows,
                                      std::int64_t cols, T* to, std::int64_t to_stride) {
  std::int64_t j0 = 0;
#if defined(SSB_PLANAR_AVX)
  if (std::is_same<T, float>::value) {
    const int rows8 = rows / 8 * 8;
    for (; j0 + 8 <= cols; j0 += 8) {
      for (int i0 = 0; i0 < rows8; i0 += 8) {
        transpose_8x8(reinterpret_cast<const float*>(from) + i0 * from_stride + j0, from_stride,
                      reinterpret_cast<float*>(to) + j0 * to_stride + i0, to_stride);
      }
      for (int i = rows8; i < rows; ++i) {
        for (std::int64_t j = j0; j < j0 + 8; ++j)
          to[j * to_stride + i] = from[i * from_stride + j];
      }
    }
  }
#endif
  for (std::int64_t j = j0; j < cols; ++j) {
    for (int i = 0; i < rows; ++i) to[j * to_stride + i] = from[i * from_stride + j];
  }
}

// Planes c0 .. c0 + channel_block - 1 (or up to the last channel) of image n of NCHW maps, through
// a channels-last tile. `scratch` has plane_scratch_size elements.
template <Direction D, class T>
SSB_HOST_DEVICE inline void gather_channel_tile(const Weights<T>& weights,
                                                const FeatureMap<const T>& src,
                                                const FeatureMap<T>& dst, int n, int c0, T scale,
                                                T* scratch) {
  const int cb = src.channels - c0 < channel_block ? src.channels - c0 : channel_block;
  const std::int64_t src_pixels = std::int64_t(src.height) * src.width;
  const std::int64_t dst_pixels = std::int64_t(dst.height) * dst.width;
  T* tile_in = scratch;
  T* tile_out = tile_in + src_pixels * cb;
  const T* planes = src.data + (std::int64_t(n) * src.channels + c0) * src_pixels;
  transpose(planes, src_pixels, cb, src_pixels, tile_in, cb);
  const FeatureMap<const T> in(tile_in, 1, src.height, src.width, cb, Layout::nhwc);
  const FeatureMap<T> out(tile_out, 1, dst.height, dst.width, cb, Layout::nhwc);
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  for (int a = 0; a < dst.height; ++a) gather_row_nhwc<D>(ay, ax, in, out, 0, a, scale);
  T* planes_out = dst.data + (std::int64_t(n) * dst.channels + c0) * dst_pixels;
  transpose(tile_out, cb, int(dst_pixels), cb, planes_out, dst_pixels);
}

// Plane (n, c) of NCHW maps src -> dst. `scratch` has plane_scratch_size elements.
template <Direction D, class T>
SSB_HOST_DEVICE inline void gather_plane(const Weights<T>& weights, const FeatureMap<const T>& src,
                                         const FeatureMap<T>& dst, int n, int c, T scale,
                                         T* scratch) {
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  const int dst_h = dst.height, dst_w = dst.width, src_w = src.width;
  const T* plane = src.data + (std::int64_t(n) * src.channels + c) * src.height * src_w;
  T* out = dst.data + (std::int64_t(n) * dst.channels + c) * dst_h * dst_w;
  T* r = scratch;                            // [dst_h][src_w]
  T* rt = r + std::int64_t(dst_h) * src_w;   // [src_w][dst_h]
  T* ot = rt + std::int64_t(dst_h) * src_w;  // [dst_w][dst_h]
  for (int a = 0; a < dst_h; ++a) {
    sum_rows<D>(ay, range_begin<D>(ay, a), range_begin<D>(ay, a + 1), plane, src_w, src_w,
                r + std::int64_t(a) * src_w);
  }
  transpose(r, src_w, dst_h, src_w, rt, dst_h);
  for (int b = 0; b < dst_w; ++b) {
    sum_rows<D>(ax, range_begin<D>(ax, b), range_begin<D>(ax, b + 1), rt, dst_h, dst_h,
                ot + std::int64_t(b) * dst_h);
  }
  for (std::int64_t e = 0; e < std::int64_t(dst_w) * dst_h; ++e) ot[e] *= scale;
  transpose(ot, dst_h, dst_w, dst_h, out, dst_w);
}

// The pair dots of image n restricted to planes c0 .. c0 + channel_block - 1 (kernels.hpp), for
// NCHW maps whose channel tiles fit: both maps' planes go to channels-last tiles, then the NHWC
// pair dots run over the block. `dots` ([capacity_y][capacity_x]) receives the block's partial
// sums; the launcher adds the blocks in order. `scratch` has plane_scratch_size elements.
template <Direction D, class T>
SSB_HOST_DEVICE inline void channel_tile_pair_dots(const Weights<T>& weights,
                                                   const FeatureMap<const T>& src,
                                                   const FeatureMap<const T>& other, int n, int c0,
                                                   T* dots, T* scratch) {
  const int cb = src.channels - c0 < channel_block ? src.channels - c0 : channel_block;
  const std::int64_t src_pixels = std::int64_t(src.height) * src.width;
  const std::int64_t other_pixels = std::int64_t(other.height) * other.width;
  T* tile_src = scratch;
  T* tile_other = tile_src + src_pixels * cb;
  transpose(src.data + (std::int64_t(n) * src.channels + c0) * src_pixels, src_pixels, cb,
            src_pixels, tile_src, cb);
  transpose(other.data + (std::int64_t(n) * other.channels + c0) * other_pixels, other_pixels, cb,
            other_pixels, tile_other, cb);
  const FeatureMap<const T> s(tile_src, 1, src.height, src.width, cb, Layout::nhwc);
  const PairDots<T> pair{
      FeatureMap<const T>(tile_other, 1, other.height, other.width, cb, Layout::nhwc), dots,
      weights.x.capacity()};
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  for (int a = 0; a < other.height; ++a) row_pair_dots<D>(ay, ax, s, pair, 0, a);
}

// The pair dots of y segment k of image n for NCHW maps (kernels.hpp), channels in order:
//     dots[l] = sum_c src[c, source_y(k), source_x(l)] * other[c, dest_y(k), dest_x(l)]
// for every x segment l; `other` is on the destination grid.
template <Direction D, class T>
SSB_HOST_DEVICE inline void plane_pair_dots(const Weights<T>& weights,
                                            const FeatureMap<const T>& src,
                                            const FeatureMap<const T>& other, int n, int k,
                                            T* dots) {
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  const int count = ax.count();
  const std::int64_t src_plane = std::int64_t(src.height) * src.width;
  const std::int64_t other_plane = std::int64_t(other.height) * other.width;
  const T* src_row = src.data + std::int64_t(n) * src.channels * src_plane +
                     std::int64_t(source_index<D>(ay, k)) * src.width;
  const T* other_row = other.data + std::int64_t(n) * other.channels * other_plane +
                       std::int64_t(dest_index<D>(ay, k)) * other.width;
  const bool forward = D == Direction::forward;
  const std::int32_t* source_x = forward ? ax.in_index : ax.out_index;
  const std::int32_t* dest_x = forward ? ax.out_index : ax.in_index;
  T* SSB_RESTRICT d = dots;
  for (int l = 0; l < count; ++l) d[l] = T(0);
  for (int c = 0; c < src.channels; ++c) {
    const T* SSB_RESTRICT s = src_row + c * src_plane;
    const T* SSB_RESTRICT o = other_row + c * other_plane;
    for (int l = 0; l < count; ++l) d[l] += s[source_x[l]] * o[dest_x[l]];
  }
}

}  // namespace detail
}  // namespace ssb
