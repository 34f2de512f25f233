// ssbnet: the gather bodies of sampling and inverse sampling (MATH.md eqs. 8 and 9).
//
// One body serves four products, because the segments can be walked from either side:
//   sample          Xr[i,q,:] = Hr*Wr * sum_{k in out(i)} sum_{l in out(q)} wy_k wx_l X[j_k, j_l, :]
//   sample_inverse  Z[h,w,:]  = H*W   * sum_{k in in(h)}  sum_{l in in(w)}  wy_k wx_l Y[i_k, i_l, :]
//   d_x of sample   = the inverse gather of dXr with scale Hr*Wr
//   d_y of inverse  = the forward gather of dZ with scale H*W
// Backends call these per destination pixel (or per block of channels of one); each destination
// element is written by exactly one call, with a fixed summation order, so results do not depend
// on the backend's parallel decomposition.
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

// Channels accumulated at once in registers by gather_pixel.
constexpr int channel_block = 32;

// dst[n, a, b, c] = scale * sum_{k in range_y(a)} sum_{l in range_x(b)}
//                   wy_k * wx_l * src[n, source_y(k), source_x(l), c]     for c in [c_begin, c_end)
// Contiguous = true when the channel stride of both views is 1 (NHWC), which lets the compiler
// vectorise over channels; the arithmetic is identical either way.
template <Direction D, bool Contiguous, class T>
SSB_HOST_DEVICE inline void gather_pixel(const AxisImage<T>& ay, const AxisImage<T>& ax,
                                         const FeatureMap<const T>& src, const FeatureMap<T>& dst,
                                         int n, int a, int b, int c_begin, int c_end, T scale) {
  const std::int64_t src_cs = Contiguous ? 1 : src.channel_stride();
  const std::int64_t dst_cs = Contiguous ? 1 : dst.channel_stride();
  const int ky0 = range_begin<D>(ay, a), ky1 = range_begin<D>(ay, a + 1);
  const int kx0 = range_begin<D>(ax, b), kx1 = range_begin<D>(ax, b + 1);
  T* out = dst.data + dst.pixel_offset(n, a, b);
  for (int c0 = c_begin; c0 < c_end; c0 += channel_block) {
    const int cn = c_end - c0 < channel_block ? c_end - c0 : channel_block;
    T acc[channel_block];
    for (int c = 0; c < channel_block; ++c) acc[c] = T(0);
    for (int k = ky0; k < ky1; ++k) {
      const T wy = ay.weight[k];
      const int sy = source_index<D>(ay, k);
      for (int l = kx0; l < kx1; ++l) {
        const T wxy = wy * ax.weight[l];
        const T* in = src.data + src.pixel_offset(n, sy, source_index<D>(ax, l)) + c0 * src_cs;
        if (cn == channel_block) {
          for (int c = 0; c < channel_block; ++c) acc[c] += wxy * in[c * src_cs];
        } else {
          for (int c = 0; c < cn; ++c) acc[c] += wxy * in[c * src_cs];
        }
      }
    }
    for (int c = 0; c < cn; ++c) out[(c0 + c) * dst_cs] = scale * acc[c];
  }
}

// Calls gather_pixel for every pixel of destination row (n, a) and every channel.
template <Direction D, class T>
SSB_HOST_DEVICE inline void gather_row(const Weights<T>& weights, const FeatureMap<const T>& src,
                                       const FeatureMap<T>& dst, int n, int a, T scale) {
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  if (src.layout == Layout::nhwc && dst.layout == Layout::nhwc) {
    for (int b = 0; b < dst.width; ++b) {
      gather_pixel<D, true>(ay, ax, src, dst, n, a, b, 0, dst.channels, scale);
    }
  } else {
    for (int b = 0; b < dst.width; ++b) {
      gather_pixel<D, false>(ay, ax, src, dst, n, a, b, 0, dst.channels, scale);
    }
  }
}

}  // namespace detail
}  // namespace ssb
