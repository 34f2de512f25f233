// ssbnet: the gather bodies of sampling and inverse sampling (MATH.md eqs. 8 and 9). The pair
// dot products of the weight gradients, which walk the same segments, are in pair_dot_rows.hpp.
//
// One body serves four products, because the segments can be walked from either side:
//   sample          Xr[i,q,:] = Hr*Wr * sum_{l in out(q)} wx_l sum_{k in out(i)} wy_k X[j_k,j_l,:]
//   sample_inverse  Z[h,w,:]  = H*W * sum_{l in in(w)} wx_l sum_{k in in(h)} wy_k Y[i_k,i_l,:]
//   d_x of sample   = the inverse gather of dXr with scale Hr*Wr
//   d_y of inverse  = the forward gather of dZ with scale H*W
// The order of summation is fixed and the same in every layout and body: for each x segment l,
// the y sum
//     inner = wy_k0 * src[.., .., c] + wy_k1 * src[..] + ...     (k ascending, from the first term)
// then acc = wx_l0 * inner_l0 + wx_l1 * inner_l1 + ... (l ascending, from the first term), then
// dst = scale * acc; an empty range gives 0. So NHWC, NCHW and mixed layouts give the same bits,
// and a backend only decides which rows run where.
#pragma once

#include <cstdint>

#include "types.hpp"
#include "vector.hpp"
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

// Planes per channels-last tile of planar.hpp.
constexpr int channel_block = 32;

// Channels of one destination pixel summed at once in registers by gather_pixel_block: two
// vector registers per partial sum (more spills them to the stack).
template <class T>
SSB_HOST_DEVICE constexpr int pixel_block() {
  return int(2 * vector_bytes / sizeof(T));
}

// One term of gather_element's sums: w * v for the first, else acc + w * v (which the compiler
// may contract to a fused multiply-add). The GPU backends pass their own, with explicit rounding.
struct PlainTerm {
  template <class Acc>
  SSB_HOST_DEVICE Acc operator()(bool first, Acc w, Acc v, Acc acc) const {
    return first ? w * v : acc + w * v;
  }
};

// One destination element, unscaled: for each x segment l in [kx0, kx1) the y sum
//     inner = sum_{k = ky0 .. ky1-1} wy_k * load(source_y(k), source_x(l))
// then acc = sum_l wx_l * inner, both from the first term (0 for an empty range), in Acc, each
// term through `term` (PlainTerm). `load(sy, sx)` returns the source element of the channel being
// gathered, converted to Acc. The order of the file comment, so it gives the bits of the blocked
// bodies; the per-element form of the GPU backends and of the mixed-layout host path.
template <Direction D, class Acc, class W, class Load, class Term = PlainTerm>
SSB_HOST_DEVICE inline Acc gather_element(const AxisImage<W>& ay, const AxisImage<W>& ax, int ky0,
                                          int ky1, int kx0, int kx1, const Load& load,
                                          const Term& term = Term()) {
  Acc acc = Acc(0);
  for (int l = kx0; l < kx1; ++l) {
    const int sx = source_index<D>(ax, l);
    Acc inner = Acc(0);
    for (int k = ky0; k < ky1; ++k) {
      inner = term(k == ky0, Acc(ay.weight[k]), load(source_index<D>(ay, k), sx), inner);
    }
    acc = term(l == kx0, Acc(ax.weight[l]), inner, acc);
  }
  return acc;
}

// Destination pixel (n, a, b) of maps in any layouts, one channel at a time (the general path,
// for mixed layouts).
template <Direction D, class T>
SSB_HOST_DEVICE inline void gather_pixel_strided(const AxisImage<T>& ay, const AxisImage<T>& ax,
                                                 const FeatureMap<const T>& src,
                                                 const FeatureMap<T>& dst, int n, int a, int b,
                                                 T scale) {
  const int ky0 = range_begin<D>(ay, a), ky1 = range_begin<D>(ay, a + 1);
  const int kx0 = range_begin<D>(ax, b), kx1 = range_begin<D>(ax, b + 1);
  const std::int64_t src_cs = src.channel_stride(), dst_cs = dst.channel_stride();
  T* out = dst.data + dst.pixel_offset(n, a, b);
  for (int c = 0; c < src.channels; ++c) {
    const T* channel = src.data + c * src_cs;
    const auto load = [&](int sy, int sx) { return channel[src.pixel_offset(n, sy, sx)]; };
    out[c * dst_cs] = scale * gather_element<D, T>(ay, ax, ky0, ky1, kx0, kx1, load);
  }
}

