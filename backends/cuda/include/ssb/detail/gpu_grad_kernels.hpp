// ssbnet: the kernels of the weight gradients (pair dots, segment gradients), and
// launch_weight_grads.
// Part of the GPU backends' kernels (ssb/detail/gpu_verbs.hpp, which includes it; see its file
// comment for the design). Include <ssb/cuda.cuh> or <ssb/hip.hpp>, not this header.
#pragma once

#include "gpu_common.hpp"

namespace ssb {
namespace gpu_detail {

// ---- weight gradients ------------------------------------------------------------------------

constexpr int dot_lanes = 32;  // threads per pair
constexpr int dot_groups = block_threads / dot_lanes;
// dots[(n * cap_y + k) * cap_x + l] = D(k, l) = sum_c src[source pixel, c] * other[dest pixel, c]
// for every pair of segments of image n (pair_dot_rows.hpp, "Pair dots"). One block per input row
// (n, h), which takes the y segments k whose input index is h (those whose pairs read input row
// h of the larger map, so that the second reads it from L1): the pixel offsets of the image's x
// segments are staged in shared memory (when `staged`; else looked up per pair), and each group
// of 32 lanes (one threadIdx.y) takes the pairs (k, l), l = threadIdx.y (mod blockDim.y), k in
// the row's segments. `packs`: both maps NHWC with channels a multiple of Pack<S>::size and
// 16-byte aligned (packs_fit): lane u sums the packs q = u (mod 32) in order, one partial sum per
// element of the pack, and adds those as a halving tree. Otherwise lane u sums the channels
// c = u (mod 32) in order. Then the 32 lane sums are added as a halving tree (shuffles). A fixed
// order either way: bitwise reproducible.
template <Direction D, class S, class T>
__global__ void __launch_bounds__(block_threads, 4)
    pair_dots_kernel(Weights<T> w, FeatureMap<const S> src, FeatureMap<const S> other, T* dots,
                     bool packs, bool staged) {
  extern __shared__ __align__(16) double staging[];
  constexpr int V = Pack<S>::size;
  const int lane = threadIdx.x;
  const int cap_y = w.y.capacity(), cap_x = w.x.capacity();
  std::int64_t* src_x = reinterpret_cast<std::int64_t*>(staging);  // cap_x offsets, then
  std::int64_t* other_x = src_x + cap_x;                           // cap_x more
  const std::int64_t src_cs = src.channel_stride(), other_cs = other.channel_stride();
  const int in_h = w.y.in_size;
  const std::int64_t rows = std::int64_t(w.batch) * in_h;
  const int thread = threadIdx.y * blockDim.x + threadIdx.x, threads = blockDim.x * blockDim.y;
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int n = int(row / in_h), h = int(row % in_h);
    const AxisImage<T> ay = w.y.image(n), ax = w.x.image(n);
    const int k0 = ay.in_begin[h], k1 = ay.in_begin[h + 1];
    if (k0 == k1) continue;  // the same for the whole block
    const int nx = ax.count();
    const auto src_at = [&](int l) {
      return src.pixel_offset(n, 0, detail::source_index<D>(ax, l)) - src.pixel_offset(n, 0, 0);
    };
    const auto other_at = [&](int l) {
      return other.pixel_offset(n, 0, detail::dest_index<D>(ax, l)) - other.pixel_offset(n, 0, 0);
    };
    if (staged) {
      for (int l = thread; l < nx; l += threads) {
        src_x[l] = src_at(l);
        other_x[l] = other_at(l);
      }
    }
    __syncthreads();
    // All 32 lanes of a group share (k, l), so the shuffles below run with every lane of it.
    for (int l = threadIdx.y; l < nx; l += blockDim.y) {
      for (int k = k0; k < k1; ++k) {
        const S* src_row = src.data + src.pixel_offset(n, detail::source_index<D>(ay, k), 0);
        const S* other_row = other.data + other.pixel_offset(n, detail::dest_index<D>(ay, k), 0);
        const S* in = src_row + (staged ? src_x[l] : src_at(l));
        const S* at = other_row + (staged ? other_x[l] : other_at(l));
        T sum = T(0);
        if (packs) {
          T part[V];
          for (int u = 0; u < V; ++u) part[u] = T(0);
          const Pack<S>* a = reinterpret_cast<const Pack<S>*>(in);
          const Pack<S>* b = reinterpret_cast<const Pack<S>*>(at);
          const int count = src.channels / V;
#pragma unroll 4
          for (int q = lane; q < count; q += 32) {
            const Pack<S> x = a[q], y = b[q];
            for (int u = 0; u < V; ++u) {
              part[u] = gpu::fma_rn(T(gpu::widen(x.v[u])), T(gpu::widen(y.v[u])), part[u]);
            }
          }
          for (int width = V / 2; width > 0; width /= 2) {
            for (int u = 0; u < width; ++u) part[u] += part[u + width];
          }
          sum = part[0];
        } else {
#pragma unroll 4
          for (int c = lane; c < src.channels; c += 32) {
            sum = gpu::fma_rn(T(gpu::widen(in[c * src_cs])), T(gpu::widen(at[c * other_cs])), sum);
          }
        }
        for (unsigned width = 16; width > 0; width /= 2) sum += gpu::shfl_down32(sum, width);
        if (lane == 0) dots[(std::int64_t(n) * cap_y + k) * cap_x + l] = sum;
      }
    }
    __syncthreads();
  }
}

constexpr int plane_dot_warps = block_threads / 32;
// The pair dots of NCHW maps (both NCHW), where a channel is a plane and the pixels of a row
// are contiguous: one block per image n and run of 32 pairs (k, l) of its pairs in k-major order
// (the ones of neighbouring segments, whose pixels are neighbours). Lane j of every warp takes
// pair j of the run, and warp g the channels c = g (mod plane_dot_warps) in ascending order, so a
// warp reads, per channel, 32 neighbouring pixels of one plane; then the warps' sums are added in
// order g = 0, 1, ... A fixed order: bitwise reproducible (and, like the host's, not NHWC's).
template <Direction D, class S, class T>
__global__ void __launch_bounds__(block_threads)
    plane_pair_dots_kernel(Weights<T> w, FeatureMap<const S> src, FeatureMap<const S> other,
                           T* dots, int runs) {
  __shared__ T part[plane_dot_warps][32];
  const int lane = threadIdx.x, g = threadIdx.y;
  const int cap_y = w.y.capacity(), cap_x = w.x.capacity(), channels = src.channels;
  const std::int64_t src_cs = src.channel_stride(), other_cs = other.channel_stride();
  const std::int64_t tasks = std::int64_t(w.batch) * runs;
  for (std::int64_t task = blockIdx.x; task < tasks; task += gridDim.x) {
    const int n = int(task / runs);
    const std::int64_t first = (task % runs) * 32;
    const AxisImage<T> ay = w.y.image(n), ax = w.x.image(n);
    const int nx = ax.count();
    const std::int64_t pairs = std::int64_t(ay.count()) * nx;  // may pass 2^31 on huge maps
    if (first >= pairs) continue;                              // the same for the whole block
    const std::int64_t j = first + lane;
    const bool live = j < pairs;
    const int k = live ? int(j / nx) : 0, l = live ? int(j % nx) : 0;
    T sum = T(0);
    if (live) {
      const S* in = src.data + src.pixel_offset(n, detail::source_index<D>(ay, k),
                                                detail::source_index<D>(ax, l));
      const S* at = other.data + other.pixel_offset(n, detail::dest_index<D>(ay, k),
                                                    detail::dest_index<D>(ax, l));
#pragma unroll 4
      for (int c = g; c < channels; c += plane_dot_warps) {
        sum = gpu::fma_rn(T(gpu::widen(in[c * src_cs])), T(gpu::widen(at[c * other_cs])), sum);
      }
    }
    part[g][lane] = sum;
    __syncthreads();
    if (g == 0 && live) {
      T total = part[0][lane];
      for (int u = 1; u < plane_dot_warps; ++u) total += part[u][lane];
      dots[(std::int64_t(n) * cap_y + k) * cap_x + l] = total;
    }
    __syncthreads();
  }
}

// d_weights += scale * sum over the other axis' segments of w * D: one group of 32 lanes per
// segment (slot), lane u summing the terms k = u, u + 32, ... in order (gpu::fma_rn), then a fixed
// shuffle tree, so the bits are the same every run. (One thread per segment, with
// detail::add_slot_grad, ran its few hundred terms as a chain of dependent loads: 71 us of a
// COCO sample_backward on an H200.) The slot is decoded as on the host (detail::grad_slot), and
// the terms are the host's (detail::segment_grad); their sum is in another order.
template <class T>
__global__ void segment_grads_kernel(Weights<T> w, const T* dots, WeightsGrad<T> d_weights,
                                     T scale) {
  const int cap_y = w.y.capacity(), cap_x = w.x.capacity();
  const std::int64_t per_image = std::int64_t(cap_y) + cap_x;
  const std::int64_t count = std::int64_t(w.batch) * per_image;
  const int lane = int(threadIdx.x) % 32;
  const std::int64_t groups = blockDim.x / 32;
  for (std::int64_t s = blockIdx.x * groups + threadIdx.x / 32; s < count;
       s += std::int64_t(gridDim.x) * groups) {
    const detail::GradSlot<T> g =
        detail::grad_slot(w, dots, d_weights, int(s / per_image), int(s % per_image));
    if (!g.holds_segment) continue;  // the same for all 32 lanes
    const int terms = g.other.count();
    T sum = T(0);
    for (int k = lane; k < terms; k += 32) {
      const T d = g.fixed_is_y ? g.dots[std::int64_t(g.fixed) * cap_x + k]
                               : g.dots[std::int64_t(k) * cap_x + g.fixed];
      sum = k == lane ? gpu::mul_rn(g.other.weight[k], d) : gpu::fma_rn(g.other.weight[k], d, sum);
    }
    for (int half = 16; half > 0; half /= 2) sum += gpu::shfl_down32(sum, unsigned(half));
    if (lane == 0) *g.out += gpu::mul_rn(scale, sum);
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
  const bool planes = upstream.layout == Layout::nchw && other.layout == Layout::nchw;
  const bool packs = packs_fit(upstream, other);
  const std::int64_t rows = std::int64_t(w.batch) * w.y.in_size;
  const std::size_t shared = 2 * sizeof(std::int64_t) * std::size_t(w.x.capacity());
  const bool staged = shared <= staging_bytes;  // else (W + Wr > 3073) offsets from the weights
  if (planes) {
    const int runs = int((std::int64_t(w.y.capacity()) * w.x.capacity() + 31) / 32);
    const dim3 plane_block(32, plane_dot_warps);
    if (direction == Direction::forward) {
      plane_pair_dots_kernel<Direction::forward>
          <<<grid_for(std::int64_t(w.batch) * runs, 1), plane_block, 0, stream>>>(
              w, upstream, other, dots, runs);
    } else {
      plane_pair_dots_kernel<Direction::inverse>
          <<<grid_for(std::int64_t(w.batch) * runs, 1), plane_block, 0, stream>>>(
              w, upstream, other, dots, runs);
    }
  } else if (direction == Direction::forward) {
    pair_dots_kernel<Direction::forward><<<grid_for(rows, 1), block, staged ? shared : 0, stream>>>(
        w, upstream, other, dots, packs, staged);
  } else {
    pair_dots_kernel<Direction::inverse><<<grid_for(rows, 1), block, staged ? shared : 0, stream>>>(
        w, upstream, other, dots, packs, staged);
  }
  gpu::error_t launched = gpu::last_error();
  if (launched == gpu::success) {
    const std::int64_t segments = std::int64_t(w.batch) * (w.y.capacity() + w.x.capacity());
    segment_grads_kernel<<<grid_for(segments, block_threads / 32), block_threads, 0, stream>>>(
        w, dots, d_weights, scale);
    launched = gpu::last_error();
  }
  check_runtime(pooled ? gpu::free_async(memory, stream) : gpu::free_device(memory), verb,
                "freeing the pair dots");
  check_runtime(launched, verb, "the weight-gradient kernels");
}

}  // namespace gpu_detail
}  // namespace ssb
