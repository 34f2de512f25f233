// ssbnet: the Kokkos backend (target ssbnet::kokkos). The six verbs on a Kokkos execution space
// instance, over Kokkos::View arguments or over the core's raw-pointer views:
//
//     Kokkos::View<float****> x("x", N, H, W, C), xr("xr", N, Hr, Wr, C);   // NHWC, LayoutRight
//     Kokkos::View<float***> s("s", N, H, W);                                // or (N, 1, H, W)
//     Kokkos::View<std::byte*> ws("ws", ssb::workspace_size<float>(N, H, W, Hr, Wr));
//     auto weights = ssb::weights_view<float>(ws, N, H, W, Hr, Wr);
//     ssb::compute_weights(Kokkos::OpenMP{}, s, Hr, Wr, weights);
//     ssb::sample(Kokkos::OpenMP{}, weights, x, xr);                   // ssb::Layout::nhwc default
//     ssb::sample(Kokkos::OpenMP{}, weights, x_raw, xr_raw);           // ssb::FeatureMap views
//
// Every launch is a Kokkos::parallel_for labelled with its verb ("ssb::compute_weights",
// "ssb::sample", ...) over a RangePolicy of the given space instance, and every verb fences that
// instance before it returns, so it returns with its outputs written, like the other backends.
// Each index writes only its own outputs in a fixed order (no atomics): results are bitwise
// reproducible on every space, run to run and at any thread count.
//
// Execution spaces. Host spaces (Kokkos::Serial, Kokkos::OpenMP, Kokkos::Threads,
// Kokkos::Experimental::HPX) run the tuned host bodies of the other host backends, with their
// host scratch (std::vector, thread_local buffers): bitwise identical to ssb::serial. A launch
// there that touches fewer than SSB_KOKKOS_MIN_WORK elements (default 32768, the OpenMP backend's
// threshold) runs on the calling thread instead when the space has more than one thread (same
// bits, no fork and no kernel for Kokkos tools to see); define it to 0 before the include to
// launch always. Every other space (any whose memory the host cannot read: Kokkos::Cuda, tested;
// HIP, not compiled here) runs the portable kernels of ssb/detail/kokkos_portable.hpp: one thread
// per output element over the shared SSB_HOST_DEVICE bodies, no host scratch, results within
// rounding of ssb::serial's (the device compiler's contraction; see that file). Define
// SSB_KOKKOS_PORTABLE_KERNELS to 1 before the include to run the portable kernels on host spaces
// too (the tests do, so that this path runs in CI without a GPU). The raw-pointer overloads exist
// for the host spaces and for Kokkos::Cuda and HIP, whose pointers must then be device memory.
//
// Views (the View overloads):
//   - feature maps: rank 4, extents (N, H, W, C) for ssb::Layout::nhwc or (N, C, H, W) for
//     ssb::Layout::nchw, given by the trailing `layout` argument (one layout for every feature map
//     of the call; the raw-pointer overloads take mixed layouts);
//   - saliency and d_saliency: rank 3 (N, H, W) or rank 4 (N, 1, H, W);
//   - workspace: rank 1, any element type (its bytes count), made into weights by
//     ssb::weights_view<T>(workspace, N, H, W, Hr, Wr); weight gradients: a rank-1 View<T*> of
//     ssb::weights_grad_size(weights) elements made into ssb::weights_grad_view(weights, view)
//     (an ssb::HostWeightsGrad, or an empty ssb::WeightsGrad<T>{} to skip, are accepted too).
// Checked at compile time: every view is accessible from the execution space
// (Kokkos::SpaceAccessibility), has the right rank, and is not LayoutLeft (a rank >= 2 LayoutLeft
// view is column-major: neither NHWC nor NCHW; deep_copy it into a LayoutRight view; on Cuda and
// HIP, Kokkos' default layout is LayoutLeft, so name Kokkos::LayoutRight there). Checked at
// run time (ssb::error, nothing written): LayoutStride views must be contiguous and row-major,
// extents must fit int, and everything the core verbs check. An empty View (no data, no extents)
// skips an optional output, as an empty FeatureMap does.
#pragma once

#include <Kokkos_Core.hpp>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <ssb/ssb.hpp>
#include <string>
#include <type_traits>

#include "detail/kokkos_portable.hpp"