// out[e] = sum_{k = k0 .. k1-1} weight[k] * base[index(k) * stride + e] for e < length, summed
// from the first term (0 for an empty range): the y sums of whole rows, and the x sums of the
// plane body of planar.hpp. `index` is source_index<D> of the axis.
template <Direction D, class T>
SSB_HOST_DEVICE inline void sum_rows(const AxisImage<T>& a, int k0, int k1, const T* base,
                                     std::int64_t stride, std::int64_t length, T* out) {
  if (k0 == k1) {
    for (std::int64_t e = 0; e < length; ++e) out[e] = T(0);
    return;
  }
  const T* first = base + std::int64_t(source_index<D>(a, k0)) * stride;
  const T w0 = a.weight[k0];
  for (std::int64_t e = 0; e < length; ++e) out[e] = w0 * first[e];
  for (int k = k0 + 1; k < k1; ++k) {
    const T w = a.weight[k];
    const T* in = base + std::int64_t(source_index<D>(a, k)) * stride;
    for (std::int64_t e = 0; e < length; ++e) out[e] += w * in[e];
  }
}

#if defined(SSB_VECTOR_EXTENSIONS)
// sum[v] = sum_{k = k0 .. k1-1} w_k * base[source(k) * stride + v * lanes ...] over the segments
// of one axis, from the first term (k0 < k1), in vector registers: the y sums of
// gather_pixel_block (axis y, stride = a source row) and the x sums of the separable body
// (axis x, stride = the channels of a pixel).
template <Direction D, class T, class V, int N>
inline void segment_sum_block(const AxisImage<T>& a, int k0, int k1, const T* base,
                              std::int64_t stride, V (&sum)[N]) {
  constexpr int lanes = int(sizeof(V) / sizeof(T));
  const T* first = base + std::int64_t(source_index<D>(a, k0)) * stride;
  const T w0 = a.weight[k0];
  V x;
  for (int v = 0; v < N; ++v) {
    vec_load(x, first + v * lanes);
    sum[v] = w0 * x;
  }
  for (int k = k0 + 1; k < k1; ++k) {
    const T w = a.weight[k];
    const T* in = base + std::int64_t(source_index<D>(a, k)) * stride;
    for (int v = 0; v < N; ++v) {
      vec_load(x, in + v * lanes);
      sum[v] += w * x;
    }
  }
}
#endif

