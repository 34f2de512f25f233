// ssbnet: the kernels of compute_weights (masses, segment walk) and of compute_weights_backward
// (marginal and saliency gradients), and their launches.
// Part of the GPU backends' kernels (ssb/detail/gpu_verbs.hpp, which includes it; see its file
// comment for the design). Include <ssb/cuda.cuh> or <ssb/hip.hpp>, not this header.
#pragma once

#include "gpu_common.hpp"

namespace ssb {
namespace gpu_detail {

// ---- compute_weights -------------------------------------------------------------------------

// Row sums (8 lanes, halving tree), column sums and total of every map, exactly as
// detail::compute_masses orders them, and the value check of detail::check_saliency_image. One
// block per image; the sums are staged in shared memory when `staged`.
template <class S, class T>
__global__ void masses_kernel(SaliencyMap<const S> s, Weights<T> w, bool staged) {
  extern __shared__ double staging[];
  __shared__ double total_of;
  const int H = s.height, W = s.width;
  for (int n = blockIdx.x; n < s.batch; n += gridDim.x) {
    const S* map = s.data + std::int64_t(n) * H * W;
    double* row_mass = w.y.mass + std::int64_t(n) * H;
    double* col_mass = w.x.mass + std::int64_t(n) * W;
    double* rows = staged ? staging : row_mass;
    double* cols = staged ? staging + H : col_mass;
    // Row sums: mass_lanes threads per row, thread u summing detail::row_mass' lane u (the
    // columns w = u mod mass_lanes, in order), then its halving tree through shuffles. Every warp
    // runs the same number of rounds, so that the shuffles have all their lanes.
    constexpr int L = detail::mass_lanes;
    const int u = int(threadIdx.x) % L, groups = int(blockDim.x) / L;
    double least = 0.0;
    for (int base = 0; base < H; base += groups) {
      const int h = base + int(threadIdx.x) / L;
      double lane = 0.0;
      if (h < H) {
        const S* row = map + std::int64_t(h) * W;
        for (int x = u; x < W; x += L) {
          const double v = double(row[x]);
          lane += v;
          least = v < least ? v : least;
        }
      }
      for (int half = L / 2; half > 0; half /= 2) {
        const double other = gpu::shfl_down32(lane, unsigned(half));
        if (u < half) lane += other;
      }
      if (h < H && u == 0) rows[h] = lane;
    }
    constexpr int batch = 8;  // loads issued together; the adds stay in row order
    for (int x = threadIdx.x; x < W; x += blockDim.x) {
      double col = 0.0;
      int h = 0;
      for (; h + batch <= H; h += batch) {
        double v[batch];
        for (int u = 0; u < batch; ++u) v[u] = double(map[std::int64_t(h + u) * W + x]);
        for (int u = 0; u < batch; ++u) col += v[u];
      }
      for (; h < H; ++h) col += double(map[std::int64_t(h) * W + x]);
      cols[x] = col;
    }
    // compute_masses' smallest value is < 0 exactly when some lane's is (NaN is skipped by both).
    const bool negative = __syncthreads_or(least < 0.0) != 0;
    if (threadIdx.x == 0) {
      double total = 0.0;
      for (int h = 0; h < H; ++h) total += rows[h];
      // detail::check_saliency_image's tests, with the status encoding of the file comment.
      std::int64_t status = -1;
      if (negative || !(total <= detail::largest_double)) {
        status = 1 + detail::first_bad_value(map, std::int64_t(H) * W);  // 0 if none is found
        if (status == 0) status = -1;
      }
      if (status < 0 && detail::sums_overflow(cols, W, total)) {
        status = 1 + std::int64_t(H) * W;
      }
      w.status[n] = status;
      w.total[n] = total;
      total_of = total;
    }
    __syncthreads();
    const bool uniform = !(total_of > 0.0);  // the uniform fallback of compute_masses
    for (int h = threadIdx.x; h < H; h += blockDim.x) row_mass[h] = uniform ? 1.0 : rows[h];
    for (int x = threadIdx.x; x < W; x += blockDim.x) col_mass[x] = uniform ? 1.0 : cols[x];
    __syncthreads();
  }
}

// The shared memory of walk_kernel for one axis: the breakpoints CS[1..in] and CU[0..out], then
// the walk's outputs.
template <class T>
struct WalkStaging {
  std::size_t cs, cu, weight, out_index, in_index, out_begin, in_begin, flags, bytes;
  SSB_HOST_DEVICE explicit WalkStaging(int in, int out) {
    const std::size_t cap = std::size_t(in) + std::size_t(out) - 1;
    cs = 0;
    cu = cs + sizeof(double) * (std::size_t(in) + 1);
    weight = cu + sizeof(double) * (std::size_t(out) + 1);
    out_index = weight + (sizeof(T) * cap + 7) / 8 * 8;
    in_index = out_index + sizeof(std::int32_t) * cap;
    out_begin = in_index + sizeof(std::int32_t) * cap;
    in_begin = out_begin + sizeof(std::int32_t) * (std::size_t(out) + 1);
    flags = in_begin + sizeof(std::int32_t) * (std::size_t(in) + 1);
    bytes = flags + cap;
  }
};

// The segment walk of every (image, axis), one block each, only when every image of the batch
// passed the check. When `staged`: one thread sums the masses in order, the block divides the
// prefix sums and computes CU in parallel (detail::breakpoint_after, output_breakpoint), and one
// thread merges them (detail::merge_breakpoints), all in shared memory, before the block copies
// the segments out. Else one thread runs detail::segment_walk on global memory. The host's
// operations either way: its bits.
template <class T>
__global__ void walk_kernel(Weights<T> w, bool staged) {
  extern __shared__ double staging[];
  bool bad = false;
  for (int m = threadIdx.x; m < w.batch; m += blockDim.x) bad = bad || w.status[m] != -1;
  if (__syncthreads_or(bad)) return;
  for (std::int64_t t = blockIdx.x; t < 2 * std::int64_t(w.batch); t += gridDim.x) {
    const int n = int(t / 2);
    const AxisSegments<T>& a = t % 2 == 0 ? w.y : w.x;
    const int in = a.in_size, out = a.out_size;
    const std::int64_t k0 = std::int64_t(n) * a.capacity();
    const double* mass = a.mass + std::int64_t(n) * in;
    T* weight = a.weight + k0;
    std::int32_t *out_index = a.out_index + k0, *in_index = a.in_index + k0;
    std::uint8_t* flags = a.flags + k0;
    std::int32_t* out_begin = a.out_begin + std::int64_t(n) * (out + 1);
    std::int32_t* in_begin = a.in_begin + std::int64_t(n) * (in + 1);
    if (!staged) {
      if (threadIdx.x == 0) {
        detail::segment_walk(mass, a.mass_total(w.total, n), in, out, weight, out_index, in_index,
                             flags, out_begin, in_begin);
      }
      continue;
    }
    const WalkStaging<T> at(in, out);
    unsigned char* base = reinterpret_cast<unsigned char*>(staging);
    double* cs = reinterpret_cast<double*>(base + at.cs);  // cs[j] = CS[j+1]
    double* cu = reinterpret_cast<double*>(base + at.cu);
    T* s_weight = reinterpret_cast<T*>(base + at.weight);
    std::int32_t* s_out_index = reinterpret_cast<std::int32_t*>(base + at.out_index);
    std::int32_t* s_in_index = reinterpret_cast<std::int32_t*>(base + at.in_index);
    std::int32_t* s_out_begin = reinterpret_cast<std::int32_t*>(base + at.out_begin);
    std::int32_t* s_in_begin = reinterpret_cast<std::int32_t*>(base + at.in_begin);
    std::uint8_t* s_flags = base + at.flags;
    for (int j = threadIdx.x; j < in; j += blockDim.x) cs[j] = mass[j];
    for (int i = threadIdx.x; i <= out; i += blockDim.x) cu[i] = detail::output_breakpoint(i, out);
    __syncthreads();
    if (threadIdx.x == 0) {
      double prefix = cs[0];
      for (int j = 1; j < in; ++j) cs[j] = prefix += cs[j];
    }
    __syncthreads();
    const double total = a.mass_total(w.total, n);
    for (int j = threadIdx.x; j <= in; j += blockDim.x) {
      cs[j] = detail::breakpoint_after(j < in ? cs[j] : 0.0, total, j, in);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      detail::merge_breakpoints([&](int j) { return cs[j]; }, [&](int i) { return cu[i]; }, in, out,
                                s_weight, s_out_index, s_in_index, s_flags, s_out_begin,
                                s_in_begin);
    }
    __syncthreads();
    const int count = s_out_begin[out];
    for (int k = threadIdx.x; k < count; k += blockDim.x) {
      weight[k] = s_weight[k];
      out_index[k] = s_out_index[k];
      in_index[k] = s_in_index[k];
      flags[k] = s_flags[k];
    }
    for (int i = threadIdx.x; i <= out; i += blockDim.x) out_begin[i] = s_out_begin[i];
    for (int j = threadIdx.x; j <= in; j += blockDim.x) in_begin[j] = s_in_begin[j];
    __syncthreads();
  }
}

// ---- compute_weights_backward ----------------------------------------------------------------

// The shared memory of saliency_backward_kernel for one axis: the scratch, mass, d_weight,
// in_index and flags of detail::marginal_grad.
template <class T>
struct MarginalStaging {
  std::size_t scratch, mass, d_weight, in_index, flags, bytes;
  SSB_HOST_DEVICE explicit MarginalStaging(int in, int out) {
    const std::size_t cap = std::size_t(in) + std::size_t(out) - 1;
    scratch = 0;
    mass = scratch + sizeof(double) * (std::size_t(in) + 1);
    d_weight = mass + sizeof(double) * std::size_t(in);
    in_index = d_weight + (sizeof(T) * cap + 7) / 8 * 8;
    flags = in_index + sizeof(std::int32_t) * cap;
    bytes = flags + cap;
  }
  // The bytes of one axis rounded up to 8, where the next axis' staging starts.
  SSB_HOST_DEVICE std::size_t bytes_aligned() const { return (bytes + 7) / 8 * 8; }
};

// Stages one axis of image n for detail::marginal_grad in shared memory (at `base`, laid out by
// MarginalStaging) and returns the AxisImage, d_weight, mass and scratch pointers to run it on.
template <class T>
struct MarginalArgs {
  AxisImage<T> a;
  const T* d_weight;
  double* mass;
  double* scratch;
};
template <class T>
__device__ inline MarginalArgs<T> stage_marginal(AxisImage<T> a, const T* d_weight,
                                                 const double* mass, unsigned char* base,
                                                 int thread, int threads) {
  const int in = a.in_size, count = a.count();
  const MarginalStaging<T> at(in, a.out_size);
  double* s_mass = reinterpret_cast<double*>(base + at.mass);
  T* s_d_weight = reinterpret_cast<T*>(base + at.d_weight);
  std::int32_t* s_in_index = reinterpret_cast<std::int32_t*>(base + at.in_index);
  std::uint8_t* s_flags = base + at.flags;
  for (int j = thread; j < in; j += threads) s_mass[j] = mass[j];
  for (int k = thread; k < count; k += threads) {
    s_d_weight[k] = d_weight[k];
    s_in_index[k] = a.in_index[k];
    s_flags[k] = a.flags[k];
  }
  a.in_index = s_in_index;
  a.flags = s_flags;
  return {a, s_d_weight, s_mass, reinterpret_cast<double*>(base + at.scratch)};
}

// compute_weights_backward, one block per image: detail::marginal_grad of the y axis and of the
// x axis side by side (the host's operations and bits), into the image's gradient scratch (dr,
// dc). When `staged`, on copies in shared memory, in its parts: the divisions sy and the final
// dr, dc by the whole block, the suffix sums by thread 0 (y) and thread 32 (x); else threads 0
// and 32 run it whole on global memory. Then
// dS[n, h, w] = dr[h] + dc[w] by the whole block, or 0 for a map that summed to 0
// (detail::saliency_grad_image).
template <class T, class DS>
__global__ void saliency_backward_kernel(Weights<T> w, WeightsGrad<T> d_weights, DS* d_saliency,
                                         bool staged) {
  extern __shared__ double staging[];
  const int H = w.y.in_size, W = w.x.in_size;
  const int thread = threadIdx.x, threads = blockDim.x;
  for (int n = blockIdx.x; n < w.batch; n += gridDim.x) {
    DS* out = d_saliency + std::int64_t(n) * H * W;
    const double total = w.total[n];
    if (!(total > 0.0)) {
      for (int e = thread; e < H * W; e += threads) gpu::narrow(out + e, 0.0);
      continue;
    }
    double* dr = w.gradient_scratch + std::int64_t(n) * (H + 1 + W + 1);
    double* dc = dr + H + 1;
    const AxisImage<T> ay = w.y.image(n), ax = w.x.image(n);
    const T* dwy = d_weights.y + std::int64_t(n) * d_weights.capacity_y;
    const T* dwx = d_weights.x + std::int64_t(n) * d_weights.capacity_x;
    const double* my = w.y.mass + std::int64_t(n) * H;
    const double* mx = w.x.mass + std::int64_t(n) * W;
    if (staged) {
      unsigned char* base = reinterpret_cast<unsigned char*>(staging);
      const MarginalArgs<T> y = stage_marginal(ay, dwy, my, base, thread, threads);
      const MarginalArgs<T> x = stage_marginal(
          ax, dwx, mx, base + MarginalStaging<T>(H, w.y.out_size).bytes_aligned(), thread, threads);
      __shared__ double weighted[2];
      __syncthreads();
      // detail::marginal_grad in its parts: sy = mass / total by the block, the suffix sums by
      // one thread per axis, then dr and dc by the block.
      for (int h = thread; h < H; h += threads) y.mass[h] = y.mass[h] / total;
      for (int c = thread; c < W; c += threads) x.mass[c] = x.mass[c] / total;
      __syncthreads();
      if (thread == 0) {
        weighted[0] = detail::marginal_suffix(
            y.a, y.d_weight, [&](int h) { return y.mass[h]; }, y.scratch);
      }
      if (thread == 32 % threads) {
        weighted[1] = detail::marginal_suffix(
            x.a, x.d_weight, [&](int c) { return x.mass[c]; }, x.scratch);
      }
      __syncthreads();
      for (int h = thread; h < H; h += threads) {
        y.scratch[h] = detail::marginal_finish(y.scratch[h], weighted[0], total);
      }
      for (int c = thread; c < W; c += threads) {
        x.scratch[c] = detail::marginal_finish(x.scratch[c], weighted[1], total);
      }
      __syncthreads();
      for (int j = thread; j <= H; j += threads) dr[j] = y.scratch[j];
      for (int j = thread; j <= W; j += threads) dc[j] = x.scratch[j];
      for (int e = thread; e < H * W; e += threads) {
        const int h = e / W, col = e - h * W;
        gpu::narrow(out + e, y.scratch[h] + x.scratch[col]);
      }
    } else {
      if (thread == 0) detail::marginal_grad(ay, dwy, my, total, dr);
      if (thread == 32 % threads) detail::marginal_grad(ax, dwx, mx, total, dc);
      __syncthreads();
      for (int e = thread; e < H * W; e += threads) {
        const int h = e / W, col = e - h * W;
        gpu::narrow(out + e, dr[h] + dc[col]);
      }
    }
    __syncthreads();
  }
}

}  // namespace gpu_detail
}  // namespace ssb