#ifndef SSB_KOKKOS_MIN_WORK
#define SSB_KOKKOS_MIN_WORK 32768
#endif
#ifndef SSB_KOKKOS_PORTABLE_KERNELS
#define SSB_KOKKOS_PORTABLE_KERNELS 0
#endif

namespace ssb {
namespace detail {

// --- the launcher --------------------------------------------------------------------------------

// The execution tag of the Kokkos launches: a space instance and the verb's kernel label.
template <class Space>
struct kokkos_exec {
  Space space;
  const char* label;
};

// True for execution spaces whose threads run on the host and read host memory.
template <class Space, bool = Kokkos::is_execution_space<Space>::value>
struct kokkos_host_space : std::false_type {};
template <class Space>
struct kokkos_host_space<Space, true>
    : std::integral_constant<bool,
                             Kokkos::SpaceAccessibility<Space, Kokkos::HostSpace>::accessible> {};

template <class Space>
constexpr void require_kokkos_space() {
  static_assert(Kokkos::is_execution_space<Space>::value,
                "ssb (Kokkos): the first argument must be a Kokkos execution space instance "
                "(Kokkos::Serial{}, Kokkos::OpenMP{}, Kokkos::Cuda{}, ...)");
}

// Whether verbs on Space run the portable kernels (kokkos_portable.hpp) rather than the host
// bodies through launcher<kokkos_exec<Space>>.
template <class Space>
constexpr bool kokkos_portable() {
  return SSB_KOKKOS_PORTABLE_KERNELS != 0 || !kokkos_host_space<Space>::value;
}

// The Kokkos functor around one launch's body: f(i) for one index of the range.
template <class F>
struct kokkos_body {
  F* f;
  void operator()(const std::int64_t i) const { (*f)(i); }
};

template <class Space>
struct launcher<kokkos_exec<Space>> {
  static constexpr bool available = true;
  template <class F>
  static void for_each(const kokkos_exec<Space>& exec, std::int64_t count, F&& f,
                       std::int64_t work) {
    static_assert(kokkos_host_space<Space>::value,
                  "ssb (Kokkos): internal: host bodies launched on a device space");
    if (count <= 0) return;
    if (exec.space.concurrency() > 1 && (count < 2 || work < std::int64_t(SSB_KOKKOS_MIN_WORK))) {
      for (std::int64_t i = 0; i < count; ++i) f(i);
      return;
    }
    using Policy = Kokkos::RangePolicy<Space, Kokkos::IndexType<std::int64_t>>;
    Kokkos::parallel_for(std::string(exec.label), Policy(exec.space, 0, count),
                         kokkos_body<std::remove_reference_t<F>>{&f});
    exec.space.fence();
  }
};

// The six verbs on a space instance over the core's views: the portable kernels or the host
// bodies (the generic verbs of verbs.hpp on kokkos_exec), as kokkos_portable<Space>() says.
template <class Space, class S, class T>
void kokkos_compute_weights(const Space& space, SaliencyMap<S> saliency, int out_h, int out_w,
                            const Weights<T>& weights) {
  if constexpr (kokkos_portable<Space>()) {
    kokkos_detail::compute_weights(space, saliency, out_h, out_w, weights);
  } else {
    ssb::compute_weights(kokkos_exec<Space>{space, "ssb::compute_weights"}, saliency, out_h, out_w,
                         weights);
  }
}
template <class Space, class T, class X>
void kokkos_sample(const Space& space, const Weights<T>& weights, FeatureMap<X> x,
                   FeatureMap<T> xr) {
  if constexpr (kokkos_portable<Space>()) {
    kokkos_detail::sample(space, weights, x, xr);
  } else {
    ssb::sample(kokkos_exec<Space>{space, "ssb::sample"}, weights, x, xr);
  }
}
template <class Space, class T, class Y>
void kokkos_sample_inverse(const Space& space, const Weights<T>& weights, FeatureMap<Y> y,
                           FeatureMap<T> z) {
  if constexpr (kokkos_portable<Space>()) {
    kokkos_detail::sample_inverse(space, weights, y, z);
  } else {
    ssb::sample_inverse(kokkos_exec<Space>{space, "ssb::sample_inverse"}, weights, y, z);
  }
}
template <class Space, class T, class X, class DXr>
void kokkos_sample_backward(const Space& space, const Weights<T>& weights, FeatureMap<X> x,
                            FeatureMap<DXr> d_xr, FeatureMap<T> d_x, WeightsGrad<T> d_weights) {
  if constexpr (kokkos_portable<Space>()) {
    kokkos_detail::sample_backward(space, weights, x, d_xr, d_x, d_weights);
  } else {
    ssb::sample_backward(kokkos_exec<Space>{space, "ssb::sample_backward"}, weights, x, d_xr, d_x,
                         d_weights);
  }
}
template <class Space, class T, class Y, class DZ>
void kokkos_sample_inverse_backward(const Space& space, const Weights<T>& weights, FeatureMap<Y> y,
                                    FeatureMap<DZ> d_z, FeatureMap<T> d_y,
                                    WeightsGrad<T> d_weights) {
  if constexpr (kokkos_portable<Space>()) {
    kokkos_detail::sample_inverse_backward(space, weights, y, d_z, d_y, d_weights);
  } else {
    ssb::sample_inverse_backward(kokkos_exec<Space>{space, "ssb::sample_inverse_backward"}, weights,
                                 y, d_z, d_y, d_weights);
  }
}
template <class Space, class S, class T, class DS>
void kokkos_compute_weights_backward(const Space& space, SaliencyMap<S> saliency,
                                     const Weights<T>& weights, WeightsGrad<T> d_weights,
                                     SaliencyMap<DS> d_saliency) {
  if constexpr (kokkos_portable<Space>()) {
    kokkos_detail::compute_weights_backward(space, saliency, weights, d_weights, d_saliency);
  } else {
    ssb::compute_weights_backward(kokkos_exec<Space>{space, "ssb::compute_weights_backward"},
                                  saliency, weights, d_weights, d_saliency);
  }
}

}  // namespace detail

// --- raw-pointer views on a concrete space -------------------------------------------------------
// ssb::sample(Kokkos::OpenMP{}, weights, x, xr) with the core's FeatureMap/SaliencyMap/Weights
// views: the same verbs, labelled, on that space (more specialised than the core's templates). On
// Kokkos::Cuda and HIP every pointer must be memory of that device (nothing can check a raw
// pointer's space at compile time).
#define SSB_KOKKOS_POINTER_VERBS(SPACE)                                                           \
  template <class S, class T>                                                                     \
  void compute_weights(const SPACE& space, SaliencyMap<S> saliency, int out_h, int out_w,         \
                       const Weights<T>& weights) {                                               \
    detail::kokkos_compute_weights(space, saliency, out_h, out_w, weights);                       \
  }                                                                                               \
  template <class T, class X>                                                                     \
  void sample(const SPACE& space, const Weights<T>& weights, FeatureMap<X> x, FeatureMap<T> xr) { \
    detail::kokkos_sample(space, weights, x, xr);                                                 \
  }                                                                                               \
  template <class T, class Y>                                                                     \
  void sample_inverse(const SPACE& space, const Weights<T>& weights, FeatureMap<Y> y,             \
                      FeatureMap<T> z) {                                                          \
    detail::kokkos_sample_inverse(space, weights, y, z);                                          \
  }                                                                                               \
  template <class T, class X, class DXr>                                                          \
  void sample_backward(const SPACE& space, const Weights<T>& weights, FeatureMap<X> x,            \
                       FeatureMap<DXr> d_xr, FeatureMap<T> d_x, WeightsGrad<T> d_weights) {       \
    detail::kokkos_sample_backward(space, weights, x, d_xr, d_x, d_weights);                      \
  }                                                                                               \
  template <class T, class Y, class DZ>                                                           \
  void sample_inverse_backward(const SPACE& space, const Weights<T>& weights, FeatureMap<Y> y,    \
                               FeatureMap<DZ> d_z, FeatureMap<T> d_y, WeightsGrad<T> d_weights) { \
    detail::kokkos_sample_inverse_backward(space, weights, y, d_z, d_y, d_weights);               \
  }                                                                                               \
  template <class S, class T, class DS>                                                           \
  void compute_weights_backward(const SPACE& space, SaliencyMap<S> saliency,                      \
                                const Weights<T>& weights, WeightsGrad<T> d_weights,              \
                                SaliencyMap<DS> d_saliency) {                                     \
    detail::kokkos_compute_weights_backward(space, saliency, weights, d_weights, d_saliency);     \
  }

#if defined(KOKKOS_ENABLE_SERIAL)
SSB_KOKKOS_POINTER_VERBS(Kokkos::Serial)
#endif
#if defined(KOKKOS_ENABLE_OPENMP)
SSB_KOKKOS_POINTER_VERBS(Kokkos::OpenMP)
#endif
#if defined(KOKKOS_ENABLE_THREADS)
SSB_KOKKOS_POINTER_VERBS(Kokkos::Threads)
#endif
#if defined(KOKKOS_ENABLE_HPX)
SSB_KOKKOS_POINTER_VERBS(Kokkos::Experimental::HPX)
#endif
#if defined(KOKKOS_ENABLE_CUDA)
SSB_KOKKOS_POINTER_VERBS(Kokkos::Cuda)
#endif
#if defined(KOKKOS_ENABLE_HIP) && KOKKOS_VERSION >= 40000
SSB_KOKKOS_POINTER_VERBS(Kokkos::HIP)
#elif defined(KOKKOS_ENABLE_HIP)
SSB_KOKKOS_POINTER_VERBS(Kokkos::Experimental::HIP)
#endif
#undef SSB_KOKKOS_POINTER_VERBS

// --- weights over Kokkos views -------------------------------------------------------------------

// Weights<T> over a rank-1 workspace View, which it keeps alive (reference counted).
template <class T, class WorkspaceView>
class KokkosWeights : public Weights<T> {
 public:
  using view_type = WorkspaceView;
  using memory_space = typename WorkspaceView::memory_space;

