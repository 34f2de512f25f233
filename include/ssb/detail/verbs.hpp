// ssbnet: the six verbs, written once for every host backend.
//
// A host backend is a specialisation of detail::launcher<Exec> with
//     static void for_each(const Exec&, std::int64_t count, F f, std::int64_t work)
// that calls f(i) for i in [0, count), in any order and in parallel: every call writes only its
// own elements, so results are the same bits whatever the backend and thread count. `work`
// estimates the elements the whole launch touches, so that a backend can run small launches
// without forking (launch_work below). The verbs check all
// arguments first (ssb::error, nothing written), then launch the bodies of weights.hpp,
// kernels.hpp, pair_dot_rows.hpp and backward.hpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "../backward.hpp"
#include "../kernels.hpp"
#include "../pair_dot_rows.hpp"
#include "../planar.hpp"
#include "../planar_dots.hpp"
#include "../planar_packed.hpp"
#include "../types.hpp"
#include "../weights.hpp"
#include "checks.hpp"

// 0 makes the backward verbs on NHWC maps run their data gradient and their pair dots as two
// launches, as the other layouts do (launch_backward); for comparisons. Same bits.
#ifndef SSB_FUSED_BACKWARD
#define SSB_FUSED_BACKWARD 1
#endif
// Whether the pair dots of NCHW maps take tile_pair_dots (planar_dots.hpp) where its tiles fit; 0
// for comparisons.
#ifndef SSB_TILE_DOTS
#define SSB_TILE_DOTS 1
#endif
// The NCHW channel tiles (planar.hpp, gather_channel_tile) ask the caches for the next block's
// planes from launches over maps of this many bytes (source and destination) on. On the 2-core
// AVX-512 EPYC (32 MiB L3), openmp2, bench shapes, its first form (the same prefetches, inline)
// took the gathers on 8x8 to 14x14 planes (22-33 MiB of maps) to 0.55-0.72x their time in two
// runs, and on 5x5 to 10x10 (8-17 MiB, which stay in the L3 from call to call) to 0.86-1.21x,
// where the same code without it moved 1.01-1.15x in the next run: no gain to measure there
// (bench/results/ab-c531268-nchw-prefetch.md, with the runs of the committed form). 0: always.
#ifndef SSB_NCHW_PREFETCH_MIN_BYTES
#define SSB_NCHW_PREFETCH_MIN_BYTES (20ll << 20)
#endif
// The packed bodies of float NCHW maps on AVX-512 targets (planar_packed.hpp, planar_dots.hpp): 1
// takes them where they apply, 0 leaves those maps to the channel tiles and lane bodies (for
// comparisons). Measured on the Cascade Lake VM only
// (bench/results/ab-cf9f147-packed.md, ab-f80369f-packed-dots.md).
#ifndef SSB_NCHW_PACKED
#define SSB_NCHW_PACKED 1
#endif
#ifndef SSB_NCHW_PACKED_DOTS
#define SSB_NCHW_PACKED_DOTS 1
#endif

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

// The work estimates of the weights' launches, in the unit of the gathers' (elements): on the
// 2-core AVX-512 bench machine, one thread, a gathered element took about 0.07 ns, while
// compute_weights and compute_weights_backward took about 5 ns per row and column of a map
// (divisions, sums in order; 5x5 to 32x32 maps) besides its values. Counting a row or column
// as 64 elements and a breakpoint of the segment walk as 32 makes these launches fork from 8x8
// or 10x10 maps of 32 images on: there it took them to 0.6-0.86x their time on one thread
// (same-run A/B, openmp2, 10x10 to 28x28; compute_weights on 8x8 maps, whose first launch alone
// forks, 1.05-1.07x), while forking for the two images of the COCO shapes was up to 1.35x slower,
// and they stay serial.
constexpr std::int64_t row_work = 64;
constexpr std::int64_t breakpoint_work = 32;

// The work estimate of a launch with one task per saliency map: its values, and row_work for
// each of its rows and columns.
template <class S>
std::int64_t saliency_work(const SaliencyMap<S>& s) {
  return s.size() + std::int64_t(s.batch) * (s.height + s.width) * row_work;
}

