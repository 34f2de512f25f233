// ssbnet: the Kokkos backend's portable kernels, for execution spaces whose memory the host cannot
// read (Cuda, HIP; SYCL and OpenMPTarget would take them too, but the shared bodies are marked for
// CUDA and HIP only: untested there). Part of <ssb/kokkos.hpp>; include that, not this header.
// Run on Kokkos 3.4.01 + CUDA 11.8 (tests/device/kokkos_cuda.sh); HIP is not compiled here.
//
// Each verb is a few Kokkos::parallel_for launches of functors over a RangePolicy of the given
// space instance, each labelled with its verb ("ssb::sample", ...). The functors call the shared
// SSB_HOST_DEVICE bodies of include/ssb (ssb/types.hpp makes them __host__ __device__ under nvcc
// and hipcc): no host scratch, no atomics, every output written by one index in a fixed order, so
// results are bitwise reproducible run to run and at any concurrency.
//   compute_weights    compute_masses and the value checks of check_saliency_image, one index
//                      per row, per column, then per image, into temporary views; then, on the
//                      host, the first bad image's ssb::error (nothing written); else one index per
//                      (image, axis): detail::segment_walk into the workspace.
//   gathers            one index per destination element (channels fastest for NHWC outputs):
//                      detail::gather_element, the per-element form of the host bodies.
//   weight gradients   one index per segment pair (k, l): detail::pair_dot of the two pixels
//                      (into a temporary view of the pair dots), then one per segment:
//                      detail::add_slot_grad.
//   d_saliency         one index per (image, axis): detail::marginal_grad; then one per pixel:
//                      dr[h] + dc[w], as detail::saliency_grad_image.
// Against the host bodies: the same terms in the same order except the pair dots of all-NCHW maps
// (the host's plane bodies sum the channels in another order). Floating-point contraction is the
// device compiler's, so the bits may differ from ssb::serial's in the last place.
//
// This path is written for portability and simplicity, not tuned: one thread per output element,
// the segment walks and marginal gradients one thread per (image, axis). Host spaces take the tuned
// host bodies (ssb/detail/verbs.hpp) unless SSB_KOKKOS_PORTABLE_KERNELS is defined to 1 before the
// include, which makes every space take this path (the tests build the shared test bodies that
// way).
//
// Every verb fences its space instance before it returns, like the host launches, and
// compute_weights reads its checks back to the host there, so a bad saliency value throws the
// host backends' ssb::error on every space.
#pragma once

#include <Kokkos_Core.hpp>
#include <cstddef>
#include <cstdint>
#include <ssb/ssb.hpp>
#include <string>
#include <type_traits>
#include <utility>

namespace ssb {
namespace kokkos_detail {

template <class Space>
using Range = Kokkos::RangePolicy<Space, Kokkos::IndexType<std::int64_t>>;

template <class Space, class F>
void launch(const Space& space, const char* label, std::int64_t count, const F& f) {
  if (count > 0) Kokkos::parallel_for(std::string(label), Range<Space>(space, 0, count), f);
}

// A temporary rank-1 view in the space's memory, not initialised.
template <class T, class Space>
Kokkos::View<T*, typename Space::memory_space> scratch_view(const char* label, std::int64_t count) {
  return Kokkos::View<T*, typename Space::memory_space>(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(label)),
      std::size_t(count > 0 ? count : 0));
}

// ---- compute_weights -------------------------------------------------------------------------

// compute_masses and check_saliency_image in three launches, with their operations and order.
// masses[n] holds image n's row sums, column sums and total (H + W + 1 doubles).

// Row h of image n (index n * H + h): its mass (detail::row_mass), and the smallest of its values
// and 0 into least (NaN is skipped there, as in compute_masses).
template <class S>
struct RowMassFunctor {
  SaliencyMap<const S> s;
  double* masses;
  double* least;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t t) const {
    const int H = s.height, W = s.width;
    const std::int64_t n = t / H, h = t % H;
    double lanes[detail::mass_lanes];
    for (int u = 0; u < detail::mass_lanes; ++u) lanes[u] = 0.0;
    masses[n * (std::int64_t(H) + W + 1) + h] =
        detail::row_mass<false>(s.data + t * W, W, nullptr, lanes);
    least[t] = detail::smallest_of(lanes);
  }
};

