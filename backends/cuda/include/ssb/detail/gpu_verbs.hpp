// ssbnet: the six verbs on a GPU stream, written once for CUDA (ssb/cuda.cuh, tag ssb::cuda) and
// HIP (ssb/hip.hpp, tag ssb::hip). Include it through one of those: they define SSB_GPU_TAG.
//
// Everything runs on the device, stream-ordered, with no host round trip and no synchronisation
// inside a call: the weights (eqs. 1-7) are computed by kernels, the saliency values are checked
// by them (see "Errors" below), and the one temporary (the pair dots of the weight gradients) is
// allocated and freed stream-ordered (cudaMallocAsync / hipMallocAsync).
//
// Kernels (no atomics anywhere, so results are bitwise reproducible run to run; every sum has a
// fixed order, and the gathers and dots round through gpu::mul_rn / gpu::fma_rn, which no
// compiler contracts differently in different kernels):
//   masses    one block per image: row sums r[h] in the 8-lane order of compute_masses, column
//             sums c[w] and the total in row order: the host's bits. The map goes through shared
//             memory in tiles of whole rows, copied in 16-byte packs. Checks the values.
//   walk      one block per (image, axis): the breakpoints in shared memory (the prefix sums by
//             one thread, in the host's order), then the merge row by row, each thread a run of
//             input rows (detail::merge_row): the host's segments, bit for bit.
//   gather    NHWC maps whose channels fill 16-byte packs (the usual case): one block per
//             destination row and chunk of channels; y sums of every source column into shared
//             memory, then x sums (gather_rows_kernel). NCHW maps: one block per task of whole
//             planes (or of rows of one large plane), y sums into shared memory, then x sums
//             (gather_planes_kernel). Otherwise one thread per destination element
//             (gather_kernel). All in detail::gather_element's order, with the same bits.
//   dots      D(k, l) of backward.hpp. One block per input row, one group of 32 lanes per pair
//             (k, l), channels split across the lanes, then a fixed shuffle tree
//             (pair_dots_kernel); NCHW maps: one block per run of 32 neighbouring pairs, one lane
//             per pair, channels split across the warps (plane_pair_dots_kernel).
//   grads     one group of 32 lanes per segment: detail::segment_grad's terms, lanes striding
//             over them, then a fixed shuffle tree (segment_grads_kernel).
//   saliency  one block per image: detail::marginal_grad of both axes, on copies in shared memory,
//             its dCS[j] by the whole block (detail::marginal_dcs) and its two suffix chains by
//             one thread each; then one thread per pixel.
// Where a map is too large for the shared-memory copies (staging_bytes), the same kernels work on
// global memory (walk, saliency, dots) or the per-element gather is used.
// Storage: float and double maps use weights of the same type. gpu::half and gpu::bfloat16 maps
// (FeatureMap<half>, SaliencyMap<half>, ...) use Weights<float>: values are widened to float,
// summed in float, rounded to nearest on store.
//
// Errors. Shapes, pointers and overlaps are checked on the host before anything is launched
// (ssb::error, nothing written, as on every backend), and every pointer must be device-accessible
// (device, managed or registered host memory). Saliency values can only be checked on the device:
// compute_weights' kernels store, per image, 1 + the position of the first negative / NaN /
// infinite value (1 + H*W when a sum overflows double) in weights.status, -1 for a good map, and
// then write no segments for the whole batch (the masses and totals are written).
// check_weights_status(exec, weights) synchronises the stream and throws the ssb::error the host
// backends throw. Launch failures throw ssb::gpu_error.
//
// Files: gpu_common.hpp (checks, launch sizes, 16-byte packs), gpu_weights_kernels.hpp (masses,
// walk, saliency gradients), gpu_gather_kernels.hpp (gathers), gpu_grad_kernels.hpp (pair dots,
// segment gradients); this file holds the verbs' host side and the public verbs.
#pragma once

