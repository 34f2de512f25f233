// ssbnet: weight-gradient and saliency-gradient bodies (MATH.md, "Backward").
//
// Both weight gradients of MATH.md have one shape. With A a map on the sampled grid (Hr, Wr) and B
// a map on the input grid (H, W), and for a y segment k = (i_k, h_k) and an x segment l = (q_l,
// w_l),
//     D(k, l) = sum_c A[i_k, q_l, c] * B[h_k, w_l, c]
//     dGy[k] += scale * sum_{l = 0..Kx-1} wx_l * D(k, l)
//     dGx[l] += scale * sum_{k = 0..Ky-1} wy_k * D(k, l)
// sample_backward:          A = dXr, B = X,  scale = Hr*Wr
// sample_inverse_backward:  A = Y,   B = dZ, scale = H*W
// (G is zero off the segments and so is its gradient there.) The pair dots of kernels.hpp and
// planar_dots.hpp produce D(k, l); segment_grad finishes the job, one call per segment, so segments
// can run in any order or in parallel without atomics.
#pragma once

#include <cstdint>

#include "types.hpp"
#include "weights.hpp"

namespace ssb {
namespace detail {

// scale * sum over the segments of the other axis of w_other * D(k, l), for segment `fixed` of
// axis y (FixedIsY) or x. `dots` holds D of one image as [capacity_y][stride].
template <bool FixedIsY, class T>
SSB_HOST_DEVICE inline T segment_grad(const AxisImage<T>& other, const T* dots, int stride,
                                      int fixed, T scale) {
  const int count = other.count();
  T sum = T(0);
  for (int k = 0; k < count; ++k) {
    sum += other.weight[k] * (FixedIsY ? dots[std::int64_t(fixed) * stride + k]
                                       : dots[std::int64_t(k) * stride + fixed]);
  }
  return scale * sum;
}

// Weight-gradient slot `slot` of image n (slot < capacity_y: y segment `slot`, else x segment
// slot - capacity_y), decoded: its axis, its segment there, whether the slot holds a segment, the
// other axis (whose segments its sum runs over), the image's pair dots and where its gradient
// goes. Shared by add_slot_grad and the GPU backends' segment_grads_kernel.
template <class T>
struct GradSlot {
  bool fixed_is_y;
  int fixed;
  bool holds_segment;
  AxisImage<T> other;
  const T* dots;  // the image's pair dots, [capacity_y][capacity_x]
  T* out;         // the slot in d_weights
};
template <class T>
SSB_HOST_DEVICE inline GradSlot<T> grad_slot(const Weights<T>& w, const T* dots,
                                             const WeightsGrad<T>& d_weights, int n, int slot) {
  const int cap_y = w.y.capacity(), cap_x = w.x.capacity();
  const AxisImage<T> ay = w.y.image(n), ax = w.x.image(n);
  const bool fixed_is_y = slot < cap_y;
  const int fixed = fixed_is_y ? slot : slot - cap_y;
  return {fixed_is_y,
          fixed,
          fixed < (fixed_is_y ? ay.count() : ax.count()),
          fixed_is_y ? ax : ay,
          dots + std::int64_t(n) * cap_y * cap_x,
          fixed_is_y ? d_weights.y + std::int64_t(n) * cap_y + fixed
                     : d_weights.x + std::int64_t(n) * cap_x + fixed};
}

// d_weights += segment_grad of slot `slot` of image n (grad_slot), when the slot holds a segment.
// `dots` holds the pair dots of the whole batch ([batch][capacity_y][capacity_x]). One call per
// slot, any order, in parallel: each writes only its own slot.
template <class T>
SSB_HOST_DEVICE inline void add_slot_grad(const Weights<T>& w, const T* dots,
                                          const WeightsGrad<T>& d_weights, int n, int slot,
                                          T scale) {
  const GradSlot<T> g = grad_slot(w, dots, d_weights, n, slot);
  if (!g.holds_segment) return;
  const int cap_x = w.x.capacity();
  *g.out += g.fixed_is_y ? segment_grad<true>(g.other, g.dots, cap_x, g.fixed, scale)
                         : segment_grad<false>(g.other, g.dots, cap_x, g.fixed, scale);
}

// marginal_suffix's second half: with scratch[j] = dCS[j] (j = 1 .. in - 1), leaves
// scratch[h] = dsy[h] for h < in and returns sum_h dsy[h] sy[h]. A chain in h, in this order.
template <class Sy>
SSB_HOST_DEVICE inline double marginal_suffix_chain(int in, const Sy& sy, double* scratch) {
  double suffix = 0.0;  // sum_{j = h+1 .. in-1} dCS[j]
  double weighted = 0.0;
  for (int h = in - 1; h >= 0; --h) {
    const double d_cs = h == 0 ? 0.0 : scratch[h];
    scratch[h] = suffix;
    weighted += suffix * sy(h);
    suffix += d_cs;
  }
  return weighted;
}

// marginal_suffix's dCS[j] (j = 0 .. in) on its own, from in_begin: the ends of input row j - 1's
// segments added from 0, then the starts of row j's subtracted, in segment order: its terms in
// its order, so the same bits. For the GPU backends, which compute the rows in parallel and then
// run marginal_suffix_chain.
template <class T>
SSB_HOST_DEVICE inline double marginal_dcs(const AxisImage<T>& a, const T* d_weight, int j) {
  double sum = 0.0;
  if (j > 0) {
    for (int k = a.in_begin[j - 1]; k < a.in_begin[j]; ++k) {
      if (a.flags[k] & end_is_saliency) sum += double(d_weight[k]);
    }
  }
  if (j < a.in_size) {
    for (int k = a.in_begin[j]; k < a.in_begin[j + 1]; ++k) {
      if (a.flags[k] & start_is_saliency) sum -= double(d_weight[k]);
    }
  }
  return sum;
}

// Segment weights -> breakpoints -> marginal -> row (or column) sums, for one image and axis:
//     dCS[j_k + 1] += dw_k if end_is_saliency;  dCS[j_k] -= dw_k if start_is_saliency
//     dCS[0] = dCS[in] = 0 (constants);  dsy[h] = sum_{j = h+1 .. in-1} dCS[j]
//     dr[h] = (dsy[h] - sum_h' dsy[h'] sy[h']) / T,   sy[h] = mass[h] / T
// `scratch` has in + 1 doubles; on return scratch[h] = dr[h] for h < in.
//
// In two parts, so that the GPU backends can run the second (and the divisions sy) in parallel:
// marginal_suffix leaves scratch[h] = dsy[h] and returns sum_h' dsy[h'] sy[h'] (with sy(h) the
// function giving sy[h]); marginal_finish is dr[h] from them.
template <class T, class Sy>
SSB_HOST_DEVICE inline double marginal_suffix(const AxisImage<T>& a, const T* d_weight,
                                              const Sy& sy, double* scratch) {
  const int in = a.in_size, count = a.count();
  // dCS[j] into scratch[j], j = 0 .. in, each written once (no read-modify-write of memory, whose
  // store-to-load chains were most of this function's time on the host). The terms of dCS[j] come
  // from the segments of input row j - 1 (ends) and then of row j (starts), and in_index does
  // not decrease, so two running sums see them in k order from 0: the sums of the scatter
  // dCS[j_k + 1] += dw_k, dCS[j_k] -= dw_k over k, bit for bit.
  int j = 0;                   // the input row of the segments being read
  double at_j = 0.0;           // dCS[j] so far
  double after = 0.0;          // dCS[j + 1] so far
  const auto next_row = [&] {  // dCS[j] is complete: write it and move on to row j + 1
    scratch[j++] = at_j;
    at_j = after;
    after = 0.0;
  };
  for (int k = 0; k < count; ++k) {
    while (j < a.in_index[k]) next_row();
    const double dw = double(d_weight[k]);
    if (a.flags[k] & end_is_saliency) after += dw;
    if (a.flags[k] & start_is_saliency) at_j -= dw;
  }
  while (j <= in) next_row();
  return marginal_suffix_chain(in, sy, scratch);
}
SSB_HOST_DEVICE inline double marginal_finish(double dsy, double weighted, double total) {
  return (dsy - weighted) / total;
}
// marginal_suffix with sy[h] = mass[h] / total.
template <class T>
SSB_HOST_DEVICE inline double marginal_suffix_of_mass(const AxisImage<T>& a, const T* d_weight,
                                                      const double* mass, double total,
                                                      double* scratch) {
  return marginal_suffix(
      a, d_weight, [&](int h) { return mass[h] / total; }, scratch);
}
template <class T>
SSB_HOST_DEVICE inline void marginal_grad(const AxisImage<T>& a, const T* d_weight,
                                          const double* mass, double total, double* scratch) {
  const double weighted = marginal_suffix_of_mass(a, d_weight, mass, total, scratch);
  for (int h = 0; h < a.in_size; ++h) scratch[h] = marginal_finish(scratch[h], weighted, total);
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
  // marginal_grad of both axes, in its parts, ordered so that no loop reads what the loop just
  // before it stored: the compiler vectorises the finish over w (and then wide loads cannot be
  // forwarded from the suffix sums' scalar stores, a stall that was a quarter of this function's
  // time on 5x5 maps). The finish of y is done row by row below. The same operations, so the
  // same bits.
  const double weighted_x = marginal_suffix_of_mass(
      weights.x.image(n), d_weights.x + std::int64_t(n) * d_weights.capacity_x,
      weights.x.mass + std::int64_t(n) * width, total, dc);
  const double weighted_y = marginal_suffix_of_mass(
      weights.y.image(n), d_weights.y + std::int64_t(n) * d_weights.capacity_y,
      weights.y.mass + std::int64_t(n) * height, total, dr);
  for (int w = 0; w < width; ++w) dc[w] = marginal_finish(dc[w], weighted_x, total);
  for (int h = 0; h < height; ++h) {
    const double dr_h = marginal_finish(dr[h], weighted_y, total);
    dr[h] = dr_h;
    for (int w = 0; w < width; ++w) out[std::int64_t(h) * width + w] = S(dr_h + dc[w]);
  }
}

}  // namespace detail
}  // namespace ssb
