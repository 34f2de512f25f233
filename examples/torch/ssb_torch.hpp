// ssbnet on libtorch: the saliency samplers of an SSB layer as autograd functions.
//
//     auto w = ssb_torch::compute_weights(s, Hr, Wr);  // s: N x H x W or N x 1 x H x W, >= 0
//     auto xr = ssb_torch::sample(w, x);               // N x C x H x W  -> N x C x Hr x Wr (eq. 8)
//     auto z = ssb_torch::sample_inverse(w, y);        // N x C x Hr x Wr -> N x C x H x W  (eq. 9)
//
// Both samplers share the weights of one compute_weights call, and gradients reach x, y and the
// saliency map. Three autograd functions do it:
//   WeightsFn   s -> (segments, workspace): ssb::compute_weights into a workspace tensor, plus a
//               copy of the segment weights as a differentiable tensor laid out like
//               ssb::WeightsGrad (y segments of every image, then x segments).
//   SamplerFn   (x or y, segments, workspace) -> xr or z: ssb::sample or ssb::sample_inverse.
//               Its backward returns d_x (or d_y) and the sampler's d_weights as the gradient of
//               `segments`.
// `segments` feeds both samplers, so autograd adds their two d_weights before WeightsFn's
// backward runs ssb::compute_weights_backward once on the sum, as MATH.md prescribes for an SSB
// layer. The segment values in `segments` are the ones the workspace holds; the samplers read the
// workspace, and `segments` only carries the gradient.
//
// Tensors: float or double, all on one device; feature maps are NCHW-contiguous (ssb NCHW) or
// channels_last (ssb NHWC), used in place; other strides are made contiguous first. Outputs keep
// the memory format of the input. CPU tensors run on ssb::openmp with the thread count given to
// compute_weights (0: at::get_num_threads()). CUDA tensors run on ssb::cuda (<ssb/cuda.cuh>) on
// the device's current stream, in a build that defines SSB_TORCH_WITH_CUDA and compiles this
// header with nvcc against a CUDA libtorch; without it they are refused with a message saying so.
// On CUDA, compute_weights synchronises the stream once (ssb::check_weights_status) so that a bad
// saliency map raises the same error as on the CPU; the samplers and backwards never synchronise.
// (Debian's libtorch is CPU-only: the CUDA path is compiled by nvcc in CI, see CMakeLists.txt, but
// it has not been linked or run.)
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <ssb/openmp.hpp>
#include <type_traits>
#include <utility>
#include <vector>

#ifdef SSB_TORCH_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <ssb/cuda.cuh>
#endif

namespace ssb_torch {

// Optional accounting of the wall-clock time spent in the samplers' forward passes (the forward of
// compute_weights, sample and sample_inverse: allocation, kernels and copies), for benchmarks that
// report the samplers' share of a network's time. Off unless `enabled`; the counters are global.
struct SamplerClock {
  static std::atomic<bool>& enabled() {
    static std::atomic<bool> on{false};
    return on;
  }
  static std::atomic<int64_t>& nanoseconds() {
    static std::atomic<int64_t> ns{0};
    return ns;
  }
  static std::atomic<int64_t>& calls() {
    static std::atomic<int64_t> n{0};
    return n;
  }
  static void reset() {
    nanoseconds() = 0;
    calls() = 0;
  }
};

namespace detail {
// Adds its lifetime to SamplerClock when the clock is enabled.
class SamplerTimer {
 public:
  SamplerTimer() : on_(SamplerClock::enabled().load(std::memory_order_relaxed)) {
    if (on_) start_ = std::chrono::steady_clock::now();
  }
  SamplerTimer(const SamplerTimer&) = delete;
  SamplerTimer& operator=(const SamplerTimer&) = delete;
  ~SamplerTimer() {
    if (!on_) return;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - start_)
                        .count();
    SamplerClock::nanoseconds() += int64_t(ns);
    ++SamplerClock::calls();
  }

 private:
  bool on_;
  std::chrono::steady_clock::time_point start_;
};
}  // namespace detail

