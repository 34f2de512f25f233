// ssbnet: the gather bodies of sampling and inverse sampling (MATH.md eqs. 8 and 9), with the
// pair dot products of the weight gradients fused in.
//
// One body serves four products, because the segments can be walked from either side:
//   sample          Xr[i,q,:] = Hr*Wr * sum_{l in out(q)} wx_l sum_{k in out(i)} wy_k X[j_k, j_l,
//   :] sample_inverse  Z[h,w,:]  = H*W   * sum_{l in in(w)}  wx_l sum_{k in in(h)}  wy_k Y[i_k,
//   i_l, :] d_x of sample   = the inverse gather of dXr with scale Hr*Wr d_y of inverse  = the
//   forward gather of dZ with scale H*W
// The order of summation is fixed and the same in every layout: for each x segment l, the y sum
//     inner = sum_k wy_k src[.., .., c]      (k ascending, from 0)
// then acc += wx_l * inner (l ascending, from 0), then dst = scale * acc. So NHWC, NCHW and
// mixed layouts give the same bits, and a backend only decides which rows run where.
//
// Pair dots (backward.hpp): every pair (k, l) of a y and an x segment is visited by exactly one
// destination pixel (a, b), reading src at the pair's source pixel. With `other` a map on the
// destination grid, the gather can also produce
//     dots[k * stride + l] = sum_c src[source pixel of (k, l), c] * other[a, b, c]
// which is D(k, l) of backward.hpp for both backward verbs, at no extra read of src.
#pragma once

#include <cstdint>

#include "types.hpp"
#include "weights.hpp"