// One destination pixel of channels-last maps, Count channels known at compile time (or `count`
// when Count is 0) held in registers (GCC/Clang vector extensions where available): for each x
// segment l the y sum
//     inner[c] = sum_{k = ky0 .. ky1-1} wy_k * image[source_y(k) * row_stride + source_x(l) * C+c]
// then acc[c] = sum_l wx_l * inner[c], both from the first term, and out[c] = scale * acc[c].
// Non-empty ranges only.
template <Direction D, int Count, class T>
SSB_HOST_DEVICE inline void gather_pixel_block(const AxisImage<T>& ay, const AxisImage<T>& ax,
                                               int ky0, int ky1, int kx0, int kx1, const T* image,
                                               std::int64_t row_stride, int channels, int count,
                                               T scale, T* out) {
#if defined(SSB_VECTOR_EXTENSIONS)
  constexpr int lanes = int(vector_bytes / sizeof(T));
  if (Count > 0 && Count % lanes == 0) {
    typedef typename Vec<T>::type V;
    constexpr int nv = Count > 0 ? Count / lanes : 1;
    V acc[nv], inner[nv];
    segment_sum_block<D>(ay, ky0, ky1, image + std::int64_t(source_index<D>(ax, kx0)) * channels,
                         row_stride, inner);
    const T wx0 = ax.weight[kx0];
    for (int v = 0; v < nv; ++v) acc[v] = wx0 * inner[v];
    for (int l = kx0 + 1; l < kx1; ++l) {
      segment_sum_block<D>(ay, ky0, ky1, image + std::int64_t(source_index<D>(ax, l)) * channels,
                           row_stride, inner);
      const T wx = ax.weight[l];
      for (int v = 0; v < nv; ++v) acc[v] += wx * inner[v];
    }
    for (int v = 0; v < nv; ++v) {
      acc[v] *= scale;
      vec_store(out + v * lanes, acc[v]);
    }
    return;
  }
#endif
  const int cn = Count > 0 ? Count : count;
  T acc[pixel_block<T>()], inner[pixel_block<T>()];
  // inner = the y sum of source column source_x(l).
  auto y_sum = [&](int l) {
    const T* column = image + std::int64_t(source_index<D>(ax, l)) * channels;
    const T* first = column + std::int64_t(source_index<D>(ay, ky0)) * row_stride;
    const T wy0 = ay.weight[ky0];
    for (int c = 0; c < cn; ++c) inner[c] = wy0 * first[c];
    for (int k = ky0 + 1; k < ky1; ++k) {
      const T wy = ay.weight[k];
      const T* in = column + std::int64_t(source_index<D>(ay, k)) * row_stride;
      for (int c = 0; c < cn; ++c) inner[c] += wy * in[c];
    }
  };
  y_sum(kx0);
  const T wx0 = ax.weight[kx0];
  for (int c = 0; c < cn; ++c) acc[c] = wx0 * inner[c];
  for (int l = kx0 + 1; l < kx1; ++l) {
    y_sum(l);
    const T wx = ax.weight[l];
    for (int c = 0; c < cn; ++c) acc[c] += wx * inner[c];
  }
  for (int c = 0; c < cn; ++c) out[c] = scale * acc[c];
}

// Channels c0 .. channels-1 of one destination pixel of channels-last maps by gather_pixel_block,
// pixel_block channels at a time (the rest with a run-time count). Non-empty ranges only.
template <Direction D, class T>
SSB_HOST_DEVICE inline void gather_pixel_blocks(const AxisImage<T>& ay, const AxisImage<T>& ax,
                                                int ky0, int ky1, int kx0, int kx1, const T* image,
                                                std::int64_t row_stride, int channels, int c0,
                                                T scale, T* out) {
  for (; c0 + pixel_block<T>() <= channels; c0 += pixel_block<T>()) {
    gather_pixel_block<D, pixel_block<T>()>(ay, ax, ky0, ky1, kx0, kx1, image + c0, row_stride,
                                            channels, pixel_block<T>(), scale, out + c0);
  }
  if (c0 < channels) {
    gather_pixel_block<D, 0>(ay, ax, ky0, ky1, kx0, kx1, image + c0, row_stride, channels,
                             channels - c0, scale, out + c0);
  }
}

#if defined(SSB_VECTOR_EXTENSIONS) && (defined(__x86_64__) || defined(__aarch64__))
// The first term of a sum, made opaque to the compiler: with the terms of a sum known at compile
// time, w0 * x0 + w1 * x1 may be contracted into fma(w0, x0, w1 * x1) as well as into
// fma(w1, x1, w0 * x0), and only the second is the order of the other bodies.
#if defined(__x86_64__)
#define SSB_FIRST_TERM(v) __asm__("" : "+v"(v))
#else
#define SSB_FIRST_TERM(v) __asm__("" : "+w"(v))
#endif
#define SSB_FIXED_PIXELS 1
// The KY x KX source pixels (p[l][k]: x segment kx0 + l, y segment ky0 + k) and the weights of a
// destination pixel of channels-last maps whose ranges have KY y and KX x segments.
template <int KY, int KX, class T>
struct FixedPixel {
  const T* p[KX][KY];
  T wy[KY], wx[KX];
};
template <Direction D, int KY, int KX, class T>
inline FixedPixel<KY, KX, T> fixed_pixel(const AxisImage<T>& ay, const AxisImage<T>& ax, int ky0,
                                         int kx0, const T* image, std::int64_t row_stride,
                                         int channels) {
  FixedPixel<KY, KX, T> f;
  for (int k = 0; k < KY; ++k) f.wy[k] = ay.weight[ky0 + k];
  for (int l = 0; l < KX; ++l) {
    f.wx[l] = ax.weight[kx0 + l];
    const T* column = image + std::int64_t(source_index<D>(ax, kx0 + l)) * channels;
    for (int k = 0; k < KY; ++k) {
      f.p[l][k] = column + std::int64_t(source_index<D>(ay, ky0 + k)) * row_stride;
    }
  }
  return f;
}