// Column w of image n (index n * W + w): its mass, the rows added in order.
template <class S>
struct ColumnMassFunctor {
  SaliencyMap<const S> s;
  double* masses;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t t) const {
    const int H = s.height, W = s.width;
    const std::int64_t n = t / W, w = t % W;
    const S* map = s.data + n * H * W;
    double column = 0.0;
    for (int h = 0; h < H; ++h) column += double(map[std::int64_t(h) * W + w]);
    masses[n * (std::int64_t(H) + W + 1) + H + w] = column;
  }
};

// Image n: the total and the uniform fallback (detail::finish_masses), then the checks of
// check_saliency_image (detail::saliency_findings): bad[n] = the offset of the first negative /
// NaN / infinite value (-2 when only a sum overflows, -1 for a good map; a view of
// detail::SaliencyCheck would add a destruction kernel that Kokkos tools see unlabelled) and
// bad_value[n] the value there.
template <class S>
struct ImageMassFunctor {
  SaliencyMap<const S> s;
  double* masses;
  const double* least;
  std::int64_t* bad;
  double* bad_value;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t n) const {
    const int H = s.height, W = s.width;
    double* m = masses + n * (std::int64_t(H) + W + 1);
    double smallest = 0.0;
    for (int h = 0; h < H; ++h) {
      const double l = least[n * H + h];
      smallest = l < smallest ? l : smallest;
    }
    const double total = m[H + W] = detail::finish_masses(m, m + H, H, W);
    const std::int64_t size = std::int64_t(H) * W;
    const S* map = s.data + n * size;
    const detail::SaliencyCheck check =
        detail::saliency_findings(map, size, m + H, W, smallest, total);
    bad[n] = check.position >= 0 ? check.position : check.sum_overflows ? -2 : -1;
    bad_value[n] = check.position >= 0 ? double(map[check.position]) : 0.0;
  }
};

// Index 2n + axis (0: y, 1: x): the masses of image n into the workspace, and the segment walk
// of that axis (the host's body). Axis y also stores the total and the status.
template <class T>
struct WalkFunctor {
  Weights<T> w;
  const double* masses;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t t) const {
    const int n = int(t / 2);
    const bool y = t % 2 == 0;
    const int H = w.y.in_size, W = w.x.in_size;
    const double* m = masses + std::int64_t(n) * (std::int64_t(H) + W + 1);
    const double total = m[H + W];
    const AxisSegments<T>& a = y ? w.y : w.x;
    const double* mass = y ? m : m + H;
    const int in = a.in_size, out = a.out_size;
    double* stored = a.mass + std::int64_t(n) * in;
    for (int j = 0; j < in; ++j) stored[j] = mass[j];
    if (y) {
      w.total[n] = total;
      w.status[n] = -1;
    }
    const std::int64_t k0 = std::int64_t(n) * a.capacity();
    detail::segment_walk(mass, total > 0.0 ? total : double(in), in, out, a.weight + k0,
                         a.out_index + k0, a.in_index + k0, a.flags + k0,
                         a.out_begin + std::int64_t(n) * (out + 1),
                         a.in_begin + std::int64_t(n) * (in + 1));
  }
};