// The weights of one SSB layer's samplers: what compute_weights returns, and sample and
// sample_inverse take.
struct SamplerWeights {
  at::Tensor segments;   // differentiable segment weights, [N*(H+Hr-1) + N*(W+Wr-1)]
  at::Tensor workspace;  // uint8, ssb::workspace_size bytes: segments, indices, offsets, marginals
  std::vector<int64_t> geometry;  // {N, H, W, Hr, Wr, threads}
};

namespace detail {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

enum Geometry { batch, height, width, out_h, out_w, threads };

// Calls f with the ssbnet execution tag for tensors on `device`: ssb::openmp for CPU tensors and,
// in a build with the CUDA backend, ssb::cuda on the device's current stream for CUDA tensors
// (with that device made current for the launches).
template <class F>
void with_backend(const at::Device& device, int64_t threads, F&& f) {
  if (device.is_cpu()) {
    f(ssb::openmp{int(threads)});
    return;
  }
#ifdef SSB_TORCH_WITH_CUDA
  if (device.is_cuda()) {
    const c10::cuda::CUDAGuard guard(device);
    f(ssb::cuda{at::cuda::getCurrentCUDAStream(device.index()).stream()});
    return;
  }
#endif
  TORCH_INTERNAL_ASSERT(false, "ssb_torch: no ssbnet backend for ", device,
                        " (check_tensor refuses such tensors)");
}

// The checks of every tensor argument: dtype, device, int-sized extents.
inline void check_tensor(const char* fn, const char* name, const at::Tensor& t) {
  TORCH_CHECK(t.defined(), fn, ": ", name, " is an undefined tensor");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, fn, ": ", name,
              " has dtype ", t.scalar_type(), "; ssbnet supports float and double");
  TORCH_CHECK(t.device().is_cpu() || t.device().is_cuda(), fn, ": ", name, " is on ", t.device(),
              "; ssbnet runs on CPU (and, when built, CUDA) tensors");
#ifndef SSB_TORCH_WITH_CUDA
  TORCH_CHECK(!t.device().is_cuda(), fn, ": ", name, " is on ", t.device(),
              " but ssbnet's CUDA backend is not built (SSB_TORCH_WITH_CUDA is off); move it to "
              "the CPU");
#endif
  for (int64_t size : t.sizes()) {
    TORCH_CHECK(size <= INT_MAX, fn, ": ", name, " has a dimension of ", size,
                ", more than ssbnet's int extents hold");
  }
}

// A feature map as ssb sees it: the tensor's memory, NCHW when it is contiguous and NHWC when it
// is channels_last (no copy either way), else a contiguous copy. When both hold (C == 1 or
// H == W == 1), both layouts address the same elements.
struct DenseMap {
  at::Tensor tensor;
  ssb::Layout layout;
};

inline DenseMap dense_map(const at::Tensor& t) {
  if (t.is_contiguous()) return {t, ssb::Layout::nchw};
  if (t.is_contiguous(at::MemoryFormat::ChannelsLast)) return {t, ssb::Layout::nhwc};
  return {t.contiguous(), ssb::Layout::nchw};
}

inline at::MemoryFormat memory_format(ssb::Layout layout) {
  return layout == ssb::Layout::nhwc ? at::MemoryFormat::ChannelsLast
                                     : at::MemoryFormat::Contiguous;
}

template <class T>
ssb::FeatureMap<T> feature_map(const DenseMap& m) {
  const at::Tensor& t = m.tensor;
  return {t.data_ptr<std::remove_const_t<T>>(),
          int(t.size(0)),
          int(t.size(2)),
          int(t.size(3)),
          int(t.size(1)),
          m.layout};
}

template <class T>
ssb::Weights<T> weights_of(const at::Tensor& workspace, const std::vector<int64_t>& g) {
  return ssb::weights_view<T>(workspace.data_ptr(), size_t(workspace.numel()), int(g[batch]),
                              int(g[height]), int(g[width]), int(g[out_h]), int(g[out_w]));
}