// The work estimate of a launch over maps: the elements of all of them.
template <class... Maps>
std::int64_t launch_work(const Maps&... maps) {
  std::int64_t total = 0;
  for (std::int64_t e : {std::int64_t(maps.size())...}) total += e;
  return total;
}

// Scratch of the gather bodies (a source row, a channel tile): one buffer per host thread and
// Tag, reused across calls. Tag 1: buffers that the calling thread fills for a whole launch and
// every task reads (the packed body's plans), apart from the tasks' own (tag 0).
template <class T, int Tag = 0>
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
// (image, block of planes), for float maps on AVX-512 targets by the packed body where rows have
// at most 16 floats (inverse gathers: planes under SSB_NCHW_LANES_MIN_PIXELS_INVERSE pixels; each
// image's plan built first), else by the lane body where the input grid has at least
// SSB_NCHW_LANES_MIN_PIXELS(_INVERSE) pixels (planar.hpp), else through channels-last tiles when
// they fit; else one call per plane. Otherwise one call per
// (image, destination row), with a source row of scratch for the separable NHWC body.
template <class Exec, class T>
void launch_gather(const Exec& exec, const Weights<T>& w, const FeatureMap<const T>& src,
                   const FeatureMap<T>& dst, Direction direction, T scale) {
  with_direction(direction, [&](auto dir) {
    constexpr Direction D = decltype(dir)::value;
    if (src.layout == Layout::nchw && dst.layout == Layout::nchw) {
      const int channels = src.channels;
#if defined(SSB_PLANAR_AVX512)
      if constexpr (std::is_same<T, float>::value) {
        const std::int64_t lanes_from = D == Direction::forward
                                            ? std::int64_t(SSB_NCHW_LANES_MIN_PIXELS)
                                            : std::int64_t(SSB_NCHW_LANES_MIN_PIXELS_INVERSE);
        const std::int64_t in_pixels = std::int64_t(w.in_height()) * w.in_width();
        if (SSB_NCHW_PACKED && packed_fits(src.width, dst.width) &&
            (D == Direction::forward || in_pixels < lanes_from)) {
          const int block = packed_block_planes(std::int64_t(src.height) * src.width,
                                                std::int64_t(dst.height) * dst.width);
          const bool prefetch = std::int64_t(sizeof(T)) * launch_work(src, dst) >=
                                std::int64_t(SSB_NCHW_PACKED_PREFETCH_MIN_BYTES);
          const int blocks = (channels + block - 1) / block;
          // The plan of each image first (packed_plan's bounds), then the planes.
          const std::size_t rows = std::size_t(dst.height), batch = std::size_t(w.batch);
          const std::size_t terms = std::size_t(w.y.capacity());
          const std::size_t slots = terms + rows * std::size_t(src.width);
          PackedPlan* const plans = thread_scratch<PackedPlan, 1>(batch);
          PackedTerm* const term = thread_scratch<PackedTerm, 1>(batch * terms);
          PackedRegister* const reg = thread_scratch<PackedRegister, 1>(batch * rows);
          PackedVector* const vec = thread_scratch<PackedVector, 1>(batch * rows);
          LaneSlot* const slot = thread_scratch<LaneSlot, 1>(batch * slots);
          launcher<Exec>::for_each(
              exec, w.batch,
              [&](std::int64_t n) {
                plans[n] = packed_plan<D>(w.y.image(int(n)), w.x.image(int(n)), src.width,
                                          dst.height, dst.width, term + n * terms, reg + n * rows,
                                          vec + n * rows, slot + n * slots);
              },
              launch_work(src, dst));
          launcher<Exec>::for_each(
              exec, std::int64_t(w.batch) * blocks,
              [&](std::int64_t t) {
                const std::int64_t n = t / blocks;
                const int c0 = int(t % blocks) * block;
                gather_planes_packed(
                    plans[n], term + n * terms, reg + n * rows, vec + n * rows, slot + n * slots,
                    src, dst, int(n), c0, std::min(block, channels - c0), scale,
                    thread_scratch<float>(16 * std::size_t(block) * rows + 16), prefetch);
              },
              launch_work(src, dst));
          return;
        }
        if (in_pixels >= lanes_from) {
          const int blocks = (channels + channel_block - 1) / channel_block;
          const int dst_w = dst.width, src_w = src.width;
          std::size_t slots = 1;
          for (int n = 0; n < w.batch; ++n) {
            slots = std::max(slots, std::size_t(lane_slots_bound(w.x.image(n))));
          }
          launcher<Exec>::for_each(
              exec, std::int64_t(w.batch) * blocks,
              [&](std::int64_t t) {
                const int n = int(t / blocks), c0 = int(t % blocks) * channel_block;
                gather_planes_lanes<D>(w, src, dst, n, c0, std::min(channel_block, channels - c0),
                                       scale, thread_scratch<float>(std::size_t(src_w) + 48),
                                       thread_scratch<LaneBlock>(std::size_t(lane_blocks(dst_w))),
                                       thread_scratch<LaneSlot>(slots));
              },
              launch_work(src, dst));
          return;
        }
      }
#endif
      const std::size_t scratch = plane_scratch_size<D>(w);
      if (channel_tile_fits(w)) {
        const int blocks = (channels + channel_block - 1) / channel_block;
        const bool prefetch = std::int64_t(sizeof(T)) * launch_work(src, dst) >=
                              std::int64_t(SSB_NCHW_PREFETCH_MIN_BYTES);
        launcher<Exec>::for_each(
            exec, std::int64_t(w.batch) * blocks,
            [&](std::int64_t t) {
              gather_channel_tile<D>(w, src, dst, int(t / blocks), int(t % blocks) * channel_block,
                                     scale, thread_scratch<T>(scratch), prefetch);
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
#if defined(SSB_PLANAR_AVX512)
    // Float planes of 24 to 128 pixels on both grids together (packed_dots_fit): the packed body,
    // one task per image, the NHWC pair dots' bits.
    if constexpr (std::is_same<T, float>::value) {
      if (SSB_NCHW_PACKED_DOTS && packed_dots_fit(w, std::int64_t(src.height) * src.width,
                                                  std::int64_t(other.height) * other.width)) {
        const std::size_t scratch = packed_dots_scratch(w);
        const std::size_t blocks = std::size_t(packed_dot_blocks(w));
        launcher<Exec>::for_each(
            exec, w.batch,
            [&](std::int64_t n) {
              packed_pair_dots<D>(w, src, other, int(n), dots + n * per_image,
                                  thread_scratch<float>(scratch),
                                  thread_scratch<PackedDotBlock>(blocks));
            },
            launch_work(src, other));
        return;
      }
    }
#endif
#if defined(SSB_VECTOR_EXTENSIONS)
    // Planes whose groups of dot_lanes channels fit tile_pair_dots' tiles: one task per image,
    // the NHWC pair dots' bits.
    if (SSB_TILE_DOTS) {
      const int channels = tile_dots_channels(w, src.channels);
      if (channels > 0) {
        const std::size_t scratch = tile_dots_scratch(w, channels);
        launcher<Exec>::for_each(
            exec, w.batch,
            [&](std::int64_t n) {
              tile_pair_dots<D>(w, src, other, int(n), channels, dots + n * per_image,
                                thread_scratch<T>(scratch));
            },
            launch_work(src, other));
        return;
      }
    }
#endif
    bool tiles = channel_tile_fits(w);
#if defined(SSB_PLANAR_AVX512)
    // Larger float planes on AVX-512 targets: the lane body of plane_pair_dots (with it
    // the NCHW backward verbs, data gradient included, took 0.3-0.9x their former time on the
    // bench shapes, 5x5 to 128x128; the channel tiles were slower on every one).
    if (std::is_same<T, float>::value) tiles = false;
#endif
    if (tiles) {
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
#if defined(SSB_PLANAR_AVX512)
    // Larger float planes on AVX-512 targets: the lane body (planar_dots.hpp), one task per
    // chunk of segments of an image; rows wider than 32 columns by windows, in larger chunks;
    // channels in groups of dots_group where the input grid's planes take 4 KiB or more.
    if constexpr (std::is_same<T, float>::value) {
      const auto blocks = [&] { return thread_scratch<DotBlock>(std::size_t(lane_blocks(cap_x))); };
      const bool wide = src.width > 32 || other.width > 32;
      const bool grouped = std::int64_t(w.in_height()) * w.in_width() >= dots_group_min_floats;
      const int chunk = wide ? dots_wide_chunk : dots_chunk;
      const int chunks = (cap_y + chunk - 1) / chunk;
      const std::size_t acc_floats = std::size_t(chunk) * 16 * lane_blocks(cap_x);
      launcher<Exec>::for_each(
          exec, std::int64_t(w.batch) * chunks,
          [&](std::int64_t t) {
            // The image's segments in `chunks` parts of equal size (within one), at most
            // `chunk` each.
            const int n = int(t / chunks), part = int(t % chunks);
            const int count = w.y.image(n).count();
            const int k0 = int(std::int64_t(count) * part / chunks);
            const int k1 = int(std::int64_t(count) * (part + 1) / chunks);
            if (k0 >= k1) return;
            // 64-byte aligned: 16 floats more than needed, and the first aligned one.
            float* acc = aligned_64(thread_scratch<float>(acc_floats + 16));
            float* image_dots = dots + n * per_image;
            if (wide && grouped) {
              chunk_pair_dots_lanes<D, true, dots_group>(w, src, other, n, k0, k1, image_dots,
                                                         cap_x, blocks(), acc);
            } else if (wide) {
              chunk_pair_dots_lanes<D, true, 1>(w, src, other, n, k0, k1, image_dots, cap_x,
                                                blocks(), acc);
            } else if (grouped) {
              chunk_pair_dots_lanes<D, false, dots_group>(w, src, other, n, k0, k1, image_dots,
                                                          cap_x, blocks(), acc);
            } else {
              chunk_pair_dots_lanes<D, false, 1>(w, src, other, n, k0, k1, image_dots, cap_x,
                                                 blocks(), acc);
            }
          },
          launch_work(src, other));
      return;
    }
#endif
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
        add_slot_grad(w, dots, d_weights, int(s / per_image), int(s % per_image), scale);
      },
      2 * std::int64_t(w.batch) * cap_y * cap_x);
}

// The backward of one sampler: the gather of `upstream` in `direction` into `d_data` (may be
// empty), then the pair dots against `other` and the weight gradients when d_weights is wanted.
template <class Exec, class T>
void launch_backward(const Exec& exec, const Weights<T>& w, const FeatureMap<const T>& upstream,
                     const FeatureMap<T>& d_data, Direction direction, T scale,
                     const FeatureMap<const T>& other, const WeightsGrad<T>* d_weights) {
  std::vector<T> dots;
  if (d_weights != nullptr) {
    dots.resize(std::size_t(w.batch) * std::size_t(w.y.capacity()) * std::size_t(w.x.capacity()));
  }
#if defined(SSB_VECTOR_EXTENSIONS)
  // NHWC maps: one launch, pixel by pixel (backward_row_nhwc), both outputs at once. For
  // sample_inverse_backward, d_z, which the gather and the pair dots both read, comes from memory
  // once: 0.79-0.95x the time of the two launches on 14 of the 15 bench shapes (1.06x on one).
  // For sample_backward the two launches read different large maps (the gather writes d_x, the
  // dots read x), and calling the two per-pixel bodies one after the other took 0.82-1.41x; what
  // gains there is gather_dots_pixel_fixed, which loads each vector of d_xr once for both:
  // 0.84-0.98x on all 15 (the same-run sample 0.88-1.04x), in cache 0.82-0.98x on 2048-channel
  // maps. (2-core AVX-512 EPYC, openmp2, builds alternated 3-4 times, medians.)
  if (SSB_FUSED_BACKWARD && d_data.data != nullptr && d_weights != nullptr &&
      upstream.layout == Layout::nhwc && d_data.layout == Layout::nhwc &&
      other.layout == Layout::nhwc) {
    bool fused = false;
    with_direction(direction, [&](auto dir) {
      constexpr Direction D = decltype(dir)::value;
      if (separable_rows<D>(upstream)) return;
      fused = true;
      const int height = D == Direction::forward ? w.out_height() : w.in_height();
      const std::int64_t per_image = std::int64_t(w.y.capacity()) * w.x.capacity();
      launcher<Exec>::for_each(
          exec, std::int64_t(w.batch) * height,
          [&](std::int64_t r) {
            const int n = int(r / height);
            const PairDots<T> pair{other, dots.data() + n * per_image, w.x.capacity()};
            backward_row_nhwc<D>(w.y.image(n), w.x.image(n), upstream, d_data, pair, n,
                                 int(r % height), scale);
          },
          launch_work(upstream, d_data, other));
    });
    if (fused) {
      launch_segment_grads(exec, w, dots.data(), *d_weights, scale);
      return;
    }
  }
#endif
  // Otherwise the data gradient and the pair dots run as two launches.
  if (d_data.data != nullptr) launch_gather(exec, w, upstream, d_data, direction, scale);
  if (d_weights == nullptr) return;
  launch_pair_dots(exec, w, upstream, other, direction, dots.data());
  launch_segment_grads(exec, w, dots.data(), *d_weights, scale);
}

// Both backward verbs: `primal` (x or y) lives on the input grid (sample_backward) or on the
// sampled grid (sample_inverse_backward), `upstream` (d_xr or d_z) on the other one, `d_primal`
// on the primal's grid. Checks everything (check_sampler_backward), then gathers upstream onto
// the primal's grid with scale = the upstream grid's area, and forms the pair dots against primal
// when d_weights is wanted.
template <class Exec, class T>
void sampler_backward(const Exec& exec, const char* verb, const Weights<T>& w, bool primal_on_input,
                      Named<const T> primal, Named<const T> upstream, Named<T> d_primal,
                      const WeightsGrad<T>& d_weights) {
  const BackwardWants wants =
      check_sampler_backward(verb, w, primal_on_input, primal, upstream, d_primal, d_weights);
  if (!wants.d_data && !wants.d_weights) return;
  const int upstream_h = primal_on_input ? w.out_height() : w.in_height();
  const int upstream_w = primal_on_input ? w.out_width() : w.in_width();
  const T scale = T(double(upstream_h) * upstream_w);
  launch_backward(exec, w, upstream.map, d_primal.map,
                  primal_on_input ? Direction::inverse : Direction::forward, scale, primal.map,
                  wants.d_weights ? &d_weights : nullptr);
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
  detail::check_compute_weights(verb, saliency, out_h, out_w, weights);
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
      detail::saliency_work(s));
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
      std::int64_t(s.batch) * (H + W + out_h + out_w) * detail::breakpoint_work);
}

// Eq. 8: xr (N x Hr x Wr x C) = Hr*Wr * Gy X Gx^T, per image and channel. Any layouts.
template <class Exec, class T, class X>
void sample(const Exec& exec, const Weights<T>& weights, FeatureMap<X> x, FeatureMap<T> xr) {
  detail::require_backend<Exec>();
  detail::require_scalar<X, T>();
  detail::check_gather("ssb::sample", weights, true, detail::Named<X>{"x", x},
                       detail::Named<T>{"xr", xr});
  const T scale = T(double(weights.out_height()) * weights.out_width());
  detail::launch_gather(exec, weights, FeatureMap<const T>(x), xr, detail::Direction::forward,
                        scale);
}

// Eq. 9 without shortcut and activation: z (N x H x W x C) = H*W * Gy^T Y Gx.
template <class Exec, class T, class Y>
void sample_inverse(const Exec& exec, const Weights<T>& weights, FeatureMap<Y> y, FeatureMap<T> z) {
  detail::require_backend<Exec>();
  detail::require_scalar<Y, T>();
  detail::check_gather("ssb::sample_inverse", weights, false, detail::Named<Y>{"y", y},
                       detail::Named<T>{"z", z});
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
  detail::check_compute_weights_backward("ssb::compute_weights_backward", saliency, weights,
                                         d_weights, d_saliency);
  detail::launcher<Exec>::for_each(
      exec, weights.batch,
      [&](std::int64_t n) {
        detail::saliency_grad_image(weights, d_weights, d_saliency.data, int(n));
      },
      detail::saliency_work(saliency));
}

}  // namespace ssb