template <class Space, class S, class T>
void compute_weights(const Space& space, SaliencyMap<S> saliency, int out_h, int out_w,
                     const Weights<T>& weights) {
  detail::require_scalar<S, T>();
  const char* verb = "ssb::compute_weights";
  detail::check_compute_weights(verb, saliency, out_h, out_w, weights);
  const SaliencyMap<const S> s = saliency;
  const std::int64_t N = s.batch;
  auto masses = scratch_view<double, Space>("ssb::compute_weights masses",
                                            N * (std::int64_t(s.height) + s.width + 1));
  auto least = scratch_view<double, Space>("ssb::compute_weights least", N * s.height);
  auto bad = scratch_view<std::int64_t, Space>("ssb::compute_weights checks", N);
  auto bad_value = scratch_view<double, Space>("ssb::compute_weights bad values", N);
  launch(space, verb, N * s.height, RowMassFunctor<S>{s, masses.data(), least.data()});
  launch(space, verb, N * s.width, ColumnMassFunctor<S>{s, masses.data()});
  launch(space, verb, N,
         ImageMassFunctor<S>{s, masses.data(), least.data(), bad.data(), bad_value.data()});
  space.fence();
  const auto bad_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), bad);
  for (std::int64_t n = 0; n < N; ++n) {
    if (bad_host(n) == -1) continue;
    detail::SaliencyCheck check;
    check.position = bad_host(n) >= 0 ? bad_host(n) : -1;
    check.sum_overflows = bad_host(n) == -2;
    const auto value = Kokkos::create_mirror_view_and_copy(
        Kokkos::HostSpace(), Kokkos::subview(bad_value, std::make_pair(n, n + 1)));
    detail::fail_saliency_value(verb, s.width, int(n), check, value(0));
  }
  launch(space, verb, 2 * N, WalkFunctor<T>{weights, masses.data()});
  space.fence();
}

// ---- gathers ---------------------------------------------------------------------------------

// Destination element e of a gather in direction D: dst = scale * the sums of gather_element.
template <detail::Direction D, class T>
struct GatherFunctor {
  Weights<T> w;
  FeatureMap<const T> src;
  FeatureMap<T> dst;
  T scale;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t e) const {
    const int C = dst.channels, oh = dst.height, ow = dst.width;
    int n, a, b, c;
    if (dst.layout == Layout::nhwc) {
      c = int(e % C);
      const std::int64_t p = e / C;
      b = int(p % ow);
      a = int(p / ow % oh);
      n = int(p / ow / oh);
    } else {
      b = int(e % ow);
      const std::int64_t r = e / ow;
      a = int(r % oh);
      c = int(r / oh % C);
      n = int(r / oh / C);
    }
    const AxisImage<T> ay = w.y.image(n), ax = w.x.image(n);
    const int ky0 = detail::range_begin<D>(ay, a), ky1 = detail::range_begin<D>(ay, a + 1);
    const int kx0 = detail::range_begin<D>(ax, b), kx1 = detail::range_begin<D>(ax, b + 1);
    const T* channel = src.data + c * src.channel_stride();
    const FeatureMap<const T>& from = src;
    const auto load = [&](int sy, int sx) { return channel[from.pixel_offset(n, sy, sx)]; };
    dst.data[dst.pixel_offset(n, a, b) + c * dst.channel_stride()] =
        scale * detail::gather_element<D, T>(ay, ax, ky0, ky1, kx0, kx1, load);
  }
};

template <class Space, class T>
void launch_gather(const Space& space, const char* verb, const Weights<T>& w,
                   const FeatureMap<const T>& src, const FeatureMap<T>& dst,
                   detail::Direction direction, T scale) {
  if (direction == detail::Direction::forward) {
    launch(space, verb, dst.size(),
           GatherFunctor<detail::Direction::forward, T>{w, src, dst, scale});
  } else {
    launch(space, verb, dst.size(),
           GatherFunctor<detail::Direction::inverse, T>{w, src, dst, scale});
  }
}

// ---- weight gradients ------------------------------------------------------------------------

// Pair (k, l) of image n (index (n * capacity_y + k) * capacity_x + l), when both are segments:
// dots = D(k, l) = the channel dot of `src` at the segments' source pixel and `other` at their
// destination pixel, as row_pair_dots forms it (detail::pair_dot, contiguous when both maps are
// NHWC).
template <detail::Direction D, class T>
struct PairDotsFunctor {
  Weights<T> w;
  FeatureMap<const T> src;
  FeatureMap<const T> other;
  T* dots;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t t) const {
    const int cap_y = w.y.capacity(), cap_x = w.x.capacity();
    const int l = int(t % cap_x);
    const int k = int(t / cap_x % cap_y);
    const int n = int(t / cap_x / cap_y);
    const AxisImage<T> ay = w.y.image(n), ax = w.x.image(n);
    if (k >= ay.count() || l >= ax.count()) return;
    const T* in = src.data + src.pixel_offset(n, detail::source_index<D>(ay, k),
                                              detail::source_index<D>(ax, l));
    const T* at = other.data +
                  other.pixel_offset(n, detail::dest_index<D>(ay, k), detail::dest_index<D>(ax, l));
    const bool contiguous = src.layout == Layout::nhwc && other.layout == Layout::nhwc;
    dots[t] = contiguous ? detail::pair_dot(in, 1, at, 1, src.channels)
                         : detail::pair_dot(in, src.channel_stride(), at, other.channel_stride(),
                                            src.channels);
  }
};

