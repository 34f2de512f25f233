// ssbnet: the six verbs on a GPU stream, written once for CUDA (ssb/cuda.cuh, tag ssb::cuda) and
// HIP (ssb/hip.hpp, tag ssb::hip). Include it through one of those: they define SSB_GPU_TAG.
//
// Everything runs on the device, stream-ordered, with no host round trip and no synchronisation
// inside a call: the weights (eqs. 1-7) are computed by kernels, the saliency values are checked
// by them (see "Errors" below), and the one temporary (the pair dots of the weight gradients) is
// allocated and freed stream-ordered (cudaMallocAsync / hipMallocAsync).
//
// Kernels (one thread per element, no atomics anywhere, so results are bitwise reproducible run to
// run; every sum has a fixed order):
//   masses    one block per image: row sums r[h] in the 8-lane order of compute_masses, column
//             sums c[w] and the total in row order: the host's bits. Checks the values.
//   walk      one thread per (image, axis): detail::segment_walk, the host's body and bits.
//   gather    one thread per destination element, detail::gather_element (the host's order).
//             Threads of a block run along the destination's fastest axis: channels for NHWC
//             (coalesced loads of 32 channels per warp), width for NCHW.
//   dots      one group of 32 threads per pair (y segment k, x segment l): D(k, l) of
//             backward.hpp, channels split across the lanes, then a fixed shared-memory tree.
//   grads     one thread per segment: detail::segment_grad.
//   saliency  one thread per (image, axis) for detail::marginal_grad, then one per pixel.
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
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <ssb/ssb.hpp>  // the core: views, weights, shared bodies, checks, the host verbs

#include "gpu_runtime.hpp"

#ifndef SSB_GPU_TAG
#error "include <ssb/cuda.cuh> or <ssb/hip.hpp>, not ssb/detail/gpu_verbs.hpp"
#endif

