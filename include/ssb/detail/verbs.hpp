// ssbnet: the six verbs, written once for every host backend.
//
// A host backend is a specialisation of detail::launcher<Exec> with
//     static void for_each(const Exec&, std::int64_t count, F f, std::int64_t work)
// that calls f(i) for i in [0, count), in any order and in parallel: every call writes only its
// own elements, so results are the same bits whatever the backend and thread count. `work`
// estimates the elements the whole launch touches, so that a backend can run small launches
// without forking (launch_work below). The verbs check all
// arguments first (ssb::error, nothing written), then launch the bodies of weights.hpp,
// kernels.hpp and backward.hpp.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "../backward.hpp"
#include "../kernels.hpp"
#include "../planar.hpp"
#include "../types.hpp"
#include "../weights.hpp"
#include "checks.hpp"

namespace ssb {
namespace detail {

template <class Exec>
struct launcher {
  static constexpr bool available = false;
};

template <class Exec>
constexpr void require_backend() {
  static_assert(launcher<Exec>::available,
                "no launcher for this execution tag: include its backend header "
                "(<ssb/serial.hpp> for ssb::serial, <ssb/openmp.hpp> for ssb::openmp)");
}

template <class View, class T>
constexpr void require_scalar() {
  static_assert(std::is_same<std::remove_const_t<View>, T>::value,
                "views and weights must have the same scalar type");
  static_assert(std::is_floating_point<T>::value, "ssbnet supports float and double");
}

// The work estimate of a launch over maps: the elements of all of them.
template <class... Maps>
std::int64_t launch_work(const Maps&... maps) {
  std::int64_t total = 0;
  for (std::int64_t e : {std::int64_t(maps.size())...}) total += e;
  return total;
}

// Scratch of the gather bodies (a source row, a channel tile): one buffer per host thread,
// reused across calls.
template <class T>
T* thread_scratch(std::size_t count) {
  thread_local std::vector<T> scratch;
  if (scratch.size() < count) scratch.resize(count);
  return scratch.data();
}

// Calls f(std::integral_constant<Direction, ...>) for a runtime direction.
template <class F>
void with_direction(Direction direction, F&& f) {
  if (direction == Direction::forward) {
    f(std::integral_constant<Direction, Direction::forward>{});
  } else {
    f(std::integral_constant<Direction, Direction::inverse>{});
  }
}

// Every destination element of a gather (kernels.hpp, planar.hpp). All-NCHW maps: one call per
// (image, block of channel_block planes) through channels-last tiles when they fit, else one per
// plane. Otherwise one call per (image, destination row), with a source row of scratch for the
// separable NHWC body.
template <class Exec, class T>
void launch_gather(const Exec& exec, const Weights<T>& w, const FeatureMap<const T>& src,
                   const FeatureMap<T>& dst, Direction direction, T scale) {
  with_direction(direction, [&](auto dir) {
    constexpr Direction D = decltype(dir)::value;
    if (src.layout == Layout::nchw && dst.layout == Layout::nchw) {
      const std::size_t scratch = plane_scratch_size<D>(w);
      const int channels = src.channels;
      if (channel_tile_fits(w)) {
        const int blocks = (channels + channel_block - 1) / channel_block;
        launcher<Exec>::for_each(
            exec, std::int64_t(w.batch) * blocks,
            [&](std::int64_t t) {
              gather_channel_tile<D>(w, src, dst, int(t / blocks), int(t % blocks) * channel_block,
                                     scale, thread_scratch<T>(scratch));
            },
            launch_work(src, dst));
      } else {
        launcher<Exec>::for_each(
            exec, std::int64_t(w.batch) * channels,
            [&](std::int64_t p) {
              gather_plane<D>(w, src, dst, int(p / channels), int(p % channels), scale,
                              thread_scratch<T>(scratch));
            },
            launch_work(src, dst));
      }
      return;
    }
    const int height = D == Direction::forward ? w.out_height() : w.in_height();
    const std::size_t row = std::size_t(src.width) * std::size_t(src.channels);
    launcher<Exec>::for_each(
        exec, std::int64_t(w.batch) * height,
        [&](std::int64_t r) {
          gather_row<D>(w, src, dst, int(r / height), int(r % height), scale,
                        thread_scratch<T>(row));
        },
        launch_work(src, dst));
  });
}

// The pair dots of every image into `dots` ([batch][capacity_y][capacity_x]). All-NCHW maps: per
// (image, channel block) into partial sums added block by block in order when the channel tiles
// fit, else per (image, y segment) over the planes. Otherwise per (image, destination row).
template <class Exec, class T>
void launch_pair_dots(const Exec& exec, const Weights<T>& w, const FeatureMap<const T>& src,
                      const FeatureMap<const T>& other, Direction direction, T* dots) {
  const int cap_y = w.y.capacity(), cap_x = w.x.capacity();
  const std::int64_t per_image = std::int64_t(cap_y) * cap_x;
  with_direction(direction, [&](auto dir) {
    constexpr Direction D = decltype(dir)::value;
    if (src.layout != Layout::nchw || other.layout != Layout::nchw) {
      const int height = D == Direction::forward ? w.out_height() : w.in_height();
      launcher<Exec>::for_each(
          exec, std::int64_t(w.batch) * height,
          [&](std::int64_t r) {
            const int n = int(r / height);
            const PairDots<T> pair{other, dots + n * per_image, cap_x};
            row_pair_dots<D>(w.y.image(n), w.x.image(n), src, pair, n, int(r % height));
          },
          launch_work(src, other));
      return;
    }
    if (channel_tile_fits(w)) {
      const int blocks = (src.channels + channel_block - 1) / channel_block;
      const std::size_t scratch = plane_scratch_size<D>(w);
      std::vector<T> partial(std::size_t(w.batch) * std::size_t(blocks) * std::size_t(per_image));
      launcher<Exec>::for_each(
          exec, std::int64_t(w.batch) * blocks,
          [&](std::int64_t t) {
            channel_tile_pair_dots<D>(w, src, other, int(t / blocks),
                                      int(t % blocks) * channel_block,
                                      partial.data() + t * per_image, thread_scratch<T>(scratch));
          },
          launch_work(src, other));
      launcher<Exec>::for_each(
          exec, w.batch,
          [&](std::int64_t n) {
            T* out = dots + n * per_image;
            const T* first = partial.data() + n * blocks * per_image;
            for (std::int64_t e = 0; e < per_image; ++e) out[e] = first[e];
            for (int b = 1; b < blocks; ++b) {
              const T* block = first + b * per_image;
              for (std::int64_t e = 0; e < per_image; ++e) out[e] += block[e];
            }
          },
          std::int64_t(partial.size()));
      return;
    }
    launcher<Exec>::for_each(
        exec, std::int64_t(w.batch) * cap_y,
        [&](std::int64_t t) {
          const int n = int(t / cap_y), k = int(t % cap_y);
          if (k < w.y.image(n).count()) {
            plane_pair_dots<D>(w, src, other, n, k, dots + (std::int64_t(n) * cap_y + k) * cap_x);
          }
        },
        launch_work(src, other));
  });
}

// d_weights += the weight gradients of backward.hpp from the pair dots, one call per segment.
template <class Exec, class T>
void launch_segment_grads(const Exec& exec, const Weights<T>& w, const T* dots,
                          const WeightsGrad<T>& d_weights, T scale) {
  const int cap_y = w.y.capacity(), cap_x = w.x.capacity();
  const std::int64_t per_image = std::int64_t(cap_y) + cap_x;
  launcher<Exec>::for_each(
      exec, std::int64_t(w.batch) * per_image,
      [&](std::int64_t s) {
        const int n = int(s / per_image), k = int(s % per_image);
        const AxisImage<T> ay = w.y.image(n), ax = w.x.image(n);
        const T* image_dots = dots + std::int64_t(n) * cap_y * cap_x;
        if (k < cap_y) {
          if (k < ay.count()) {
            d_weights.y[std::int64_t(n) * cap_y + k] +=
                segment_grad<true>(ax, image_dots, cap_x, k, scale);
          }
        } else if (k - cap_y < ax.count()) {
          d_weights.x[std::int64_t(n) * cap_x + (k - cap_y)] +=
              segment_grad<false>(ay, image_dots, cap_x, k - cap_y, scale);
        }
      },
      2 * std::int64_t(w.batch) * cap_y * cap_x);
}

// The backward of one sampler: the gather of `upstream` in `direction` into `d_data` (may be
// empty), then the pair dots against `other` and the weight gradients when d_weights is wanted.
template <class Exec, class T>
void launch_backward(const Exec& exec, const Weights<T>& w, const FeatureMap<const T>& upstream,
                     const FeatureMap<T>& d_data, Direction direction, T scale,
                     const FeatureMap<const T>& other, const WeightsGrad<T>* d_weights) {
  // The data gradient and the pair dots run as two launches: fusing them in one row task was
  // measured slower (the written rows push the source rows the dots re-read out of cache).
  if (d_data.data != nullptr) launch_gather(exec, w, upstream, d_data, direction, scale);
  if (d_weights == nullptr) return;
  std::vector<T> dots(std::size_t(w.batch) * std::size_t(w.y.capacity()) *
                      std::size_t(w.x.capacity()));
  launch_pair_dots(exec, w, upstream, other, direction, dots.data());
  launch_segment_grads(exec, w, dots.data(), *d_weights, scale);
}

// A map and the name the messages give it.
template <class T>
struct Named {
  const char* name;
  FeatureMap<T> map;
};

// Both backward verbs: `primal` (x or y) lives on the input grid (sample_backward) or on the
// sampled grid (sample_inverse_backward), `upstream` (d_xr or d_z) on the other one, `d_primal`
// on the primal's grid. Checks everything, then gathers upstream onto the primal's grid with
// scale = the upstream grid's area, and forms the pair dots against primal when d_weights is
// wanted.
template <class Exec, class T>
void sampler_backward(const Exec& exec, const char* verb, const Weights<T>& w, bool primal_on_input,
                      Named<const T> primal, Named<const T> upstream, Named<T> d_primal,
                      const WeightsGrad<T>& d_weights) {
  struct Grid {
    int height, width;
    const char* name;
  };
  const Grid input{w.in_height(), w.in_width(), "input"};
  const Grid sampled{w.out_height(), w.out_width(), "sampled"};
  const Grid& primal_grid = primal_on_input ? input : sampled;
  const Grid& upstream_grid = primal_on_input ? sampled : input;
  const FeatureMap<const T>& p = primal.map;
  const FeatureMap<const T>& u = upstream.map;
  const FeatureMap<T>& d = d_primal.map;
  check_weights(verb, w);
  check_view(verb, upstream.name, u);
  check_grid(verb, upstream.name, u, w.batch, upstream_grid.height, upstream_grid.width,
             upstream_grid.name);
  const bool want_d = !is_empty(d), want_dw = !is_empty(d_weights);
  if (want_d) {
    check_view(verb, d_primal.name, d);
    check_grid(verb, d_primal.name, d, w.batch, primal_grid.height, primal_grid.width,
               primal_grid.name);
    check_same_channels(verb, upstream.name, u, d_primal.name, d);
    check_no_overlap(verb, d_primal.name, d.data, d.size(), upstream.name, u.data, u.size());
    check_outside_workspace(verb, d_primal.name, d.data, d.size(), w);
  }
  if (want_dw) {
    check_view(verb, primal.name, p);
    check_grid(verb, primal.name, p, w.batch, primal_grid.height, primal_grid.width,
               primal_grid.name);
    check_same_channels(verb, upstream.name, u, primal.name, p);
    check_weights_grad(verb, "d_weights", d_weights, w);
    check_grad_no_overlap(verb, d_weights, upstream.name, u);
    check_grad_no_overlap(verb, d_weights, primal.name, p);
    check_grad_no_overlap(verb, d_weights, d_primal.name, d);
    if (want_d)
      check_no_overlap(verb, d_primal.name, d.data, d.size(), primal.name, p.data, p.size());
  }
  if (!want_d && !want_dw) return;
  const T scale = T(double(upstream_grid.height) * upstream_grid.width);
  launch_backward(exec, w, u, d, primal_on_input ? Direction::inverse : Direction::forward, scale,
                  p, want_dw ? &d_weights : nullptr);
}

}  // namespace detail

// Eqs. 1-7: saliency maps (N x H x W, finite, >= 0) -> segment weights for sampling to
// out_h x out_w. `weights` is a weights_view for (N, H, W, out_h, out_w). A map that sums to 0
// gets uniform weights (sy = 1/H, sx = 1/W), i.e. plain fractional-area resampling.
template <class Exec, class S, class T>
void compute_weights(const Exec& exec, SaliencyMap<S> saliency, int out_h, int out_w,
                     const Weights<T>& weights) {
  detail::require_backend<Exec>();
  detail::require_scalar<S, T>();
  const char* verb = "ssb::compute_weights";
  detail::check_view(verb, "saliency", saliency);
  detail::check_positive(verb, "out_h", out_h);
  detail::check_positive(verb, "out_w", out_w);
  detail::check_weights(verb, weights);
  detail::check_grid(verb, "saliency", saliency, weights.batch, weights.in_height(),
                     weights.in_width(), "input");
  if (out_h != weights.out_height() || out_w != weights.out_width()) {
    detail::fail(std::string(verb) + ": out_h x out_w is " + std::to_string(out_h) + "x" +
                 std::to_string(out_w) + " but the weights were made for " +
                 std::to_string(weights.out_height()) + "x" + std::to_string(weights.out_width()));
  }
  detail::check_outside_workspace(verb, "saliency", saliency.data, saliency.size(), weights);
  const SaliencyMap<const T> s = saliency;
  // Pass 1 checks every map and sums it into `masses`; pass 2, only once all maps are valid,
  // writes the workspace: nothing is written when an error is thrown.
  const int H = s.height, W = s.width;
  const std::size_t per_image = std::size_t(H) + std::size_t(W) + 1;
  std::vector<double> masses(std::size_t(s.batch) * per_image);
  std::vector<detail::SaliencyCheck> checks(std::size_t(s.batch));
  detail::launcher<Exec>::for_each(
      exec, s.batch,
      [&](std::int64_t n) {
        checks[std::size_t(n)] =
            detail::check_saliency_image(s, int(n), masses.data() + std::size_t(n) * per_image);
      },
      std::int64_t(s.size()));
  for (int n = 0; n < s.batch; ++n) {
    const auto& c = checks[std::size_t(n)];
    if (c.position >= 0 || c.sum_overflows) detail::fail_saliency(verb, s, n, c);
  }
  detail::launcher<Exec>::for_each(
      exec, s.batch,
      [&](std::int64_t n) {
        const double* m = masses.data() + std::size_t(n) * per_image;
        for (int h = 0; h < H; ++h) weights.y.mass[n * H + h] = m[h];
        for (int w = 0; w < W; ++w) weights.x.mass[n * W + w] = m[H + w];
        weights.total[n] = m[H + W];
        weights.status[n] = -1;
        for (const AxisSegments<T>* a : {&weights.y, &weights.x}) {
          const std::int64_t k0 = n * a->capacity();
          detail::segment_walk(
              a->mass + n * a->in_size, a->mass_total(weights.total, int(n)), a->in_size,
              a->out_size, a->weight + k0, a->out_index + k0, a->in_index + k0, a->flags + k0,
              a->out_begin + n * (a->out_size + 1), a->in_begin + n * (a->in_size + 1));
        }
      },
      std::int64_t(s.batch) * (H + W + out_h + out_w) * 16);  // a few dozen operations a segment
}

// Eq. 8: xr (N x Hr x Wr x C) = Hr*Wr * Gy X Gx^T, per image and channel. Any layouts.
template <class Exec, class T, class X>
void sample(const Exec& exec, const Weights<T>& weights, FeatureMap<X> x, FeatureMap<T> xr) {
  detail::require_backend<Exec>();
  detail::require_scalar<X, T>();
  const char* verb = "ssb::sample";
  detail::check_weights(verb, weights);
  detail::check_view(verb, "x", x);
  detail::check_view(verb, "xr", xr);
  detail::check_grid(verb, "x", x, weights.batch, weights.in_height(), weights.in_width(), "input");
  detail::check_grid(verb, "xr", xr, weights.batch, weights.out_height(), weights.out_width(),
                     "sampled");
  detail::check_same_channels(verb, "x", x, "xr", xr);
  detail::check_no_overlap(verb, "xr", xr.data, xr.size(), "x", x.data, x.size());
  detail::check_outside_workspace(verb, "xr", xr.data, xr.size(), weights);
  const T scale = T(double(weights.out_height()) * weights.out_width());
  detail::launch_gather(exec, weights, FeatureMap<const T>(x), xr, detail::Direction::forward,
                        scale);
}

// Eq. 9 without shortcut and activation: z (N x H x W x C) = H*W * Gy^T Y Gx.
template <class Exec, class T, class Y>
void sample_inverse(const Exec& exec, const Weights<T>& weights, FeatureMap<Y> y, FeatureMap<T> z) {
  detail::require_backend<Exec>();
  detail::require_scalar<Y, T>();
  const char* verb = "ssb::sample_inverse";
  detail::check_weights(verb, weights);
  detail::check_view(verb, "y", y);
  detail::check_view(verb, "z", z);
  detail::check_grid(verb, "y", y, weights.batch, weights.out_height(), weights.out_width(),
                     "sampled");
  detail::check_grid(verb, "z", z, weights.batch, weights.in_height(), weights.in_width(), "input");
  detail::check_same_channels(verb, "y", y, "z", z);
  detail::check_no_overlap(verb, "z", z.data, z.size(), "y", y.data, y.size());
  detail::check_outside_workspace(verb, "z", z.data, z.size(), weights);
  const T scale = T(double(weights.in_height()) * weights.in_width());
  detail::launch_gather(exec, weights, FeatureMap<const T>(y), z, detail::Direction::inverse,
                        scale);
}

// Backward of sample. d_x (overwritten) = Hr*Wr * Gy^T dXr Gx; d_weights (accumulated) += the
// weight gradient of MATH.md "from sampling". Pass an empty view (FeatureMap<T>{} or
// WeightsGrad<T>{}) for what is not needed; x is read only for d_weights.
template <class Exec, class T, class X, class DXr>
void sample_backward(const Exec& exec, const Weights<T>& weights, FeatureMap<X> x,
                     FeatureMap<DXr> d_xr, FeatureMap<T> d_x, WeightsGrad<T> d_weights) {
  detail::require_backend<Exec>();
  detail::require_scalar<X, T>();
  detail::require_scalar<DXr, T>();
  detail::sampler_backward(exec, "ssb::sample_backward", weights, true, {"x", x}, {"d_xr", d_xr},
                           {"d_x", d_x}, d_weights);
}

// Backward of sample_inverse. d_y (overwritten) = H*W * Gy dZ Gx^T; d_weights (accumulated) +=
// the weight gradient of MATH.md "from inverse". Empty views skip an output; y is read only for
// d_weights.
template <class Exec, class T, class Y, class DZ>
void sample_inverse_backward(const Exec& exec, const Weights<T>& weights, FeatureMap<Y> y,
                             FeatureMap<DZ> d_z, FeatureMap<T> d_y, WeightsGrad<T> d_weights) {
  detail::require_backend<Exec>();
  detail::require_scalar<Y, T>();
  detail::require_scalar<DZ, T>();
  detail::sampler_backward(exec, "ssb::sample_inverse_backward", weights, false, {"y", y},
                           {"d_z", d_z}, {"d_y", d_y}, d_weights);
}

// Eqs. 1-7 backward: d_weights (the sum of both samplers' contributions) -> d_saliency
// (overwritten, N x H x W). Zero for maps that summed to 0. `saliency` is the map the weights
// were computed from (checked for shape). Uses the workspace's gradient scratch: do not run two
// of these on one workspace at once.
template <class Exec, class S, class T, class DS>
void compute_weights_backward(const Exec& exec, SaliencyMap<S> saliency, const Weights<T>& weights,
                              WeightsGrad<T> d_weights, SaliencyMap<DS> d_saliency) {
  detail::require_backend<Exec>();
  detail::require_scalar<S, T>();
  detail::require_scalar<DS, T>();
  static_assert(!std::is_const<DS>::value, "d_saliency is an output");
  const char* verb = "ssb::compute_weights_backward";
  detail::check_weights(verb, weights);
  detail::check_view(verb, "saliency", saliency);
  detail::check_view(verb, "d_saliency", d_saliency);
  detail::check_grid(verb, "saliency", saliency, weights.batch, weights.in_height(),
                     weights.in_width(), "input");
  detail::check_grid(verb, "d_saliency", d_saliency, weights.batch, weights.in_height(),
                     weights.in_width(), "input");
  detail::check_weights_grad(verb, "d_weights", d_weights, weights);
  // (An array, not a braced list: nvcc's host pass mistranslates a range-for over one.)
  const T* const grads[2] = {d_weights.y, d_weights.x};
  const std::int64_t counts[2] = {std::int64_t(weights.batch) * d_weights.capacity_y,
                                  std::int64_t(weights.batch) * d_weights.capacity_x};
  for (int i = 0; i < 2; ++i) {
    detail::check_no_overlap(verb, "d_saliency", d_saliency.data, d_saliency.size(), "d_weights",
                             grads[i], counts[i]);
  }
  detail::check_outside_workspace(verb, "d_saliency", d_saliency.data, d_saliency.size(), weights);
  detail::launcher<Exec>::for_each(
      exec, weights.batch,
      [&](std::int64_t n) {
        detail::saliency_grad_image(weights, d_weights, d_saliency.data, int(n));
      },
      std::int64_t(saliency.size()));
}

}  // namespace ssb