// Slot s of image n (index n * (capacity_y + capacity_x) + s): detail::add_slot_grad.
template <class T>
struct SlotGradFunctor {
  Weights<T> w;
  const T* dots;
  WeightsGrad<T> d_weights;
  T scale;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t t) const {
    const std::int64_t per_image = std::int64_t(w.y.capacity()) + w.x.capacity();
    detail::add_slot_grad(w, dots, d_weights, int(t / per_image), int(t % per_image), scale);
  }
};

// Both backward verbs, as detail::sampler_backward: the gather of `upstream` into d_primal, then
// the pair dots against `primal` and the weight gradients.
template <class Space, class T>
void sampler_backward(const Space& space, const char* verb, const Weights<T>& w,
                      bool primal_on_input, detail::Named<const T> primal,
                      detail::Named<const T> upstream, detail::Named<T> d_primal,
                      const WeightsGrad<T>& d_weights) {
  const detail::BackwardWants wants = detail::check_sampler_backward(
      verb, w, primal_on_input, primal, upstream, d_primal, d_weights);
  if (!wants.d_data && !wants.d_weights) return;
  const int upstream_h = primal_on_input ? w.out_height() : w.in_height();
  const int upstream_w = primal_on_input ? w.out_width() : w.in_width();
  const T scale = T(double(upstream_h) * upstream_w);
  const detail::Direction direction =
      primal_on_input ? detail::Direction::inverse : detail::Direction::forward;
  if (wants.d_data) launch_gather(space, verb, w, upstream.map, d_primal.map, direction, scale);
  Kokkos::View<T*, typename Space::memory_space> dots;  // freed after the fence below
  if (wants.d_weights) {
    const std::int64_t pairs = std::int64_t(w.batch) * w.y.capacity() * w.x.capacity();
    dots = scratch_view<T, Space>("ssb::pair dots", pairs);
    if (direction == detail::Direction::forward) {
      launch(
          space, verb, pairs,
          PairDotsFunctor<detail::Direction::forward, T>{w, upstream.map, primal.map, dots.data()});
    } else {
      launch(
          space, verb, pairs,
          PairDotsFunctor<detail::Direction::inverse, T>{w, upstream.map, primal.map, dots.data()});
    }
    launch(space, verb, std::int64_t(w.batch) * (std::int64_t(w.y.capacity()) + w.x.capacity()),
           SlotGradFunctor<T>{w, dots.data(), d_weights, scale});
  }
  space.fence();
}

// ---- compute_weights_backward ----------------------------------------------------------------

// Index 2n + axis (0: y, 1: x): detail::marginal_grad of that axis of image n into the
// workspace's gradient scratch (dr, then dc), as detail::saliency_grad_image runs it; nothing for
// a map that summed to 0.
template <class T>
struct MarginalGradFunctor {
  Weights<T> w;
  WeightsGrad<T> d_weights;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t t) const {
    const int n = int(t / 2), H = w.y.in_size, W = w.x.in_size;
    const double total = w.total[n];
    if (!(total > 0.0)) return;
    double* dr = w.gradient_scratch + std::int64_t(n) * (H + 1 + W + 1);
    if (t % 2 == 0) {
      detail::marginal_grad(w.y.image(n), d_weights.y + std::int64_t(n) * d_weights.capacity_y,
                            w.y.mass + std::int64_t(n) * H, total, dr);
    } else {
      detail::marginal_grad(w.x.image(n), d_weights.x + std::int64_t(n) * d_weights.capacity_x,
                            w.x.mass + std::int64_t(n) * W, total, dr + H + 1);
    }
  }
};