  KokkosWeights() = default;
  KokkosWeights(const Weights<T>& weights, const WorkspaceView& workspace)
      : Weights<T>(weights), workspace_(workspace) {}
  const WorkspaceView& workspace_view() const { return workspace_; }

 private:
  WorkspaceView workspace_;
};

// WeightsGrad<T> over a rank-1 View<T*>, which it keeps alive. A default-constructed one is empty
// (skips d_weights).
template <class T, class GradView>
class KokkosWeightsGrad : public WeightsGrad<T> {
 public:
  using view_type = GradView;
  using memory_space = typename GradView::memory_space;

  KokkosWeightsGrad() = default;
  KokkosWeightsGrad(const WeightsGrad<T>& grad, const GradView& values)
      : WeightsGrad<T>(grad), values_(values) {}
  const GradView& values() const { return values_; }

 private:
  GradView values_;
};

namespace detail {

template <class V>
constexpr int kokkos_rank() {
  return int(V::traits::rank);
}

// Compile-time checks of one view argument of a verb on `Space`.
template <class Space, class V>
constexpr void require_kokkos_view() {
  static_assert(Kokkos::is_view<V>::value, "ssb (Kokkos): expected a Kokkos::View");
  static_assert(Kokkos::SpaceAccessibility<Space, typename V::memory_space>::accessible,
                "ssb (Kokkos): a view's memory space is not accessible from the execution space; "
                "deep_copy it into a view of the space's memory_space first");
  static_assert(kokkos_rank<V>() <= 1 ||
                    !std::is_same<typename V::traits::array_layout, Kokkos::LayoutLeft>::value,
                "ssb (Kokkos): LayoutLeft views are refused: a rank >= 2 LayoutLeft view is "
                "column-major, neither NHWC nor NCHW; deep_copy it into a LayoutRight view");
}

template <class V>
int kokkos_extent(const char* verb, const char* name, const V& v, int r) {
  const auto e = v.extent(r);
  if (e > std::size_t(INT_MAX)) {
    fail(std::string(verb) + ": " + name + ".extent(" + std::to_string(r) + ") is " +
         std::to_string(e) + ", more than ssbnet's int extents hold");
  }
  return int(e);
}

// Row-major and contiguous: stride(r) = product of the later extents wherever extent(r) > 1.
// Always true of unpadded LayoutRight views; LayoutStride views (subviews) are checked here.
template <class V>
void check_kokkos_contiguous(const char* verb, const char* name, const V& v) {
  std::size_t expected = 1;
  for (int r = kokkos_rank<V>() - 1; r >= 0; --r) {
    if (v.extent(r) > 1 && std::size_t(v.stride(r)) != expected) {
      fail(std::string(verb) + ": " + name +
           " must be a contiguous row-major view (LayoutRight, or a LayoutStride subview that is "
           "contiguous); stride(" +
           std::to_string(r) + ") is " + std::to_string(v.stride(r)) + ", expected " +
           std::to_string(expected));
    }
    expected *= v.extent(r);
  }
}

template <class V>
bool kokkos_is_empty(const V& v) {
  return v.data() == nullptr && v.size() == 0;
}

// A rank-4 view as a FeatureMap: extents (N, H, W, C) for NHWC, (N, C, H, W) for NCHW.
template <class V>
FeatureMap<typename V::value_type> kokkos_feature_map(const char* verb, const char* name,
                                                      const V& v, Layout layout) {
  static_assert(kokkos_rank<V>() == 4,
                "ssb (Kokkos): feature maps are rank-4 views, (N, H, W, C) for ssb::Layout::nhwc "
                "or (N, C, H, W) for ssb::Layout::nchw");
  if (kokkos_is_empty(v)) return {};
  check_kokkos_contiguous(verb, name, v);
  int e[4];
  for (int r = 0; r < 4; ++r) e[r] = kokkos_extent(verb, name, v, r);
  if (layout == Layout::nchw) return {v.data(), e[0], e[2], e[3], e[1], Layout::nchw};
  if (layout != Layout::nhwc) fail(std::string(verb) + ": layout is invalid");
  return {v.data(), e[0], e[1], e[2], e[3], Layout::nhwc};
}

// A rank-3 (N, H, W) or rank-4 (N, 1, H, W) view as a SaliencyMap.
template <class V>
SaliencyMap<typename V::value_type> kokkos_saliency_map(const char* verb, const char* name,
                                                        const V& v) {
  constexpr int rank = kokkos_rank<V>();
  static_assert(rank == 3 || rank == 4,
                "ssb (Kokkos): saliency maps are rank-3 (N, H, W) or rank-4 (N, 1, H, W) views");
  if (kokkos_is_empty(v)) return {};
  check_kokkos_contiguous(verb, name, v);
  if (rank == 4 && v.extent(1) != 1) {
    fail(std::string(verb) + ": " + name + " is a rank-4 view with extent(1) = " +
         std::to_string(v.extent(1)) + "; saliency maps are (N, 1, H, W)");
  }
  return {v.data(), kokkos_extent(verb, name, v, 0), kokkos_extent(verb, name, v, rank - 2),
          kokkos_extent(verb, name, v, rank - 1)};
}

// What a View overload accepts as d_weights: a KokkosWeightsGrad (its view's memory space is
// checked), a HostWeightsGrad (host memory), or an empty plain WeightsGrad<T>{} (nothing to check).
template <class T, class DW>
struct kokkos_grad_traits {
  static constexpr bool accepted = false;
};
template <class T, class GradView>
struct kokkos_grad_traits<T, KokkosWeightsGrad<T, GradView>> {
  static constexpr bool accepted = true;
  using memory_space = typename GradView::memory_space;
};
template <class T>
struct kokkos_grad_traits<T, HostWeightsGrad<T>> {
  static constexpr bool accepted = true;
  using memory_space = Kokkos::HostSpace;
};
template <class T>
struct kokkos_grad_traits<T, WeightsGrad<T>> {
  static constexpr bool accepted = true;
  using memory_space = void;
};

template <class Space, class T, class DW>
WeightsGrad<T> kokkos_weights_grad(const char* verb, const DW& d_weights) {
  using Traits = kokkos_grad_traits<T, DW>;
  static_assert(Traits::accepted,
                "ssb (Kokkos): d_weights must be ssb::weights_grad_view(weights, view) over a "
                "Kokkos::View<T*>, an ssb::HostWeightsGrad<T>, or an empty ssb::WeightsGrad<T>{}");
  if constexpr (Traits::accepted) {
    using Memory = typename Traits::memory_space;
    if constexpr (std::is_void<Memory>::value) {
      if (!is_empty(static_cast<const WeightsGrad<T>&>(d_weights))) {
        fail(std::string(verb) +
             ": d_weights is a plain ssb::WeightsGrad; on Kokkos views pass "
             "ssb::weights_grad_view(weights, view) (or an empty one to skip)");
      }
    } else {
      static_assert(Kokkos::SpaceAccessibility<Space, Memory>::accessible,
                    "ssb (Kokkos): a view's memory space is not accessible from the execution "
                    "space; deep_copy it into a view of the space's memory_space first");
    }
  }
  return d_weights;
}

}  // namespace detail

// Weights<T> for (N, H, W) -> (Hr, Wr) over a rank-1 workspace View of at least
// workspace_size<T>(N, H, W, Hr, Wr) bytes (8-byte aligned; Kokkos allocations are 64-byte
// aligned). The memory space is checked by each verb against its execution space.
template <class T, class WorkspaceView,
          class = std::enable_if_t<Kokkos::is_view<WorkspaceView>::value>>
KokkosWeights<T, WorkspaceView> weights_view(const WorkspaceView& workspace, int batch, int in_h,
                                             int in_w, int out_h, int out_w) {
  static_assert(detail::kokkos_rank<WorkspaceView>() == 1,
                "ssb (Kokkos): the workspace is a rank-1 view (e.g. Kokkos::View<std::byte*>)");
  static_assert(!std::is_const<typename WorkspaceView::value_type>::value,
                "ssb (Kokkos): the workspace is written: its view cannot be const");
  const char* verb = "ssb::weights_view";
  detail::check_kokkos_contiguous(verb, "workspace", workspace);
  const std::size_t bytes = workspace.extent(0) * sizeof(typename WorkspaceView::value_type);
  return {
      weights_view<T>(static_cast<void*>(workspace.data()), bytes, batch, in_h, in_w, out_h, out_w),
      workspace};
}

// A WeightsGrad<T> for `weights` over a rank-1 View<T*> of at least weights_grad_size(weights)
// elements. The backward verbs accumulate into it: zero it first (a new View is zeroed).
template <class T, class GradView, class = std::enable_if_t<Kokkos::is_view<GradView>::value>>
KokkosWeightsGrad<T, GradView> weights_grad_view(const Weights<T>& weights,
                                                 const GradView& values) {
  static_assert(detail::kokkos_rank<GradView>() == 1,
                "ssb (Kokkos): weight gradients are a rank-1 view (Kokkos::View<T*>)");
  static_assert(
      std::is_same<typename GradView::value_type, T>::value,
      "ssb (Kokkos): weight gradients are a view of the weights' (non-const) scalar type");
  detail::check_kokkos_contiguous("ssb::weights_grad_view", "values", values);
  return {weights_grad_view(weights, values.data(), values.extent(0)), values};
}

// --- the six verbs over Kokkos views -------------------------------------------------------------

template <class Space, class SaliencyView, class T, class WorkspaceView,
          class = std::enable_if_t<Kokkos::is_view<SaliencyView>::value>>
void compute_weights(const Space& space, const SaliencyView& saliency, int out_h, int out_w,
                     const KokkosWeights<T, WorkspaceView>& weights) {
  detail::require_kokkos_space<Space>();
  detail::require_kokkos_view<Space, SaliencyView>();
  detail::require_kokkos_view<Space, WorkspaceView>();
  const char* verb = "ssb::compute_weights";
  detail::kokkos_compute_weights(space, detail::kokkos_saliency_map(verb, "saliency", saliency),
                                 out_h, out_w, static_cast<const Weights<T>&>(weights));
}

template <class Space, class T, class WorkspaceView, class XView, class XrView,
          class = std::enable_if_t<Kokkos::is_view<XView>::value>>
void sample(const Space& space, const KokkosWeights<T, WorkspaceView>& weights, const XView& x,
            const XrView& xr, Layout layout = Layout::nhwc) {
  detail::require_kokkos_space<Space>();
  detail::require_kokkos_view<Space, WorkspaceView>();
  detail::require_kokkos_view<Space, XView>();
  detail::require_kokkos_view<Space, XrView>();
  const char* verb = "ssb::sample";
  detail::kokkos_sample(space, static_cast<const Weights<T>&>(weights),
                        detail::kokkos_feature_map(verb, "x", x, layout),
                        detail::kokkos_feature_map(verb, "xr", xr, layout));
}

template <class Space, class T, class WorkspaceView, class YView, class ZView,
          class = std::enable_if_t<Kokkos::is_view<YView>::value>>
void sample_inverse(const Space& space, const KokkosWeights<T, WorkspaceView>& weights,
                    const YView& y, const ZView& z, Layout layout = Layout::nhwc) {
  detail::require_kokkos_space<Space>();
  detail::require_kokkos_view<Space, WorkspaceView>();
  detail::require_kokkos_view<Space, YView>();
  detail::require_kokkos_view<Space, ZView>();
  const char* verb = "ssb::sample_inverse";
  detail::kokkos_sample_inverse(space, static_cast<const Weights<T>&>(weights),
                                detail::kokkos_feature_map(verb, "y", y, layout),
                                detail::kokkos_feature_map(verb, "z", z, layout));
}

// d_weights: a KokkosWeightsGrad (ssb::weights_grad_view(weights, view)), an ssb::HostWeightsGrad,
// or an empty ssb::WeightsGrad<T>{} to skip it; d_x may be an empty View.
template <class Space, class T, class WorkspaceView, class XView, class DXrView, class DXView,
          class DW, class = std::enable_if_t<Kokkos::is_view<XView>::value>>
void sample_backward(const Space& space, const KokkosWeights<T, WorkspaceView>& weights,
                     const XView& x, const DXrView& d_xr, const DXView& d_x, const DW& d_weights,
                     Layout layout = Layout::nhwc) {
  detail::require_kokkos_space<Space>();
  detail::require_kokkos_view<Space, WorkspaceView>();
  detail::require_kokkos_view<Space, XView>();
  detail::require_kokkos_view<Space, DXrView>();
  detail::require_kokkos_view<Space, DXView>();
  const char* verb = "ssb::sample_backward";
  detail::kokkos_sample_backward(space, static_cast<const Weights<T>&>(weights),
                                 detail::kokkos_feature_map(verb, "x", x, layout),
                                 detail::kokkos_feature_map(verb, "d_xr", d_xr, layout),
                                 detail::kokkos_feature_map(verb, "d_x", d_x, layout),
                                 detail::kokkos_weights_grad<Space, T>(verb, d_weights));
}

template <class Space, class T, class WorkspaceView, class YView, class DZView, class DYView,
          class DW, class = std::enable_if_t<Kokkos::is_view<YView>::value>>
void sample_inverse_backward(const Space& space, const KokkosWeights<T, WorkspaceView>& weights,
                             const YView& y, const DZView& d_z, const DYView& d_y,
                             const DW& d_weights, Layout layout = Layout::nhwc) {
  detail::require_kokkos_space<Space>();
  detail::require_kokkos_view<Space, WorkspaceView>();
  detail::require_kokkos_view<Space, YView>();
  detail::require_kokkos_view<Space, DZView>();
  detail::require_kokkos_view<Space, DYView>();
  const char* verb = "ssb::sample_inverse_backward";
  detail::kokkos_sample_inverse_backward(space, static_cast<const Weights<T>&>(weights),
                                         detail::kokkos_feature_map(verb, "y", y, layout),
                                         detail::kokkos_feature_map(verb, "d_z", d_z, layout),
                                         detail::kokkos_feature_map(verb, "d_y", d_y, layout),
                                         detail::kokkos_weights_grad<Space, T>(verb, d_weights));
}

template <class Space, class SaliencyView, class T, class WorkspaceView, class DW,
          class DSaliencyView, class = std::enable_if_t<Kokkos::is_view<SaliencyView>::value>>
void compute_weights_backward(const Space& space, const SaliencyView& saliency,
                              const KokkosWeights<T, WorkspaceView>& weights, const DW& d_weights,
                              const DSaliencyView& d_saliency) {
  detail::require_kokkos_space<Space>();
  detail::require_kokkos_view<Space, SaliencyView>();
  detail::require_kokkos_view<Space, WorkspaceView>();
  detail::require_kokkos_view<Space, DSaliencyView>();
  const char* verb = "ssb::compute_weights_backward";
  detail::kokkos_compute_weights_backward(
      space, detail::kokkos_saliency_map(verb, "saliency", saliency),
      static_cast<const Weights<T>&>(weights),
      detail::kokkos_weights_grad<Space, T>(verb, d_weights),
      detail::kokkos_saliency_map(verb, "d_saliency", d_saliency));
}

}  // namespace ssb