template <class T>
ssb::WeightsGrad<T> weights_grad_of(const ssb::Weights<T>& w, const at::Tensor& d_segments) {
  return ssb::weights_grad_view(w, d_segments.data_ptr<T>(), size_t(d_segments.numel()));
}

// s (N x H x W, contiguous) -> {segments, workspace}; backward: d_segments -> d_s.
struct WeightsFn : torch::autograd::Function<WeightsFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& saliency,
                               std::vector<int64_t> geometry) {
    const SamplerTimer timer;
    at::Tensor workspace, segments;
    AT_DISPATCH_FLOATING_TYPES(saliency.scalar_type(), "ssb_torch::compute_weights", [&] {
      const auto& g = geometry;
      const size_t bytes = ssb::workspace_size<scalar_t>(
          int(g[batch]), int(g[height]), int(g[width]), int(g[out_h]), int(g[out_w]));
      // Zeroed, so the unused segment slots (fewer segments than the H+Hr-1 bound when
      // breakpoints coincide) read as 0 in `segments`.
      workspace = at::zeros({int64_t(bytes)}, saliency.options().dtype(at::kByte));
      const ssb::Weights<scalar_t> w = weights_of<scalar_t>(workspace, g);
      const ssb::SaliencyMap<const scalar_t> s(saliency.data_ptr<scalar_t>(), w.batch,
                                               w.in_height(), w.in_width());
      with_backend(saliency.device(), g[threads], [&](auto exec) {
        ssb::compute_weights(exec, s, w.out_height(), w.out_width(), w);
#ifdef SSB_TORCH_WITH_CUDA
        // The host verbs throw on a bad map themselves; the CUDA ones leave a status to read.
        if constexpr (std::is_same_v<decltype(exec), ssb::cuda>) ssb::check_weights_status(exec, w);
#endif
      });
      // The weight arrays of both axes, as slices of the workspace, copied into one tensor with
      // the slots of ssb::WeightsGrad.
      const auto* base = static_cast<const unsigned char*>(workspace.data_ptr());
      const auto slice = [&](const scalar_t* weight, int capacity) {
        const int64_t offset = reinterpret_cast<const unsigned char*>(weight) - base;
        const int64_t count = int64_t(w.batch) * capacity;
        return workspace.narrow(0, offset, count * int64_t(sizeof(scalar_t)))
            .view(saliency.scalar_type());
      };
      segments = at::cat({slice(w.y.weight, w.y.capacity()), slice(w.x.weight, w.x.capacity())});
    });
    ctx->save_for_backward({saliency, workspace});
    ctx->saved_data["geometry"] = geometry;
    ctx->mark_non_differentiable({workspace});
    return {segments, workspace};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& saliency = saved[0];
    const at::Tensor& workspace = saved[1];
    const std::vector<int64_t> g = ctx->saved_data["geometry"].toIntVector();
    if (!grads[0].defined()) return {at::zeros_like(saliency), at::Tensor()};
    const at::Tensor d_segments = grads[0].contiguous();
    at::Tensor d_saliency = at::empty_like(saliency);
    AT_DISPATCH_FLOATING_TYPES(saliency.scalar_type(), "ssb_torch::compute_weights_backward", [&] {
      const ssb::Weights<scalar_t> w = weights_of<scalar_t>(workspace, g);
      const ssb::SaliencyMap<const scalar_t> s(saliency.data_ptr<scalar_t>(), w.batch,
                                               w.in_height(), w.in_width());
      const ssb::SaliencyMap<scalar_t> d_s(d_saliency.data_ptr<scalar_t>(), w.batch, w.in_height(),
                                           w.in_width());
      with_backend(saliency.device(), g[threads], [&](auto exec) {
        ssb::compute_weights_backward(exec, s, w, weights_grad_of(w, d_segments), d_s);
      });
    });
    return {d_saliency, at::Tensor()};
  }
};