#ifndef SSB_GPU_TAG
#error "include <ssb/cuda.cuh> or <ssb/hip.hpp>, not ssb/detail/gpu_verbs.hpp"
#endif

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "gpu_common.hpp"
#include "gpu_gather_kernels.hpp"
#include "gpu_grad_kernels.hpp"
#include "gpu_weights_kernels.hpp"

namespace ssb {
namespace gpu_detail {

// ---- host side -------------------------------------------------------------------------------

template <class T>
void check_device_weights(const char* verb, const Weights<T>& w) {
  detail::check_weights(verb, w);
  check_device(verb, "the weights' workspace", w.workspace);
}

template <class T>
void check_device_grad(const char* verb, const WeightsGrad<T>& g) {
  check_device(verb, "d_weights.y", g.y);
  check_device(verb, "d_weights.x", g.x);
}

template <class S, class T>
void sampler_backward(gpu::stream_t stream, const char* verb, const Weights<T>& w,
                      bool primal_on_input, detail::Named<const S> primal,
                      detail::Named<const S> upstream, detail::Named<S> d_primal,
                      const WeightsGrad<T>& d_weights) {
  // The host verbs' checks (detail::check_sampler_backward), then device accessibility.
  const detail::BackwardWants wants = detail::check_sampler_backward(
      verb, w, primal_on_input, primal, upstream, d_primal, d_weights);
  const bool want_d = wants.d_data, want_dw = wants.d_weights;
  const FeatureMap<const S>& p = primal.map;
  const FeatureMap<const S>& u = upstream.map;
  const FeatureMap<S>& d = d_primal.map;
  const int uh = primal_on_input ? w.y.out_size : w.y.in_size;
  const int uw = primal_on_input ? w.x.out_size : w.x.in_size;
  if (!want_d && !want_dw) return;
  check_device(verb, "the weights' workspace", w.workspace);
  check_device(verb, upstream.name, u.data);
  if (want_d) check_device(verb, d_primal.name, d.data);
  if (want_dw) {
    check_device(verb, primal.name, p.data);
    check_device_grad(verb, d_weights);
  }
  const T scale = T(double(uh) * uw);
  const Direction direction = primal_on_input ? Direction::inverse : Direction::forward;
  if (want_d) launch_gather(stream, verb, w, u, d, direction, scale);
  if (want_dw) launch_weight_grads(stream, verb, w, u, p, direction, d_weights, scale);
}

template <class S, class T>
void compute_weights(gpu::stream_t stream, SaliencyMap<S> saliency, int out_h, int out_w,
                     const Weights<T>& weights) {
  require_storage<S, T>();
  const char* verb = "ssb::compute_weights";
  detail::check_compute_weights(verb, saliency, out_h, out_w, weights);
  check_device(verb, "the weights' workspace", weights.workspace);
  check_device(verb, "saliency", saliency.data);
  const SaliencyMap<const S> s = saliency;
  // The row and column sums (rounded up to 16 bytes), then as many whole rows of the map as fit
  // in masses_tile_bytes (and 16 bytes for the tile's shift), leaving room for the kernel's static
  // shared memory.
  const std::size_t mass_bytes =
      sizeof(double) * ((std::size_t(s.height) + std::size_t(s.width) + 1) / 2 * 2);
  const std::size_t dynamic_limit = staging_bytes - static_shared_reserve;
  const bool masses_staged = mass_bytes + 16 <= dynamic_limit;
  const std::size_t row_bytes = sizeof(S) * std::size_t(s.width);
  const int tile_rows =
      masses_staged ? int(std::min<std::size_t>(
                          std::size_t(s.height),
                          std::min(masses_tile_bytes, dynamic_limit - mass_bytes - 16) / row_bytes))
                    : 0;
  const std::size_t masses_shared =
      masses_staged ? mass_bytes + row_bytes * std::size_t(tile_rows) + 16 : 0;
  masses_kernel<<<grid_for(s.batch, 1), block_threads, masses_shared, stream>>>(
      s, weights, masses_staged, tile_rows);
  check_launch(verb, "the masses kernel");
  const std::size_t walk_bytes =
      std::max(WalkStaging(s.height, out_h).bytes, WalkStaging(s.width, out_w).bytes);
  const bool walk_staged = walk_bytes <= staging_bytes;
  walk_kernel<<<grid_for(2 * std::int64_t(s.batch), 1), walk_threads, walk_staged ? walk_bytes : 0,
                stream>>>(weights, walk_staged);
  check_launch(verb, "the segment-walk kernel");
}

template <class S, class T>
void sample(gpu::stream_t stream, const char* verb, const Weights<T>& w, bool forward,
            detail::Named<const S> in, detail::Named<S> out) {
  require_storage<S, T>();
  detail::check_gather(verb, w, forward, in, out);
  const int oh = forward ? w.y.out_size : w.y.in_size, ow = forward ? w.x.out_size : w.x.in_size;
  check_device(verb, "the weights' workspace", w.workspace);
  check_device(verb, in.name, in.map.data);
  check_device(verb, out.name, out.map.data);
  launch_gather(stream, verb, w, in.map, out.map, forward ? Direction::forward : Direction::inverse,
                T(double(oh) * ow));
}

template <class S, class T, class DS>
void compute_weights_backward(gpu::stream_t stream, SaliencyMap<S> saliency,
                              const Weights<T>& weights, WeightsGrad<T> d_weights,
                              SaliencyMap<DS> d_saliency) {
  require_storage<S, T>();
  require_storage<DS, T>();
  static_assert(!std::is_const<DS>::value, "d_saliency is an output");
  const char* verb = "ssb::compute_weights_backward";
  detail::check_compute_weights_backward(verb, saliency, weights, d_weights, d_saliency);
  check_device(verb, "the weights' workspace", weights.workspace);
  check_device(verb, "d_saliency", d_saliency.data);
  check_device_grad(verb, d_weights);
  const std::size_t marginal_bytes =
      MarginalStaging<T>(weights.y.in_size, weights.y.out_size).bytes_aligned() +
      MarginalStaging<T>(weights.x.in_size, weights.x.out_size).bytes_aligned();
  const bool marginal_staged = marginal_bytes <= staging_bytes - static_shared_reserve;
  saliency_backward_kernel<<<grid_for(weights.batch, 1), block_threads,
                             marginal_staged ? marginal_bytes : 0, stream>>>(
      weights, d_weights, d_saliency.data, marginal_staged);
  check_launch(verb, "the saliency-gradient kernel");
}

}  // namespace gpu_detail

// ---- the public verbs on SSB_GPU_TAG ---------------------------------------------------------
// Same signatures and semantics as the host verbs (ssb/detail/verbs.hpp), with every pointer in
// device-accessible memory; the second overload of each sampler takes half / bfloat16 maps with
// float weights.

template <class S, class T>
void compute_weights(const SSB_GPU_TAG& exec, SaliencyMap<S> saliency, int out_h, int out_w,
                     const Weights<T>& weights) {
  gpu_detail::compute_weights(exec.stream, saliency, out_h, out_w, weights);
}

template <class T, class X>
void sample(const SSB_GPU_TAG& exec, const Weights<T>& weights, FeatureMap<X> x, FeatureMap<T> xr) {
  gpu_detail::require_storage<X, T>();
  gpu_detail::sample<T>(exec.stream, "ssb::sample", weights, true, {"x", x}, {"xr", xr});
}
template <class X, class S, class = std::enable_if_t<gpu_detail::is_reduced<S>>>
void sample(const SSB_GPU_TAG& exec, const Weights<float>& weights, FeatureMap<X> x,
            FeatureMap<S> xr) {
  static_assert(std::is_same<std::remove_const_t<X>, S>::value, "x and xr have one storage type");
  gpu_detail::sample<S>(exec.stream, "ssb::sample", weights, true, {"x", x}, {"xr", xr});
}

template <class T, class Y>
void sample_inverse(const SSB_GPU_TAG& exec, const Weights<T>& weights, FeatureMap<Y> y,
                    FeatureMap<T> z) {
  gpu_detail::require_storage<Y, T>();
  gpu_detail::sample<T>(exec.stream, "ssb::sample_inverse", weights, false, {"y", y}, {"z", z});
}
template <class Y, class S, class = std::enable_if_t<gpu_detail::is_reduced<S>>>
void sample_inverse(const SSB_GPU_TAG& exec, const Weights<float>& weights, FeatureMap<Y> y,
                    FeatureMap<S> z) {
  static_assert(std::is_same<std::remove_const_t<Y>, S>::value, "y and z have one storage type");
  gpu_detail::sample<S>(exec.stream, "ssb::sample_inverse", weights, false, {"y", y}, {"z", z});
}

template <class T, class X, class DXr>
void sample_backward(const SSB_GPU_TAG& exec, const Weights<T>& weights, FeatureMap<X> x,
                     FeatureMap<DXr> d_xr, FeatureMap<T> d_x, WeightsGrad<T> d_weights) {
  gpu_detail::require_storage<X, T>();
  gpu_detail::require_storage<DXr, T>();
  gpu_detail::sampler_backward<T>(exec.stream, "ssb::sample_backward", weights, true, {"x", x},
                                  {"d_xr", d_xr}, {"d_x", d_x}, d_weights);
}
template <class X, class DXr, class S, class = std::enable_if_t<gpu_detail::is_reduced<S>>>
void sample_backward(const SSB_GPU_TAG& exec, const Weights<float>& weights, FeatureMap<X> x,
                     FeatureMap<DXr> d_xr, FeatureMap<S> d_x, WeightsGrad<float> d_weights) {
  static_assert(std::is_same<std::remove_const_t<X>, S>::value &&
                    std::is_same<std::remove_const_t<DXr>, S>::value,
                "x, d_xr and d_x have one storage type");
  gpu_detail::sampler_backward<S>(exec.stream, "ssb::sample_backward", weights, true, {"x", x},
                                  {"d_xr", d_xr}, {"d_x", d_x}, d_weights);
}

template <class T, class Y, class DZ>
void sample_inverse_backward(const SSB_GPU_TAG& exec, const Weights<T>& weights, FeatureMap<Y> y,
                             FeatureMap<DZ> d_z, FeatureMap<T> d_y, WeightsGrad<T> d_weights) {
  gpu_detail::require_storage<Y, T>();
  gpu_detail::require_storage<DZ, T>();
  gpu_detail::sampler_backward<T>(exec.stream, "ssb::sample_inverse_backward", weights, false,
                                  {"y", y}, {"d_z", d_z}, {"d_y", d_y}, d_weights);
}
template <class Y, class DZ, class S, class = std::enable_if_t<gpu_detail::is_reduced<S>>>
void sample_inverse_backward(const SSB_GPU_TAG& exec, const Weights<float>& weights,
                             FeatureMap<Y> y, FeatureMap<DZ> d_z, FeatureMap<S> d_y,
                             WeightsGrad<float> d_weights) {
  static_assert(std::is_same<std::remove_const_t<Y>, S>::value &&
                    std::is_same<std::remove_const_t<DZ>, S>::value,
                "y, d_z and d_y have one storage type");
  gpu_detail::sampler_backward<S>(exec.stream, "ssb::sample_inverse_backward", weights, false,
                                  {"y", y}, {"d_z", d_z}, {"d_y", d_y}, d_weights);
}

template <class S, class T, class DS>
void compute_weights_backward(const SSB_GPU_TAG& exec, SaliencyMap<S> saliency,
                              const Weights<T>& weights, WeightsGrad<T> d_weights,
                              SaliencyMap<DS> d_saliency) {
  gpu_detail::compute_weights_backward(exec.stream, saliency, weights, d_weights, d_saliency);
}

// Waits for exec's stream and throws the ssb::error of the host backends if the last
// compute_weights on `weights` found a negative, NaN or infinite saliency value or an overflowing
// sum (its segments were then not written). Synchronises: call it where a host round trip is
// acceptable (a debug build, once per epoch, after a NaN loss).
template <class T>
void check_weights_status(const SSB_GPU_TAG& exec, const Weights<T>& weights) {
  const char* verb = "ssb::compute_weights";
  gpu_detail::check_device_weights("ssb::check_weights_status", weights);
  std::vector<std::int64_t> status(std::size_t(weights.batch));
  gpu_detail::check_runtime(gpu::copy_to_host(status.data(), weights.status,
                                              status.size() * sizeof(std::int64_t), exec.stream),
                            "ssb::check_weights_status", "reading the status");
  const std::int64_t area = std::int64_t(weights.in_height()) * weights.in_width();
  for (int n = 0; n < weights.batch; ++n) {
    const std::int64_t s = status[std::size_t(n)] - 1;  // the position, or -2 for a good map
    if (s == -2) continue;
    if (s == area) {
      detail::fail(std::string(verb) + ": saliency of image n=" + std::to_string(n) +
                   " sums to infinity in double; scale the map down");
    }
    if (s >= 0 && s < area) {
      detail::fail(std::string(verb) + ": saliency[n=" + std::to_string(n) +
                   ", h=" + std::to_string(s / weights.in_width()) +
                   ", w=" + std::to_string(s % weights.in_width()) +
                   "] is negative, NaN or infinite; saliency values must be finite and >= 0");
    }
    detail::fail(std::string(verb) + ": the weights of image n=" + std::to_string(n) +
                 " were never computed (status " + std::to_string(s + 1) + ")");
  }
}

// An owning device workspace for Weights<T>, like HostWeights: allocated with cudaMalloc /
// hipMalloc and zeroed (synchronously) when constructed, freed when destroyed. Move-only.
template <class T>
class DeviceWeights : public Weights<T> {
 public:
  DeviceWeights(int batch, int in_h, int in_w, int out_h, int out_w) {
    const std::size_t bytes = workspace_size<T>(batch, in_h, in_w, out_h, out_w);
    gpu_detail::check_runtime(gpu::malloc_device(&memory_, bytes), "ssb::DeviceWeights",
                              "allocating the workspace");
    // Zeroed like HostWeights: empty segment ranges and status 0 ("never computed") until
    // compute_weights fills it, so an early sample reads zeros, not garbage offsets.
    const gpu::error_t zeroed = gpu::memset_device(memory_, 0, bytes);
    if (zeroed != gpu::success) {
      (void)gpu::free_device(memory_);
      gpu_detail::check_runtime(zeroed, "ssb::DeviceWeights", "zeroing the workspace");
    }
    Weights<T>::operator=(weights_view<T>(memory_, bytes, batch, in_h, in_w, out_h, out_w));
  }
  DeviceWeights(const DeviceWeights&) = delete;
  DeviceWeights& operator=(const DeviceWeights&) = delete;
  DeviceWeights(DeviceWeights&& other) noexcept : Weights<T>(other), memory_(other.memory_) {
    other.memory_ = nullptr;
  }
  DeviceWeights& operator=(DeviceWeights&& other) noexcept {
    std::swap(static_cast<Weights<T>&>(*this), static_cast<Weights<T>&>(other));
    std::swap(memory_, other.memory_);
    return *this;
  }
  ~DeviceWeights() {
    if (memory_ != nullptr) (void)gpu::free_device(memory_);
  }

 private:
  void* memory_ = nullptr;
};

}  // namespace ssb