// One vector register of channels from e of a FixedPixel, unscaled, in the order of
// gather_pixel_block; `seen(l, k, x)` is called with each source vector as it is loaded.
template <class V, int KY, int KX, class T, class Seen>
inline V fixed_pixel_vector(const FixedPixel<KY, KX, T>& f, int e, const Seen& seen) {
  V acc = V(), x;  // acc is set at l == 0 (the initial value: as in gather_pixel_fixed)
  for (int l = 0; l < KX; ++l) {
    vec_load(x, f.p[l][0] + e);
    seen(l, 0, x);
    V inner = f.wy[0] * x;
    SSB_FIRST_TERM(inner);
    for (int k = 1; k < KY; ++k) {
      vec_load(x, f.p[l][k] + e);
      seen(l, k, x);
      inner += f.wy[k] * x;
    }
    if (l == 0) {
      acc = f.wx[0] * inner;
      SSB_FIRST_TERM(acc);
    } else {
      acc += f.wx[l] * inner;
    }
  }
  return acc;
}

// One destination pixel of channels-last maps whose ranges have KY y and KX x segments (known at
// compile time): the sums of gather_pixel_block, in the same order, but with the KY x KX source
// pointers and weights computed once for all channels, then two vector registers of channels at a
// time (one, then scalars, at the end).
template <Direction D, int KY, int KX, class T>
inline void gather_pixel_fixed(const AxisImage<T>& ay, const AxisImage<T>& ax, int ky0, int kx0,
                               const T* image, std::int64_t row_stride, int channels, T scale,
                               T* out) {
  typedef typename Vec<T>::type V;
  constexpr int lanes = int(vector_bytes / sizeof(T));
  const FixedPixel<KY, KX, T> f =
      fixed_pixel<D, KY, KX>(ay, ax, ky0, kx0, image, row_stride, channels);
  const auto& p = f.p;
  const auto& wy = f.wy;
  const auto& wx = f.wx;
  int c = 0;
  for (; c + 2 * lanes <= channels; c += 2 * lanes) {
    // acc0 and acc1 are set at l == 0. The initial values only quiet GCC 12's
    // -Wmaybe-uninitialized, which took them for unset in the sanitized build with
    // -march=native on a Cascade Lake Xeon; ssb_bench at -O3 is the same instructions with or
    // without (objdump).
    V acc0 = V(), acc1 = V(), x0, x1;
    for (int l = 0; l < KX; ++l) {
      vec_load(x0, p[l][0] + c);
      vec_load(x1, p[l][0] + c + lanes);
      V inner0 = wy[0] * x0, inner1 = wy[0] * x1;
      SSB_FIRST_TERM(inner0);
      SSB_FIRST_TERM(inner1);
      for (int k = 1; k < KY; ++k) {
        vec_load(x0, p[l][k] + c);
        vec_load(x1, p[l][k] + c + lanes);
        inner0 += wy[k] * x0;
        inner1 += wy[k] * x1;
      }
      if (l == 0) {
        acc0 = wx[0] * inner0;
        acc1 = wx[0] * inner1;
        SSB_FIRST_TERM(acc0);
        SSB_FIRST_TERM(acc1);
      } else {
        acc0 += wx[l] * inner0;
        acc1 += wx[l] * inner1;
      }
    }
    acc0 *= scale;
    acc1 *= scale;
    vec_store(out + c, acc0);
    vec_store(out + c + lanes, acc1);
  }
  for (; c + lanes <= channels; c += lanes) {
    V acc = fixed_pixel_vector<V>(f, c, [](int, int, const V&) {});
    acc *= scale;
    vec_store(out + c, acc);
  }
  for (; c < channels; ++c) {
    T acc = T(0);
    for (int l = 0; l < KX; ++l) {
      T inner = wy[0] * p[l][0][c];
      SSB_FIRST_TERM(inner);
      for (int k = 1; k < KY; ++k) inner += wy[k] * p[l][k][c];
      if (l == 0) {
        acc = wx[0] * inner;
        SSB_FIRST_TERM(acc);
      } else {
        acc += wx[l] * inner;
      }
    }
    out[c] = scale * acc;
  }
}