namespace ssb {

// A failure of the GPU runtime (a launch, an allocation): not a bad argument.
class gpu_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace gpu_detail {

using detail::Direction;

inline void check_runtime(gpu::error_t e, const char* verb, const char* what) {
  if (e != gpu::success) {
    throw gpu_error(std::string(verb) + ": " + what + " failed: " + gpu::error_string(e));
  }
}

// Every kernel launch is followed by this: a bad configuration fails at once, not at the next
// synchronisation.
inline void check_launch(const char* verb, const char* kernel) {
  check_runtime(gpu::last_error(), verb, kernel);
}

template <class P>
void check_device(const char* verb, const char* name, const P* p) {
#if !defined(SSB_GPU_NO_POINTER_CHECKS)
  if (p != nullptr && !gpu::device_accessible(static_cast<const void*>(p))) {
    detail::fail(std::string(verb) + ": " + name + " is not device-accessible memory (" +
                 gpu::platform + " kernels read and write it)");
  }
#else
  (void)verb, (void)name, (void)p;
#endif
}

// Storage types of maps: the weights' scalar, or half/bfloat16 over float weights.
template <class S>
constexpr bool is_reduced =
    std::is_same<S, gpu::half>::value || std::is_same<S, gpu::bfloat16>::value;
template <class S, class T>
constexpr bool storage_ok = std::is_same<std::remove_const_t<S>, T>::value ||
                            (std::is_same<T, float>::value && is_reduced<std::remove_const_t<S>>);
template <class S, class T>
constexpr void require_storage() {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                "ssbnet weights are float or double");
  static_assert(storage_ok<S, T>,
                "GPU maps hold the weights' scalar, or half / bfloat16 with float weights");
}

constexpr int block_threads = 256;

inline unsigned grid_for(std::int64_t items, std::int64_t per_block) {
  const std::int64_t blocks = (items + per_block - 1) / per_block;
  return unsigned(std::max<std::int64_t>(1, std::min<std::int64_t>(blocks, std::int64_t(1) << 20)));
}

// ---- compute_weights -------------------------------------------------------------------------

// Row sums (8 lanes, halving tree), column sums and total of every map, exactly as
// detail::compute_masses orders them, and the value check of detail::check_saliency_image.
template <class S, class T>
__global__ void masses_kernel(SaliencyMap<const S> s, Weights<T> w) {
  __shared__ double least_of[block_threads];
  __shared__ double total_of;
  const int H = s.height, W = s.width;
  for (int n = blockIdx.x; n < s.batch; n += gridDim.x) {
    const S* map = s.data + std::int64_t(n) * H * W;
    double* row_mass = w.y.mass + std::int64_t(n) * H;
    double* col_mass = w.x.mass + std::int64_t(n) * W;
    double lanes_least[detail::mass_lanes] = {};
    for (int h = threadIdx.x; h < H; h += blockDim.x) {
      row_mass[h] = detail::row_mass<false>(map + std::int64_t(h) * W, W, nullptr, lanes_least);
    }
    for (int x = threadIdx.x; x < W; x += blockDim.x) {
      double col = 0.0;
      for (int h = 0; h < H; ++h) col += double(map[std::int64_t(h) * W + x]);
      col_mass[x] = col;
    }
    double least = 0.0;
    for (int u = 0; u < detail::mass_lanes; ++u)
      least = lanes_least[u] < least ? lanes_least[u] : least;
    least_of[threadIdx.x] = least;
    __syncthreads();
    if (threadIdx.x == 0) {
      double total = 0.0, smallest = 0.0;
      for (int h = 0; h < H; ++h) total += row_mass[h];
      for (unsigned t = 0; t < blockDim.x; ++t)
        smallest = least_of[t] < smallest ? least_of[t] : smallest;
      // detail::check_saliency_image's tests, with the status encoding of the file comment.
      std::int64_t status = -1;
      if (smallest < 0.0 || !(total <= detail::largest_double)) {
        status = 1 + detail::first_bad_value(map, std::int64_t(H) * W);  // 0 if none is found
        if (status == 0) status = -1;
      }
      if (status < 0 && detail::sums_overflow(col_mass, W, total)) {
        status = 1 + std::int64_t(H) * W;
      }
      w.status[n] = status;
      w.total[n] = total;
      total_of = total;
    }
    __syncthreads();
    if (!(total_of > 0.0)) {  // the uniform fallback of compute_masses
      for (int h = threadIdx.x; h < H; h += blockDim.x) row_mass[h] = 1.0;
      for (int x = threadIdx.x; x < W; x += blockDim.x) col_mass[x] = 1.0;
    }
    __syncthreads();
  }
}

// The segment walk of every (image, axis), only when every image of the batch passed the check.
template <class T>
__global__ void walk_kernel(Weights<T> w) {
  const std::int64_t count = 2 * std::int64_t(w.batch);
  for (std::int64_t t = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; t < count;
       t += std::int64_t(gridDim.x) * blockDim.x) {
    for (int m = 0; m < w.batch; ++m) {
      if (w.status[m] != -1) return;
    }
    const int n = int(t / 2);
    const AxisSegments<T>& a = t % 2 == 0 ? w.y : w.x;
    const std::int64_t k0 = std::int64_t(n) * a.capacity();
    detail::segment_walk(a.mass + std::int64_t(n) * a.in_size, a.mass_total(w.total, n), a.in_size,
                         a.out_size, a.weight + k0, a.out_index + k0, a.in_index + k0, a.flags + k0,
                         a.out_begin + std::int64_t(n) * (a.out_size + 1),
                         a.in_begin + std::int64_t(n) * (a.in_size + 1));
  }
}

// ---- gathers ---------------------------------------------------------------------------------

// dst = scale * the gather of src in direction D (kernels.hpp), one thread per element. A "line"
// is a run of elements along dst's fastest axis: the channels of one pixel (NHWC) or one row of a
// plane (NCHW). Lines of 32 elements or more: threadIdx.x walks a line, threadIdx.y picks the
// line. Shorter lines (NCHW maps 4 wide, a few channels): one flat index over all elements, so
// that no thread of a warp idles.
template <Direction D, class S, class T>
__device__ inline void gather_one(const Weights<T>& w, const FeatureMap<const S>& src,
                                  const FeatureMap<S>& dst, T scale, std::int64_t line, int i) {
  const bool channels_last = dst.layout == Layout::nhwc;
  const int dh = dst.height, dw = dst.width, channels = dst.channels;
  int n, a, b, c;
  if (channels_last) {
    c = i;
    b = int(line % dw);
    const std::int64_t rest = line / dw;
    a = int(rest % dh);
    n = int(rest / dh);
  } else {
    b = i;
    a = int(line % dh);
    const std::int64_t rest = line / dh;
    c = int(rest % channels);
    n = int(rest / channels);
  }
  const AxisImage<T> ay = w.y.image(n), ax = w.x.image(n);
  const int ky0 = detail::range_begin<D>(ay, a), ky1 = detail::range_begin<D>(ay, a + 1);
  const int kx0 = detail::range_begin<D>(ax, b), kx1 = detail::range_begin<D>(ax, b + 1);
  const S* channel = src.data + c * src.channel_stride();
  const auto load = [&](int sy, int sx) {
    return T(gpu::widen(channel[src.pixel_offset(n, sy, sx)]));
  };
  const T acc = detail::gather_element<D, T>(ay, ax, ky0, ky1, kx0, kx1, load);
  gpu::narrow(dst.data + dst.pixel_offset(n, a, b) + c * dst.channel_stride(), scale * acc);
}

template <Direction D, class S, class T>
__global__ void gather_kernel(Weights<T> w, FeatureMap<const S> src, FeatureMap<S> dst, T scale,
                              std::int64_t lines, int length, bool flat) {
  if (flat) {
    const std::int64_t count = lines * length;
    for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
         e += std::int64_t(gridDim.x) * blockDim.x) {
      gather_one<D>(w, src, dst, scale, e / length, int(e % length));
    }
    return;
  }
  for (std::int64_t line = blockIdx.x * std::int64_t(blockDim.y) + threadIdx.y; line < lines;
       line += std::int64_t(gridDim.x) * blockDim.y) {
    for (int i = threadIdx.x; i < length; i += blockDim.x)
      gather_one<D>(w, src, dst, scale, line, i);
  }
}