// (x, segments, workspace) -> xr = sample(x), or (y, segments, workspace) -> z = sample_inverse(y)
// when `inverse`. backward: d_x (or d_y) and this sampler's d_weights as d_segments.
struct SamplerFn : torch::autograd::Function<SamplerFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& primal,
                            const at::Tensor& segments, const at::Tensor& workspace,
                            std::vector<int64_t> geometry, bool inverse) {
    const SamplerTimer timer;
    const auto& g = geometry;
    const DenseMap in = dense_map(primal);
    const int64_t out_rows = inverse ? g[height] : g[out_h];
    const int64_t out_cols = inverse ? g[width] : g[out_w];
    at::Tensor out = at::empty({g[batch], primal.size(1), out_rows, out_cols},
                               primal.options().memory_format(memory_format(in.layout)));
    AT_DISPATCH_FLOATING_TYPES(primal.scalar_type(), "ssb_torch::sample", [&] {
      const ssb::Weights<scalar_t> w = weights_of<scalar_t>(workspace, g);
      const auto src = feature_map<const scalar_t>(in);
      const auto dst = feature_map<scalar_t>({out, in.layout});
      with_backend(primal.device(), g[threads], [&](auto exec) {
        if (inverse) {
          ssb::sample_inverse(exec, w, src, dst);
        } else {
          ssb::sample(exec, w, src, dst);
        }
      });
    });
    // Only the weight gradient reads the primal: a sampler on a constant map (no gradient to
    // the weights) keeps no full-size input alive.
    ctx->save_for_backward({segments.requires_grad() ? in.tensor : at::Tensor(), workspace});
    ctx->saved_data["geometry"] = geometry;
    ctx->saved_data["inverse"] = inverse;
    ctx->saved_data["layout"] = int64_t(in.layout);
    ctx->saved_data["primal_sizes"] = primal.sizes();
    ctx->saved_data["segments"] = segments.numel();
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& primal = saved[0];
    const at::Tensor& workspace = saved[1];
    const std::vector<int64_t> g = ctx->saved_data["geometry"].toIntVector();
    const bool inverse = ctx->saved_data["inverse"].toBool();
    const auto layout = ssb::Layout(ctx->saved_data["layout"].toInt());
    const bool want_d_primal = ctx->needs_input_grad(0), want_d_weights = ctx->needs_input_grad(1);
    at::Tensor d_primal, d_segments;
    if (!grads[0].defined() || (!want_d_primal && !want_d_weights)) {
      return {d_primal, d_segments, at::Tensor(), at::Tensor(), at::Tensor()};
    }
    const DenseMap upstream = dense_map(grads[0]);
    const at::TensorOptions options = grads[0].options();
    if (want_d_primal) {
      d_primal = at::empty(ctx->saved_data["primal_sizes"].toIntVector(),
                           options.memory_format(memory_format(layout)));
    }
    // The backward verbs accumulate d_weights, so it starts at 0.
    if (want_d_weights) {
      d_segments = at::zeros({ctx->saved_data["segments"].toInt()}, options);
    }
    AT_DISPATCH_FLOATING_TYPES(options.dtype().toScalarType(), "ssb_torch::sample_backward", [&] {
      const ssb::Weights<scalar_t> w = weights_of<scalar_t>(workspace, g);
      const auto p = want_d_weights ? feature_map<const scalar_t>({primal, layout})
                                    : ssb::FeatureMap<const scalar_t>{};
      const auto u = feature_map<const scalar_t>(upstream);
      const auto d =
          want_d_primal ? feature_map<scalar_t>({d_primal, layout}) : ssb::FeatureMap<scalar_t>{};
      const auto dw =
          want_d_weights ? weights_grad_of(w, d_segments) : ssb::WeightsGrad<scalar_t>{};
      with_backend(options.device(), g[threads], [&](auto exec) {
        if (inverse) {
          ssb::sample_inverse_backward(exec, w, p, u, d, dw);
        } else {
          ssb::sample_backward(exec, w, p, u, d, dw);
        }
      });
    });
    return {d_primal, d_segments, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

inline at::Tensor apply_sampler(const char* fn, const SamplerWeights& w, const at::Tensor& primal,
                                bool inverse) {
  const char* name = inverse ? "y" : "x";
  check_tensor(fn, name, primal);
  TORCH_CHECK(w.segments.defined() && w.workspace.defined() && w.geometry.size() == 6, fn,
              ": the weights are empty; make them with ssb_torch::compute_weights");
  const auto& g = w.geometry;
  TORCH_CHECK(primal.dim() == 4, fn, ": ", name, " must be a 4-D N x C x H x W tensor, got sizes ",
              primal.sizes());
  TORCH_CHECK(primal.scalar_type() == w.segments.scalar_type(), fn, ": ", name, " has dtype ",
              primal.scalar_type(), " but the weights were computed in ", w.segments.scalar_type());
  TORCH_CHECK(primal.device() == w.segments.device(), fn, ": ", name, " is on ", primal.device(),
              " but the weights are on ", w.segments.device());
  const int64_t rows = inverse ? g[out_h] : g[height], cols = inverse ? g[out_w] : g[width];
  TORCH_CHECK(primal.size(0) == g[batch] && primal.size(2) == rows && primal.size(3) == cols, fn,
              ": ", name, " has sizes ", primal.sizes(), " but the weights expect N = ", g[batch],
              " and ", rows, " x ", cols, " maps (",
              inverse ? "the sampled size Hr x Wr" : "the saliency map's size H x W", ")");
  TORCH_CHECK(primal.size(1) > 0, fn, ": ", name, " has no channels");
  return SamplerFn::apply(primal, w.segments, w.workspace, g, inverse);
}

}  // namespace detail

// Eqs. 1-7: the sampling weights of `saliency` (N x H x W or N x 1 x H x W, finite and >= 0,
// e.g. a sigmoid output; a map that sums to 0 gives uniform weights) for out_h x out_w samples.
// threads: OpenMP threads of the CPU kernels, 0 for at::get_num_threads().
inline SamplerWeights compute_weights(const at::Tensor& saliency, int64_t out_h, int64_t out_w,
                                      int threads = 0) {
  const char* fn = "ssb_torch::compute_weights";
  detail::check_tensor(fn, "saliency", saliency);
  const bool with_channel = saliency.dim() == 4 && saliency.size(1) == 1;
  TORCH_CHECK(saliency.dim() == 3 || with_channel, fn,
              ": saliency must be N x H x W or N x 1 x H x W, got sizes ", saliency.sizes());
  TORCH_CHECK(out_h > 0 && out_w > 0 && out_h <= INT_MAX && out_w <= INT_MAX, fn,
              ": the sampled size must be positive, got ", out_h, " x ", out_w);
  TORCH_CHECK(threads >= 0, fn, ": threads must be >= 0 (0: at::get_num_threads()), got ", threads);
  // Through autograd's own view and copy ops, so d_saliency comes back in the caller's shape.
  const at::Tensor s = (with_channel ? saliency.select(1, 0) : saliency).contiguous();
  std::vector<int64_t> geometry{
      s.size(0), s.size(1), s.size(2), out_h, out_w, threads > 0 ? threads : at::get_num_threads()};
  const auto outputs = detail::WeightsFn::apply(s, geometry);
  return {outputs[0], outputs[1], std::move(geometry)};
}

// Eq. 8: x (N x C x H x W) -> xr (N x C x Hr x Wr), in x's memory format.
inline at::Tensor sample(const SamplerWeights& weights, const at::Tensor& x) {
  return detail::apply_sampler("ssb_torch::sample", weights, x, false);
}

// Eq. 9 without shortcut and activation: y (N x C x Hr x Wr) -> z (N x C x H x W), in y's memory
// format.
inline at::Tensor sample_inverse(const SamplerWeights& weights, const at::Tensor& y) {
  return detail::apply_sampler("ssb_torch::sample_inverse", weights, y, true);
}

}  // namespace ssb_torch