// gather_pixel_fixed for ranges of up to 3 x 3 segments; false (nothing done) for larger ones.
template <Direction D, class T>
inline bool gather_pixel_small(const AxisImage<T>& ay, const AxisImage<T>& ax, int ky0, int ky1,
                               int kx0, int kx1, const T* image, std::int64_t row_stride,
                               int channels, T scale, T* out) {
  const int cy = ky1 - ky0, cx = kx1 - kx0;
  if (cy > 3 || cx > 3) return false;
  switch (cy * 4 + cx) {
#define SSB_FIXED_CASE(Y, X)                                                                \
  case Y * 4 + X:                                                                           \
    gather_pixel_fixed<D, Y, X>(ay, ax, ky0, kx0, image, row_stride, channels, scale, out); \
    return true;
    SSB_FIXED_CASE(1, 1)
    SSB_FIXED_CASE(1, 2)
    SSB_FIXED_CASE(1, 3)
    SSB_FIXED_CASE(2, 1)
    SSB_FIXED_CASE(2, 2)
    SSB_FIXED_CASE(2, 3)
    SSB_FIXED_CASE(3, 1)
    SSB_FIXED_CASE(3, 2)
    SSB_FIXED_CASE(3, 3)
#undef SSB_FIXED_CASE
  }
  return false;
}
#endif

// Destination pixel (a, b) of channels-last maps, y range [ky0, ky1) of row a: by
// gather_pixel_fixed (with Fixed, for ranges of up to 3 x 3 segments and pixels of more than
// pixel_block channels), else gather_pixel_block, pixel_block channels at a time; zeros for an
// empty range. `image` is the source image, `out` the destination pixel.
template <Direction D, class T, bool Fixed = true>
SSB_HOST_DEVICE inline void gather_pixel_nhwc(const AxisImage<T>& ay, const AxisImage<T>& ax,
                                              int ky0, int ky1, int b, const T* image,
                                              std::int64_t row_stride, int channels, T scale,
                                              T* out) {
  const int kx0 = range_begin<D>(ax, b), kx1 = range_begin<D>(ax, b + 1);
  if (ky0 == ky1 || kx0 == kx1) {
    for (int c = 0; c < channels; ++c) out[c] = T(0);
    return;
  }
#if defined(SSB_FIXED_PIXELS)
  // (Pixels of one register block of channels are as fast or faster through gather_pixel_block:
  // the pointers are set up for too few channels. planar.hpp's channel tiles pass Fixed = false:
  // with the fixed bodies compiled in, their inverse gathers were 6-25% slower, 2 threads.)
  if (Fixed && channels > pixel_block<T>() &&
      gather_pixel_small<D>(ay, ax, ky0, ky1, kx0, kx1, image, row_stride, channels, scale, out)) {
    return;
  }
#endif
  gather_pixel_blocks<D>(ay, ax, ky0, ky1, kx0, kx1, image, row_stride, channels, 0, scale, out);
}

// What the row bodies of channels-last maps need of destination row (n, a): its y range, the
// channels, the source image's row stride, the destination width, the source image and the
// destination row.
template <class T>
struct NhwcRow {
  int ky0, ky1, channels, dst_w;
  std::int64_t row_stride;
  const T* image;
  T* out;
};
template <Direction D, class T>
SSB_HOST_DEVICE inline NhwcRow<T> nhwc_row(const AxisImage<T>& ay, const AxisImage<T>& ax,
                                           const FeatureMap<const T>& src, const FeatureMap<T>& dst,
                                           int n, int a) {
  return {range_begin<D>(ay, a),
          range_begin<D>(ay, a + 1),
          src.channels,
          D == Direction::forward ? ax.out_size : ax.in_size,
          std::int64_t(src.width) * src.channels,
          src.data + src.pixel_offset(n, 0, 0),
          dst.data + dst.pixel_offset(n, a, 0)};
}