template <class S, class T>
void launch_gather(gpu::stream_t stream, const char* verb, const Weights<T>& w,
                   const FeatureMap<const S>& src, const FeatureMap<S>& dst, Direction direction,
                   T scale) {
  const bool channels_last = dst.layout == Layout::nhwc;
  const int length = channels_last ? dst.channels : dst.width;
  const std::int64_t lines = channels_last ? std::int64_t(dst.batch) * dst.height * dst.width
                                           : std::int64_t(dst.batch) * dst.channels * dst.height;
  const bool flat = length < 32;
  const int bx = flat ? block_threads : std::min(block_threads, (length + 31) / 32 * 32);
  const dim3 block(unsigned(bx), unsigned(block_threads / bx));
  const unsigned grid = flat ? grid_for(lines * length, block_threads) : grid_for(lines, block.y);
  if (direction == Direction::forward) {
    gather_kernel<Direction::forward>
        <<<grid, block, 0, stream>>>(w, src, dst, scale, lines, length, flat);
  } else {
    gather_kernel<Direction::inverse>
        <<<grid, block, 0, stream>>>(w, src, dst, scale, lines, length, flat);
  }
  check_launch(verb, "the gather kernel");
}

// ---- weight gradients ------------------------------------------------------------------------

constexpr int dot_lanes = 32;  // threads per pair
constexpr int dot_groups = block_threads / dot_lanes;

// dots[(n * cap_y + k) * cap_x + l] = D(k, l) = sum_c src[source pixel, c] * other[dest pixel, c]
// for every pair of segments of image n (kernels.hpp, "Pair dots"). Lane u sums the channels
// c = u (mod 32) in order, then the 32 partial sums are added as a halving tree.
template <Direction D, class S, class T>
__global__ void pair_dots_kernel(Weights<T> w, FeatureMap<const S> src, FeatureMap<const S> other,
                                 T* dots) {
  __shared__ T partial[dot_groups][dot_lanes];
  const int lane = threadIdx.x, group = threadIdx.y;
  const int cap_y = w.y.capacity(), cap_x = w.x.capacity();
  const std::int64_t per_image = std::int64_t(cap_y) * cap_x;
  const std::int64_t pairs = std::int64_t(w.batch) * per_image;
  const std::int64_t src_cs = src.channel_stride(), other_cs = other.channel_stride();
  // Every thread of the block runs the same number of rounds (the barriers below).
  for (std::int64_t base = std::int64_t(blockIdx.x) * dot_groups; base < pairs;
       base += std::int64_t(gridDim.x) * dot_groups) {
    const std::int64_t t = base + group;
    bool active = false;
    T sum = T(0);
    if (t < pairs) {
      const int n = int(t / per_image);
      const int k = int(t % per_image / cap_x), l = int(t % cap_x);
      const AxisImage<T> ay = w.y.image(n), ax = w.x.image(n);
      if (k < ay.count() && l < ax.count()) {
        active = true;
        const S* in = src.data + src.pixel_offset(n, detail::source_index<D>(ay, k),
                                                  detail::source_index<D>(ax, l));
        const S* at = other.data + other.pixel_offset(n, detail::dest_index<D>(ay, k),
                                                      detail::dest_index<D>(ax, l));
        for (int c = lane; c < src.channels; c += dot_lanes) {
          sum += T(gpu::widen(in[c * src_cs])) * T(gpu::widen(at[c * other_cs]));
        }
      }
    }
    partial[group][lane] = sum;
    __syncthreads();
    for (int width = dot_lanes / 2; width > 0; width /= 2) {
      if (lane < width) partial[group][lane] += partial[group][lane + width];
      __syncthreads();
    }
    if (active && lane == 0) dots[t] = partial[group][0];
    __syncthreads();
  }
}

// d_weights += scale * sum over the other axis' segments of w * D, one thread per segment.
template <class T>
__global__ void segment_grads_kernel(Weights<T> w, const T* dots, WeightsGrad<T> d_weights,
                                     T scale) {
  const int cap_y = w.y.capacity(), cap_x = w.x.capacity();
  const std::int64_t per_image = std::int64_t(cap_y) + cap_x;
  const std::int64_t count = std::int64_t(w.batch) * per_image;
  for (std::int64_t s = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; s < count;
       s += std::int64_t(gridDim.x) * blockDim.x) {
    detail::add_slot_grad(w, dots, d_weights, int(s / per_image), int(s % per_image), scale);
  }
}

