// ssbnet: argument checks of the entry points. Every check runs before anything is written and
// throws ssb::error with a message "<verb>: <argument> ...".
#pragma once

#include <cstdint>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include "../types.hpp"
#include "../weights.hpp"

namespace ssb {
namespace detail {

inline std::string shape_string(long long n, long long h, long long w) {
  return std::to_string(n) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

// A view with no data and no extents stands for "not requested" where an output is optional.
template <class T>
bool is_empty(const FeatureMap<T>& v) {
  return v.data == nullptr && v.batch == 0 && v.height == 0 && v.width == 0 && v.channels == 0;
}
template <class T>
bool is_empty(const WeightsGrad<T>& g) {
  return g.y == nullptr && g.x == nullptr && g.batch == 0 && g.capacity_y == 0 && g.capacity_x == 0;
}

template <class T>
void check_view(const char* verb, const char* name, const FeatureMap<T>& v) {
  const std::string prefix = std::string(verb) + ": " + name;
  check_positive(verb, (std::string(name) + ".batch").c_str(), v.batch);
  check_positive(verb, (std::string(name) + ".height").c_str(), v.height);
  check_positive(verb, (std::string(name) + ".width").c_str(), v.width);
  check_positive(verb, (std::string(name) + ".channels").c_str(), v.channels);
  if (v.data == nullptr) fail(prefix + ".data is null");
  if (v.layout != Layout::nhwc && v.layout != Layout::nchw) fail(prefix + ".layout is invalid");
}

template <class T>
void check_view(const char* verb, const char* name, const SaliencyMap<T>& s) {
  check_positive(verb, (std::string(name) + ".batch").c_str(), s.batch);
  check_positive(verb, (std::string(name) + ".height").c_str(), s.height);
  check_positive(verb, (std::string(name) + ".width").c_str(), s.width);
  if (s.data == nullptr) fail(std::string(verb) + ": " + name + ".data is null");
}

// `v` must cover the batch and the (height, width) that the weights map from or to.
template <class V>
void check_grid(const char* verb, const char* name, const V& v, int batch, int height, int width,
                const char* grid) {
  if (v.batch != batch || v.height != height || v.width != width) {
    fail(std::string(verb) + ": " + name + " is " + shape_string(v.batch, v.height, v.width) +
         " (N x H x W) but the weights' " + grid + " grid is " +
         shape_string(batch, height, width));
  }
}

template <class A, class B>
void check_same_channels(const char* verb, const char* name_a, const FeatureMap<A>& a,
                         const char* name_b, const FeatureMap<B>& b) {
  if (a.channels != b.channels) {
    fail(std::string(verb) + ": " + name_b + ".channels (" + std::to_string(b.channels) +
         ") differs from " + name_a + ".channels (" + std::to_string(a.channels) + ")");
  }
}

// An output must not share memory with an input: the gathers read the input while writing.
template <class A, class B>
void check_no_overlap(const char* verb, const char* out_name, const A* out, std::int64_t out_size,
                      const char* in_name, const B* in, std::int64_t in_size) {
  const auto o = reinterpret_cast<std::uintptr_t>(out), i = reinterpret_cast<std::uintptr_t>(in);
  const auto o_end = o + std::uintptr_t(out_size) * sizeof(A);
  const auto i_end = i + std::uintptr_t(in_size) * sizeof(B);
  if (o < i_end && i < o_end) {
    fail(std::string(verb) + ": " + out_name + " overlaps " + in_name);
  }
}

// d_weights (accumulated) must not share memory with a map the same call reads or writes.
template <class T, class V>
void check_grad_no_overlap(const char* verb, const WeightsGrad<T>& g, const char* name,
                           const FeatureMap<V>& v) {
  if (v.data == nullptr) return;
  check_no_overlap(verb, "d_weights", g.y, std::int64_t(g.batch) * g.capacity_y, name, v.data,
                   v.size());
  check_no_overlap(verb, "d_weights", g.x, std::int64_t(g.batch) * g.capacity_x, name, v.data,
                   v.size());
}

// Memory a verb writes (or compute_weights reads) must lie outside the weights' workspace.
template <class T, class V>
void check_outside_workspace(const char* verb, const char* name, const V* data, std::int64_t count,
                             const Weights<T>& w) {
  if (data == nullptr) return;
  check_no_overlap(verb, name, data, count, "the weights' workspace",
                   static_cast<const unsigned char*>(w.workspace), std::int64_t(w.workspace_bytes));
}

template <class T>
void check_weights_grad(const char* verb, const char* name, const WeightsGrad<T>& g,
                        const Weights<T>& w) {
  if (g.y == nullptr || g.x == nullptr) {
    fail(std::string(verb) + ": " + name +
         " has a null pointer; make it with ssb::weights_grad_view");
  }
  if (g.batch != w.batch || g.capacity_y != w.y.capacity() || g.capacity_x != w.x.capacity()) {
    fail(std::string(verb) + ": " + name + " does not match the weights (batch " +
         std::to_string(g.batch) + " vs " + std::to_string(w.batch) + ", capacity_y " +
         std::to_string(g.capacity_y) + " vs " + std::to_string(w.y.capacity()) + ", capacity_x " +
         std::to_string(g.capacity_x) + " vs " + std::to_string(w.x.capacity()) +
         "); make it with ssb::weights_grad_view from these weights");
  }
  check_outside_workspace(verb, name, g.y, std::int64_t(g.batch) * g.capacity_y, w);
  check_outside_workspace(verb, name, g.x, std::int64_t(g.batch) * g.capacity_x, w);
}

// Finds the first saliency value of image n that is negative, NaN or infinite (its offset h*W + w
// in `position`, or -1), and whether the row or column sums of the map overflow double, summed
// exactly as compute_weights will sum them.
struct SaliencyCheck {
  std::int64_t position = -1;
  bool sum_overflows = false;
};

// The checks of a map (`size` values) from what compute_masses returned: its column masses, its
// smallest value and its total. The first bad position is looked for only when something is off.
template <class S>
SSB_HOST_DEVICE inline SaliencyCheck saliency_findings(const S* map, std::int64_t size,
                                                       const double* col_mass, int width,
                                                       double smallest, double total) {
  SaliencyCheck result;
  if (smallest < 0.0 || !(total <= largest_double)) {
    result.position = first_bad_value(map, size);
    if (result.position >= 0) return result;
  }
  result.sum_overflows = sums_overflow(col_mass, width, total);
  return result;
}

// `masses` receives H + W + 1 doubles: the row sums, column sums and total of compute_masses,
// which compute_weights then copies into the workspace once every image has passed.
template <class S>
SaliencyCheck check_saliency_image(const SaliencyMap<S>& s, int n, double* masses) {
  const std::int64_t size = std::int64_t(s.height) * s.width;
  const S* map = s.data + std::int64_t(n) * size;
  double* row_mass = masses;
  double* col_mass = masses + s.height;
  double* total = col_mass + s.width;
  // One pass sums and finds the smallest value (NaN compares false and is skipped there, but
  // makes the total NaN).
  const double least = compute_masses(map, s.height, s.width, row_mass, col_mass, total);
  return saliency_findings(map, size, col_mass, s.width, least, *total);
}

// The error of a map that failed check_saliency_image; `bad` is the value at check.position
// (read by the caller: on the host here, from device memory by the Kokkos backend).
[[noreturn]] inline void fail_saliency_value(const char* verb, int width, int n,
                                             const SaliencyCheck& check, double bad) {
  if (check.position < 0) {
    fail(std::string(verb) + ": saliency of image n=" + std::to_string(n) +
         " sums to infinity in double; scale the map down");
  }
  const int h = int(check.position / width), w = int(check.position % width);
  std::ostringstream value;
  value << std::setprecision(17) << bad;
  fail(std::string(verb) + ": saliency[n=" + std::to_string(n) + ", h=" + std::to_string(h) +
       ", w=" + std::to_string(w) + "] is " + value.str() +
       "; saliency values must be finite and >= 0");
}

template <class S>
[[noreturn]] void fail_saliency(const char* verb, const SaliencyMap<S>& s, int n,
                                const SaliencyCheck& check) {
  const double bad = check.position < 0
                         ? 0.0
                         : double(s.data[std::int64_t(n) * s.height * s.width + check.position]);
  fail_saliency_value(verb, s.width, n, check, bad);
}

// ---- the checks of each verb, shared by the host verbs (verbs.hpp) and the GPU backends --------

// A map and the name the messages give it.
template <class T>
struct Named {
  const char* name;
  FeatureMap<T> map;
};

// compute_weights: everything but the saliency values (checked where they are summed).
template <class S, class T>
void check_compute_weights(const char* verb, const SaliencyMap<S>& saliency, int out_h, int out_w,
                           const Weights<T>& weights) {
  check_view(verb, "saliency", saliency);
  check_positive(verb, "out_h", out_h);
  check_positive(verb, "out_w", out_w);
  check_weights(verb, weights);
  check_grid(verb, "saliency", saliency, weights.batch, weights.in_height(), weights.in_width(),
             "input");
  if (out_h != weights.out_height() || out_w != weights.out_width()) {
    fail(std::string(verb) + ": out_h x out_w is " + std::to_string(out_h) + "x" +
         std::to_string(out_w) + " but the weights were made for " +
         std::to_string(weights.out_height()) + "x" + std::to_string(weights.out_width()));
  }
  check_outside_workspace(verb, "saliency", saliency.data, saliency.size(), weights);
}

// sample (forward: `in` on the input grid, `out` on the sampled grid) and sample_inverse (the
// other way round).
template <class T, class I, class O>
void check_gather(const char* verb, const Weights<T>& w, bool forward, const Named<I>& in,
                  const Named<O>& out) {
  check_weights(verb, w);
  check_view(verb, in.name, in.map);
  check_view(verb, out.name, out.map);
  if (forward) {
    check_grid(verb, in.name, in.map, w.batch, w.in_height(), w.in_width(), "input");
    check_grid(verb, out.name, out.map, w.batch, w.out_height(), w.out_width(), "sampled");
  } else {
    check_grid(verb, in.name, in.map, w.batch, w.out_height(), w.out_width(), "sampled");
    check_grid(verb, out.name, out.map, w.batch, w.in_height(), w.in_width(), "input");
  }
  check_same_channels(verb, in.name, in.map, out.name, out.map);
  check_no_overlap(verb, out.name, out.map.data, out.map.size(), in.name, in.map.data,
                   in.map.size());
  check_outside_workspace(verb, out.name, out.map.data, out.map.size(), w);
}

// Which outputs a backward verb was asked for (an empty view is "not requested").
struct BackwardWants {
  bool d_data;
  bool d_weights;
};

// Both backward verbs: `primal` (x or y) lives on the input grid (sample_backward) or on the
// sampled grid (sample_inverse_backward), `upstream` (d_xr or d_z) on the other one, `d_primal`
// on the primal's grid; primal is only checked when d_weights is wanted.
template <class T, class P, class D>
BackwardWants check_sampler_backward(const char* verb, const Weights<T>& w, bool primal_on_input,
                                     const Named<P>& primal, const Named<P>& upstream,
                                     const Named<D>& d_primal, const WeightsGrad<T>& d_weights) {
  struct Grid {
    int height, width;
    const char* name;
  };
  const Grid input{w.in_height(), w.in_width(), "input"};
  const Grid sampled{w.out_height(), w.out_width(), "sampled"};
  const Grid& primal_grid = primal_on_input ? input : sampled;
  const Grid& upstream_grid = primal_on_input ? sampled : input;
  const auto& p = primal.map;
  const auto& u = upstream.map;
  const auto& d = d_primal.map;
  check_weights(verb, w);
  check_view(verb, upstream.name, u);
  check_grid(verb, upstream.name, u, w.batch, upstream_grid.height, upstream_grid.width,
             upstream_grid.name);
  const BackwardWants wants{!is_empty(d), !is_empty(d_weights)};
  if (wants.d_data) {
    check_view(verb, d_primal.name, d);
    check_grid(verb, d_primal.name, d, w.batch, primal_grid.height, primal_grid.width,
               primal_grid.name);
    check_same_channels(verb, upstream.name, u, d_primal.name, d);
    check_no_overlap(verb, d_primal.name, d.data, d.size(), upstream.name, u.data, u.size());
    check_outside_workspace(verb, d_primal.name, d.data, d.size(), w);
  }
  if (wants.d_weights) {
    check_view(verb, primal.name, p);
    check_grid(verb, primal.name, p, w.batch, primal_grid.height, primal_grid.width,
               primal_grid.name);
    check_same_channels(verb, upstream.name, u, primal.name, p);
    check_weights_grad(verb, "d_weights", d_weights, w);
    check_grad_no_overlap(verb, d_weights, upstream.name, u);
    check_grad_no_overlap(verb, d_weights, primal.name, p);
    check_grad_no_overlap(verb, d_weights, d_primal.name, d);
    if (wants.d_data) {
      check_no_overlap(verb, d_primal.name, d.data, d.size(), primal.name, p.data, p.size());
    }
  }
  return wants;
}

// compute_weights_backward.
template <class S, class T, class DS>
void check_compute_weights_backward(const char* verb, const SaliencyMap<S>& saliency,
                                    const Weights<T>& weights, const WeightsGrad<T>& d_weights,
                                    const SaliencyMap<DS>& d_saliency) {
  check_weights(verb, weights);
  check_view(verb, "saliency", saliency);
  check_view(verb, "d_saliency", d_saliency);
  check_grid(verb, "saliency", saliency, weights.batch, weights.in_height(), weights.in_width(),
             "input");
  check_grid(verb, "d_saliency", d_saliency, weights.batch, weights.in_height(), weights.in_width(),
             "input");
  check_weights_grad(verb, "d_weights", d_weights, weights);
  // (An array, not a braced list: nvcc's host pass mistranslates a range-for over one.)
  const T* const grads[2] = {d_weights.y, d_weights.x};
  const std::int64_t counts[2] = {std::int64_t(weights.batch) * d_weights.capacity_y,
                                  std::int64_t(weights.batch) * d_weights.capacity_x};
  for (int i = 0; i < 2; ++i) {
    check_no_overlap(verb, "d_saliency", d_saliency.data, d_saliency.size(), "d_weights", grads[i],
                     counts[i]);
  }
  check_outside_workspace(verb, "d_saliency", d_saliency.data, d_saliency.size(), weights);
}

}  // namespace detail
}  // namespace ssb