// Destination row (n, a) of channels-last maps (src and dst NHWC), pixel by pixel
// (gather_pixel_nhwc). A source pixel shared by neighbouring destination pixels is re-read from
// cache; nothing is staged in scratch. (Faster than the separable body below while the rows it
// walks stay in cache; walking one channel block along the whole row was about 2x slower.
// gather_row picks between the two.)
template <Direction D, class T, bool Fixed = true>
SSB_HOST_DEVICE inline void gather_row_nhwc(const AxisImage<T>& ay, const AxisImage<T>& ax,
                                            const FeatureMap<const T>& src,
                                            const FeatureMap<T>& dst, int n, int a, T scale) {
  const NhwcRow<T> r = nhwc_row<D>(ay, ax, src, dst, n, a);
  T* out = r.out;
  for (int b = 0; b < r.dst_w; ++b, out += r.channels) {
    gather_pixel_nhwc<D, T, Fixed>(ay, ax, r.ky0, r.ky1, b, r.image, r.row_stride, r.channels,
                                   scale, out);
  }
}

// One destination pixel of the separable body: out[c] = scale * sum_{l = kx0 .. kx1-1} wx_l *
// row[source_x(l) * C + c] from the first term, `row` holding the y sums of whole source rows
// (kx0 < kx1). The y sums are those of gather_pixel_block, so the bits are too.
template <Direction D, int Count, class T>
SSB_HOST_DEVICE inline void x_sum_pixel_block(const AxisImage<T>& ax, int kx0, int kx1,
                                              const T* row, int channels, int count, T scale,
                                              T* out) {
#if defined(SSB_VECTOR_EXTENSIONS)
  constexpr int lanes = int(vector_bytes / sizeof(T));
  if (Count > 0 && Count % lanes == 0) {
    typedef typename Vec<T>::type V;
    constexpr int nv = Count > 0 ? Count / lanes : 1;
    V acc[nv];
    segment_sum_block<D>(ax, kx0, kx1, row, channels, acc);
    for (int v = 0; v < nv; ++v) {
      acc[v] *= scale;
      vec_store(out + v * lanes, acc[v]);
    }
    return;
  }
#endif
  const int cn = Count > 0 ? Count : count;
  T acc[pixel_block<T>()];
  const T* first = row + std::int64_t(source_index<D>(ax, kx0)) * channels;
  for (int c = 0; c < cn; ++c) acc[c] = ax.weight[kx0] * first[c];
  for (int l = kx0 + 1; l < kx1; ++l) {
    const T wx = ax.weight[l];
    const T* in = row + std::int64_t(source_index<D>(ax, l)) * channels;
    for (int c = 0; c < cn; ++c) acc[c] += wx * in[c];
  }
  for (int c = 0; c < cn; ++c) out[c] = scale * acc[c];
}

// When gather_row takes the separable body: forward gathers (sample, d_y) of source rows at least
// SSB_NHWC_SEPARABLE_MIN_WIDTH pixels wide with at most SSB_NHWC_SEPARABLE_MAX_CHANNEL_BYTES per
// pixel. Off by default: since the per-pixel body has gather_pixel_fixed, it took 0.68-0.80x the
// separable body's time on the bench shapes where the separable one used to win (24-128 wide,
// 512 channels; 2-core AVX-512 EPYC, 2 threads, medians of 5), and 0.63x on 56x56x256 -> 14 (one
// thread); only 64x64x512 -> 16 (4 to 5 segments per output, beyond gather_pixel_fixed) was 1.1x.
// (Before it, the separable body took 0.58-0.83x on those shapes.) Tune per machine with the
// macros, e.g. SSB_NHWC_SEPARABLE_MIN_WIDTH=24.
#ifndef SSB_NHWC_SEPARABLE_MIN_WIDTH
#define SSB_NHWC_SEPARABLE_MIN_WIDTH 2147483647
#endif
#ifndef SSB_NHWC_SEPARABLE_MAX_CHANNEL_BYTES
#define SSB_NHWC_SEPARABLE_MAX_CHANNEL_BYTES 2048
#endif