// Pixel (n, h, w) (index (n * H + h) * W + w): d_saliency = dr[h] + dc[w], or 0 for a map that
// summed to 0, as detail::saliency_grad_image writes it.
template <class T, class DS>
struct SaliencyPixelFunctor {
  Weights<T> w;
  DS* d_saliency;
  KOKKOS_INLINE_FUNCTION void operator()(const std::int64_t e) const {
    const int H = w.y.in_size, W = w.x.in_size;
    const std::int64_t n = e / (std::int64_t(H) * W);
    const int h = int(e / W % H), c = int(e % W);
    const double* dr = w.gradient_scratch + n * (H + 1 + W + 1);
    d_saliency[e] = w.total[n] > 0.0 ? DS(dr[h] + dr[H + 1 + c]) : DS(0);
  }
};

// ---- the verbs -------------------------------------------------------------------------------

template <class Space, class T, class X>
void sample(const Space& space, const Weights<T>& weights, FeatureMap<X> x, FeatureMap<T> xr) {
  detail::require_scalar<X, T>();
  const char* verb = "ssb::sample";
  detail::check_gather(verb, weights, true, detail::Named<X>{"x", x}, detail::Named<T>{"xr", xr});
  launch_gather(space, verb, weights, FeatureMap<const T>(x), xr, detail::Direction::forward,
                T(double(weights.out_height()) * weights.out_width()));
  space.fence();
}

template <class Space, class T, class Y>
void sample_inverse(const Space& space, const Weights<T>& weights, FeatureMap<Y> y,
                    FeatureMap<T> z) {
  detail::require_scalar<Y, T>();
  const char* verb = "ssb::sample_inverse";
  detail::check_gather(verb, weights, false, detail::Named<Y>{"y", y}, detail::Named<T>{"z", z});
  launch_gather(space, verb, weights, FeatureMap<const T>(y), z, detail::Direction::inverse,
                T(double(weights.in_height()) * weights.in_width()));
  space.fence();
}

template <class Space, class T, class X, class DXr>
void sample_backward(const Space& space, const Weights<T>& weights, FeatureMap<X> x,
                     FeatureMap<DXr> d_xr, FeatureMap<T> d_x, WeightsGrad<T> d_weights) {
  detail::require_scalar<X, T>();
  detail::require_scalar<DXr, T>();
  sampler_backward<Space, T>(space, "ssb::sample_backward", weights, true, {"x", x}, {"d_xr", d_xr},
                             {"d_x", d_x}, d_weights);
}

template <class Space, class T, class Y, class DZ>
void sample_inverse_backward(const Space& space, const Weights<T>& weights, FeatureMap<Y> y,
                             FeatureMap<DZ> d_z, FeatureMap<T> d_y, WeightsGrad<T> d_weights) {
  detail::require_scalar<Y, T>();
  detail::require_scalar<DZ, T>();
  sampler_backward<Space, T>(space, "ssb::sample_inverse_backward", weights, false, {"y", y},
                             {"d_z", d_z}, {"d_y", d_y}, d_weights);
}

template <class Space, class S, class T, class DS>
void compute_weights_backward(const Space& space, SaliencyMap<S> saliency,
                              const Weights<T>& weights, WeightsGrad<T> d_weights,
                              SaliencyMap<DS> d_saliency) {
  detail::require_scalar<S, T>();
  detail::require_scalar<DS, T>();
  static_assert(!std::is_const<DS>::value, "d_saliency is an output");
  const char* verb = "ssb::compute_weights_backward";
  detail::check_compute_weights_backward(verb, saliency, weights, d_weights, d_saliency);
  launch(space, verb, 2 * std::int64_t(weights.batch), MarginalGradFunctor<T>{weights, d_weights});
  launch(space, verb, d_saliency.size(), SaliencyPixelFunctor<T, DS>{weights, d_saliency.data});
  space.fence();
}

}  // namespace kokkos_detail
}  // namespace ssb