namespace ssb {
namespace detail {

// Which way a gather walks the segments.
enum class Direction {
  forward,  // destination on the sampled grid (Hr, Wr), source on the input grid (H, W)
  inverse   // destination on the input grid, source on the sampled grid
};

// The segment range of destination index `d` along one axis, and the source index of segment k.
template <Direction D, class T>
SSB_HOST_DEVICE inline int range_begin(const AxisImage<T>& a, int d) {
  return D == Direction::forward ? a.out_begin[d] : a.in_begin[d];
}
template <Direction D, class T>
SSB_HOST_DEVICE inline int source_index(const AxisImage<T>& a, int k) {
  return D == Direction::forward ? a.in_index[k] : a.out_index[k];
}
template <Direction D, class T>
SSB_HOST_DEVICE inline int dest_index(const AxisImage<T>& a, int k) {
  return D == Direction::forward ? a.out_index[k] : a.in_index[k];
}

// What a gather writes besides (or instead of) its destination: the pair dots of one image.
template <class T>
struct PairDots {
  FeatureMap<const T> other;  // on the destination grid
  T* dots = nullptr;          // dots of the image: [capacity_y][stride]; null: no dots
  int stride = 0;             // capacity_x
};

// Channels handled at once in registers by the per-pixel body.
constexpr int channel_block = 32;

// Lanes of the partial sums of pair_dot.
constexpr int dot_lanes = 16;

// sum_{c < count} a[c * sa] * b[c * sb]: lane u sums the channels c = u (mod dot_lanes) in
// ascending order, then the lanes are added as a halving tree. A fixed reassociation, so it
// vectorises without -ffast-math and gives the same bits everywhere.
template <class T>
SSB_HOST_DEVICE inline T pair_dot(const T* a, std::int64_t sa, const T* b, std::int64_t sb,
                                  int count) {
  T lane[dot_lanes];
  for (int u = 0; u < dot_lanes; ++u) lane[u] = T(0);
  int c = 0;
  for (; c + dot_lanes <= count; c += dot_lanes) {
    for (int u = 0; u < dot_lanes; ++u) lane[u] += a[(c + u) * sa] * b[(c + u) * sb];
  }
  for (int u = 0; c < count; ++c, ++u) lane[u] += a[c * sa] * b[c * sb];
  for (int width = dot_lanes / 2; width > 0; width /= 2) {
    for (int u = 0; u < width; ++u) lane[u] += lane[u + width];
  }
  return lane[0];
}

// Destination pixel (n, a, b), channels of every layout (Contiguous: all channel strides are 1,
// which lets the compiler vectorise). `dst.data` null: compute only the pair dots.
template <Direction D, bool Contiguous, class T>
SSB_HOST_DEVICE inline void gather_pixel(const AxisImage<T>& ay, const AxisImage<T>& ax,
                                         const FeatureMap<const T>& src, const FeatureMap<T>& dst,
                                         const PairDots<T>& pair, int n, int a, int b, T scale) {
  const std::int64_t src_cs = Contiguous ? 1 : src.channel_stride();
  const std::int64_t dst_cs = Contiguous ? 1 : dst.channel_stride();
  const std::int64_t other_cs = Contiguous ? 1 : pair.other.channel_stride();
  const int ky0 = range_begin<D>(ay, a), ky1 = range_begin<D>(ay, a + 1);
  const int kx0 = range_begin<D>(ax, b), kx1 = range_begin<D>(ax, b + 1);
  const int channels = src.channels;
  T* out = dst.data == nullptr ? nullptr : dst.data + dst.pixel_offset(n, a, b);
  const T* other =
      pair.dots == nullptr ? nullptr : pair.other.data + pair.other.pixel_offset(n, a, b);
  for (int c0 = 0; c0 < channels; c0 += channel_block) {
    const int cn = channels - c0 < channel_block ? channels - c0 : channel_block;
    T acc[channel_block];
    for (int c = 0; c < channel_block; ++c) acc[c] = T(0);
    for (int l = kx0; l < kx1; ++l) {
      const int sx = source_index<D>(ax, l);
      T inner[channel_block];
      for (int c = 0; c < channel_block; ++c) inner[c] = T(0);
      for (int k = ky0; k < ky1; ++k) {
        const T wy = ay.weight[k];
        const T* in = src.data + src.pixel_offset(n, source_index<D>(ay, k), sx) + c0 * src_cs;
        if (cn == channel_block) {
          for (int c = 0; c < channel_block; ++c) inner[c] += wy * in[c * src_cs];
        } else {
          for (int c = 0; c < cn; ++c) inner[c] += wy * in[c * src_cs];
        }
      }
      const T wx = ax.weight[l];
      for (int c = 0; c < channel_block; ++c) acc[c] += wx * inner[c];
    }
    if (out != nullptr) {
      for (int c = 0; c < cn; ++c) out[(c0 + c) * dst_cs] = scale * acc[c];
    }
  }
  // The pair dots, over all channels at once while the source pixels are still in cache.
  if (other != nullptr) {
    for (int k = ky0; k < ky1; ++k) {
      const int sy = source_index<D>(ay, k);
      for (int l = kx0; l < kx1; ++l) {
        const T* in = src.data + src.pixel_offset(n, sy, source_index<D>(ax, l));
        pair.dots[std::int64_t(k) * pair.stride + l] =
            Contiguous ? pair_dot(in, 1, other, 1, channels)
                       : pair_dot(in, src_cs, other, other_cs, channels);
      }
    }
  }
}

// Destination row (n, a) of per-pixel layouts: the contiguous body when every map is NHWC, the
// strided one otherwise (all-NCHW maps have the planar bodies of planar.hpp). `dst.data` null:
// pair dots only.
template <Direction D, class T>
SSB_HOST_DEVICE inline void gather_row(const Weights<T>& weights, const FeatureMap<const T>& src,
                                       const FeatureMap<T>& dst, const PairDots<T>& pair, int n,
                                       int a, T scale) {
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  const bool contiguous = src.layout == Layout::nhwc &&
                          (dst.data == nullptr || dst.layout == Layout::nhwc) &&
                          (pair.dots == nullptr || pair.other.layout == Layout::nhwc);
  const int dst_w = D == Direction::forward ? ax.out_size : ax.in_size;
  if (contiguous) {
    for (int b = 0; b < dst_w; ++b) gather_pixel<D, true>(ay, ax, src, dst, pair, n, a, b, scale);
  } else {
    for (int b = 0; b < dst_w; ++b) gather_pixel<D, false>(ay, ax, src, dst, pair, n, a, b, scale);
  }
}

}  // namespace detail
}  // namespace ssb