// Destination row (n, a) of channels-last maps, separably: the y sums of whole source rows,
// row[w][c] = sum_{k in range_y(a)} wy_k src[n, source_y(k), w, c] (one long contiguous loop per
// segment, sum_rows), then the x sums per destination pixel from `row` (src.width * src.channels
// elements of scratch). The same sums in the same order as gather_row_nhwc: the same bits.
template <Direction D, class T>
SSB_HOST_DEVICE inline void gather_row_nhwc_separable(const AxisImage<T>& ay,
                                                      const AxisImage<T>& ax,
                                                      const FeatureMap<const T>& src,
                                                      const FeatureMap<T>& dst, int n, int a,
                                                      T scale, T* row) {
  const int ky0 = range_begin<D>(ay, a), ky1 = range_begin<D>(ay, a + 1);
  const int channels = src.channels;
  const std::int64_t row_size = std::int64_t(src.width) * channels;
  const int dst_w = D == Direction::forward ? ax.out_size : ax.in_size;
  T* out = dst.data + dst.pixel_offset(n, a, 0);
  if (ky0 == ky1) {
    for (std::int64_t e = 0; e < std::int64_t(dst_w) * channels; ++e) out[e] = T(0);
    return;
  }
  sum_rows<D>(ay, ky0, ky1, src.data + src.pixel_offset(n, 0, 0), row_size, row_size, row);
  for (int b = 0; b < dst_w; ++b, out += channels) {
    const int kx0 = range_begin<D>(ax, b), kx1 = range_begin<D>(ax, b + 1);
    if (kx0 == kx1) {
      for (int c = 0; c < channels; ++c) out[c] = T(0);
      continue;
    }
    int c0 = 0;
    for (; c0 + pixel_block<T>() <= channels; c0 += pixel_block<T>()) {
      x_sum_pixel_block<D, pixel_block<T>()>(ax, kx0, kx1, row + c0, channels, pixel_block<T>(),
                                             scale, out + c0);
    }
    if (c0 < channels) {
      x_sum_pixel_block<D, 0>(ax, kx0, kx1, row + c0, channels, channels - c0, scale, out + c0);
    }
  }
}

// Whether gather_row takes the separable body for NHWC maps (above).
template <Direction D, class T>
SSB_HOST_DEVICE inline bool separable_rows(const FeatureMap<const T>& src) {
  return D == Direction::forward && src.width >= SSB_NHWC_SEPARABLE_MIN_WIDTH &&
         std::int64_t(src.channels) * std::int64_t(sizeof(T)) <=
             std::int64_t(SSB_NHWC_SEPARABLE_MAX_CHANNEL_BYTES);
}

// Destination row (n, a) of maps that are not all NCHW (those have planar.hpp): for src and dst
// NHWC the per-pixel body, or the separable one (into `row`: src.width * src.channels elements)
// for the forward gathers of wide rows (above); the per-channel body otherwise.
template <Direction D, class T>
SSB_HOST_DEVICE inline void gather_row(const Weights<T>& weights, const FeatureMap<const T>& src,
                                       const FeatureMap<T>& dst, int n, int a, T scale, T* row) {
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  if (src.layout == Layout::nhwc && dst.layout == Layout::nhwc) {
    if (separable_rows<D>(src)) {
      gather_row_nhwc_separable<D>(ay, ax, src, dst, n, a, scale, row);
    } else {
      gather_row_nhwc<D>(ay, ax, src, dst, n, a, scale);
    }
  } else {
    const int dst_w = D == Direction::forward ? ax.out_size : ax.in_size;
    for (int b = 0; b < dst_w; ++b) gather_pixel_strided<D>(ay, ax, src, dst, n, a, b, scale);
  }
}

}  // namespace detail
}  // namespace ssb