template <class S, class T>
void launch_weight_grads(gpu::stream_t stream, const char* verb, const Weights<T>& w,
                         const FeatureMap<const S>& upstream, const FeatureMap<const S>& other,
                         Direction direction, const WeightsGrad<T>& d_weights, T scale) {
  const std::int64_t pairs = std::int64_t(w.batch) * w.y.capacity() * w.x.capacity();
  void* memory = nullptr;
  const std::size_t bytes = std::size_t(pairs) * sizeof(T);
  // Stream-ordered where the device has memory pools; else a plain allocation, whose free
  // synchronises the device (the one place a call may wait).
  const bool pooled = gpu::malloc_async(&memory, bytes, stream) == gpu::success;
  if (!pooled) {
    (void)gpu::last_error();
    check_runtime(gpu::malloc_device(&memory, bytes), verb, "allocating the pair dots");
  }
  T* dots = static_cast<T*>(memory);
  const dim3 block(dot_lanes, dot_groups);
  if (direction == Direction::forward) {
    pair_dots_kernel<Direction::forward>
        <<<grid_for(pairs, dot_groups), block, 0, stream>>>(w, upstream, other, dots);
  } else {
    pair_dots_kernel<Direction::inverse>
        <<<grid_for(pairs, dot_groups), block, 0, stream>>>(w, upstream, other, dots);
  }
  gpu::error_t launched = gpu::last_error();
  if (launched == gpu::success) {
    const std::int64_t segments = std::int64_t(w.batch) * (w.y.capacity() + w.x.capacity());
    segment_grads_kernel<<<grid_for(segments, block_threads), block_threads, 0, stream>>>(
        w, dots, d_weights, scale);
    launched = gpu::last_error();
  }
  check_runtime(pooled ? gpu::free_async(memory, stream) : gpu::free_device(memory), verb,
                "freeing the pair dots");
  check_runtime(launched, verb, "the weight-gradient kernels");
}

// ---- compute_weights_backward ----------------------------------------------------------------

template <class T>
__global__ void marginal_grad_kernel(Weights<T> w, WeightsGrad<T> d_weights) {
  const int H = w.y.in_size, W = w.x.in_size;
  const std::int64_t count = 2 * std::int64_t(w.batch);
  for (std::int64_t t = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; t < count;
       t += std::int64_t(gridDim.x) * blockDim.x) {
    const int n = int(t / 2);
    const double total = w.total[n];
    if (!(total > 0.0)) continue;
    double* dr = w.gradient_scratch + std::int64_t(n) * (H + 1 + W + 1);
    if (t % 2 == 0) {
      detail::marginal_grad(w.y.image(n), d_weights.y + std::int64_t(n) * d_weights.capacity_y,
                            w.y.mass + std::int64_t(n) * H, total, dr);
    } else {
      detail::marginal_grad(w.x.image(n), d_weights.x + std::int64_t(n) * d_weights.capacity_x,
                            w.x.mass + std::int64_t(n) * W, total, dr + H + 1);
    }
  }
}

// dS[n, h, w] = dr[h] + dc[w], or 0 for a map that summed to 0 (detail::saliency_grad_image).
template <class T, class DS>
__global__ void saliency_grad_kernel(Weights<T> w, DS* d_saliency) {
  const int H = w.y.in_size, W = w.x.in_size;
  const std::int64_t count = std::int64_t(w.batch) * H * W;
  for (std::int64_t e = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; e < count;
       e += std::int64_t(gridDim.x) * blockDim.x) {
    const int x = int(e % W), h = int(e / W % H), n = int(e / (std::int64_t(H) * W));
    const double* dr = w.gradient_scratch + std::int64_t(n) * (H + 1 + W + 1);
    gpu::narrow(d_saliency + e, w.total[n] > 0.0 ? dr[h] + dr[H + 1 + x] : 0.0);
  }
}

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
  masses_kernel<<<grid_for(s.batch, 1), block_threads, 0, stream>>>(s, weights);
  check_launch(verb, "the masses kernel");
  walk_kernel<<<grid_for(2 * std::int64_t(s.batch), 64), 64, 0, stream>>>(weights);
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
  marginal_grad_kernel<<<grid_for(2 * std::int64_t(weights.batch), 64), 64, 0, stream>>>(weights,
                                                                                         d_weights);
  check_launch(verb, "the marginal-gradient kernel");
  saliency_grad_kernel<<<grid_for(d_saliency.size(), block_threads), block_threads, 0, stream>>>(
      weights, d_saliency.data);
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
