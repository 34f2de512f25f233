// ssbnet: weight-gradient and saliency-gradient bodies (MATH.md, "Backward").
//
// Both weight gradients of MATH.md have one shape. With A a map on the sampled grid (Hr, Wr) and B
// a map on the input grid (H, W), and for a y segment k = (i_k, h_k) and an x segment l = (q_l, w_l),
//     D(k, l) = sum_c A[i_k, q_l, c] * B[h_k, w_l, c]
//     dGy[k] += scale * sum_{l = 0..Kx-1} wx_l * D(k, l)
//     dGx[l] += scale * sum_{k = 0..Ky-1} wy_k * D(k, l)
// sample_backward:          A = dXr, B = X,  scale = Hr*Wr
// sample_inverse_backward:  A = Y,   B = dZ, scale = H*W
// (G is zero off the segments and so is its gradient there.) Each segment's gradient is one call,
// so a backend may run segments in any order or in parallel without atomics.
#pragma once

#include <cstdint>

#include "types.hpp"
#include "weights.hpp"

namespace ssb {
namespace detail {

// Lanes of the partial sums of dot(): a fixed reassociation, so the loop vectorises without
// -ffast-math and gives the same bits on every backend and thread count.
constexpr int dot_lanes = 16;

// sum_{c < count} a[c * stride_a] * b[c * stride_b], summed in dot_lanes interleaved partial sums
// combined pairwise.
template <class T>
SSB_HOST_DEVICE inline T dot(const T* a, std::int64_t stride_a, const T* b, std::int64_t stride_b,
                             int count) {
  T lane[dot_lanes];
  for (int u = 0; u < dot_lanes; ++u) lane[u] = T(0);
  int c = 0;
  if (stride_a == 1 && stride_b == 1) {
    for (; c + dot_lanes <= count; c += dot_lanes) {
      for (int u = 0; u < dot_lanes; ++u) lane[u] += a[c + u] * b[c + u];
    }
  } else {
    for (; c + dot_lanes <= count; c += dot_lanes) {
      for (int u = 0; u < dot_lanes; ++u) lane[u] += a[(c + u) * stride_a] * b[(c + u) * stride_b];
    }
  }
  for (int u = 0; c < count; ++c, ++u) lane[u] += a[c * stride_a] * b[c * stride_b];
  for (int width = dot_lanes / 2; width > 0; width /= 2) {
    for (int u = 0; u < width; ++u) lane[u] += lane[u + width];
  }
  return lane[0];
}

// scale * sum over the segments of the other axis of w_other * D(k, l), for segment `fixed` of
// axis y (FixedIsY) or x. `sampled` is A and `input` is B of the file comment.
template <bool FixedIsY, class T>
SSB_HOST_DEVICE inline T segment_grad(const AxisImage<T>& ay, const AxisImage<T>& ax,
                                      const FeatureMap<const T>& sampled,
                                      const FeatureMap<const T>& input, int n, int fixed, T scale) {
  const AxisImage<T>& other = FixedIsY ? ax : ay;
  const AxisImage<T>& self = FixedIsY ? ay : ax;
  const int out_fixed = self.out_index[fixed], in_fixed = self.in_index[fixed];
  const std::int64_t cs_a = sampled.channel_stride(), cs_b = input.channel_stride();
  const int channels = sampled.channels, count = other.count();
  T sum = T(0);
  for (int k = 0; k < count; ++k) {
    const int out_k = other.out_index[k], in_k = other.in_index[k];
    const T* a = sampled.data + (FixedIsY ? sampled.pixel_offset(n, out_fixed, out_k)
                                          : sampled.pixel_offset(n, out_k, out_fixed));
    const T* b = input.data + (FixedIsY ? input.pixel_offset(n, in_fixed, in_k)
                                        : input.pixel_offset(n, in_k, in_fixed));
    sum += other.weight[k] * dot(a, cs_a, b, cs_b, channels);
  }
  return scale * sum;
}

// Segment weights -> breakpoints -> marginal -> row (or column) sums, for one image and axis:
//     dCS[j_k + 1] += dw_k if end_is_saliency;  dCS[j_k] -= dw_k if start_is_saliency
//     dCS[0] = dCS[in] = 0 (constants);  dsy[h] = sum_{j = h+1 .. in-1} dCS[j]
//     dr[h] = (dsy[h] - sum_h' dsy[h'] sy[h']) / T,   sy[h] = mass[h] / T
// `scratch` has in + 1 doubles; on return scratch[h] = dr[h] for h < in.
template <class T>
SSB_HOST_DEVICE inline void marginal_grad(const AxisImage<T>& a, const T* d_weight,
                                          const double* mass, double total, double* scratch) {
  const int in = a.in_size, count = a.count();
  for (int j = 0; j <= in; ++j) scratch[j] = 0.0;
  for (int k = 0; k < count; ++k) {
    const double dw = double(d_weight[k]);
    if (a.flags[k] & end_is_saliency) scratch[a.in_index[k] + 1] += dw;
    if (a.flags[k] & start_is_saliency) scratch[a.in_index[k]] -= dw;
  }
  double suffix = 0.0;  // sum_{j = h+1 .. in-1} dCS[j]
  double weighted = 0.0;
  for (int h = in - 1; h >= 0; --h) {
    const double d_cs = h == 0 ? 0.0 : scratch[h];
    scratch[h] = suffix;
    weighted += suffix * (mass[h] / total);
    suffix += d_cs;
  }
  for (int h = 0; h < in; ++h) scratch[h] = (scratch[h] - weighted) / total;
}

// dS[h, w] = dr[h] + dc[w] for image n (eqs. 1-2 backward), or 0 where the map summed to 0
// (the uniform fallback does not depend on the map). Overwrites d_saliency of image n.
template <class T, class S>
SSB_HOST_DEVICE inline void saliency_grad_image(const Weights<T>& weights,
                                                const WeightsGrad<T>& d_weights, S* d_saliency,
                                                int n) {
  const int height = weights.y.in_size, width = weights.x.in_size;
  S* out = d_saliency + std::int64_t(n) * height * width;
  const double total = weights.total[n];
  if (!(total > 0.0)) {
    for (std::int64_t e = 0; e < std::int64_t(height) * width; ++e) out[e] = S(0);
    return;
  }
  double* dr = weights.gradient_scratch + std::int64_t(n) * (height + 1 + width + 1);
  double* dc = dr + height + 1;
  marginal_grad(weights.y.image(n), d_weights.y + std::int64_t(n) * d_weights.capacity_y,
                weights.y.mass + std::int64_t(n) * height, total, dr);
  marginal_grad(weights.x.image(n), d_weights.x + std::int64_t(n) * d_weights.capacity_x,
                weights.x.mass + std::int64_t(n) * width, total, dc);
  for (int h = 0; h < height; ++h) {
    for (int w = 0; w < width; ++w) out[std::int64_t(h) * width + w] = S(dr[h] + dc[w]);
  }
}

}  // namespace detail
}  // namespace ssb
