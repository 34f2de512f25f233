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
// block per image; the sums are staged in shared memory when `staged`. When `tile_rows` > 0
// (staged, and a row fits), the map goes through shared memory tile_rows rows at a time, each
// tile copied by the whole block in 16-byte packs (block_copy), not read as a chain of loads per
// column: a small gain (COCO's 128 x 128 maps on an H200, under ncu: 17.0 -> 15.6 us, measured
// with a copy of its own that kept eight loads per thread in flight; block_copy keeps four). The
// tile (16 bytes more, for block_copy's alignment) leaves room below staging_bytes for the static
// shared memory.
constexpr std::size_t masses_tile_bytes = 32 * 1024;
template <class S, class T>
__global__ void masses_kernel(SaliencyMap<const S> s, Weights<T> w, bool staged, int tile_rows) {
  extern __shared__ __align__(16) double staging[];
  __shared__ double total_of;
  const int H = s.height, W = s.width;
  const int thread = threadIdx.x, threads = blockDim.x;
  for (int n = blockIdx.x; n < s.batch; n += gridDim.x) {
    const S* map = s.data + std::int64_t(n) * H * W;
    double* row_mass = w.y.mass + std::int64_t(n) * H;
    double* col_mass = w.x.mass + std::int64_t(n) * W;
    double* rows = staged ? staging : row_mass;
    double* cols = staged ? staging + H : col_mass;
    double* tile_region = staging + (H + W + 1) / 2 * 2;  // 16-byte aligned (staging is)
    // Row sums of rows [h0, h1) (row h at row_at(h)): mass_lanes threads per row, thread u
    // summing detail::row_mass' lane u (the columns w = u mod mass_lanes, in order), then its
    // halving tree through shuffles. Every warp runs the same number of rounds, so that the
    // shuffles have all their lanes.
    constexpr int L = detail::mass_lanes;
    const int u = thread % L, groups = threads / L;
    double least = 0.0;
    const auto row_sums = [&](int h0, int h1, auto row_at) {
      for (int base = h0; base < h1; base += groups) {
        const int h = base + thread / L;
        double lane = 0.0;
        if (h < h1) {
          const S* row = row_at(h);
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
        if (h < h1 && u == 0) rows[h] = lane;
      }
    };
    if (tile_rows > 0) {
      for (int h0 = 0; h0 < H; h0 += tile_rows) {
        const int h1 = min(H, h0 + tile_rows);
        const S* from = map + std::int64_t(h0) * W;
        // block_copy wants the copy at the address of the rows modulo 16.
        S* tile = reinterpret_cast<S*>(reinterpret_cast<unsigned char*>(tile_region) +
                                       reinterpret_cast<std::uintptr_t>(from) % 16);
        block_copy(from, tile, std::int64_t(h1 - h0) * W, thread, threads);
        __syncthreads();
        row_sums(h0, h1, [&](int h) { return tile + std::int64_t(h - h0) * W; });
        for (int x = thread; x < W; x += threads) {  // column sums continue in row order
          double col = h0 == 0 ? 0.0 : cols[x];
          for (int h = h0; h < h1; ++h) col += double(tile[std::int64_t(h - h0) * W + x]);
          cols[x] = col;
        }
        __syncthreads();
      }
    } else {
      row_sums(0, H, [&](int h) { return map + std::int64_t(h) * W; });
      constexpr int batch = 8;  // loads issued together; the adds stay in row order
      for (int x = thread; x < W; x += threads) {
        double col = 0.0;
        int h = 0;
        for (; h + batch <= H; h += batch) {
          double v[batch];
          for (int r = 0; r < batch; ++r) v[r] = double(map[std::int64_t(h + r) * W + x]);
          for (int r = 0; r < batch; ++r) col += v[r];
        }
        for (; h < H; ++h) col += double(map[std::int64_t(h) * W + x]);
        cols[x] = col;
      }
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

// The shared memory of walk_kernel for one axis: the breakpoints CS[0..in] and CU[0..out], and
// where each thread's run of rows starts in the segments.
constexpr int walk_threads = 64;
struct WalkStaging {
  std::size_t cs, cu, run_start, bytes;
  SSB_HOST_DEVICE explicit WalkStaging(int in, int out) {
    cs = 0;
    cu = cs + sizeof(double) * (std::size_t(in) + 1);
    run_start = cu + sizeof(double) * (std::size_t(out) + 1);
    bytes = run_start + sizeof(std::int32_t) * (walk_threads + 1);
  }
};

// The segment walk of every (image, axis), one block each, only when every image of the batch
// passed the check. When `staged` (shared memory): one thread sums the masses in order, the block
// divides the prefix sums and computes CU (detail::breakpoint_after, output_breakpoint), then the
// merge runs row by row (detail::merge_row, merge_row_segments, merge_out_begin): each thread
// takes a run of input rows and counts their segments, the counts are added up in thread order,
// and each thread writes its rows' segments (merge_row again: a bisection, cheaper than keeping
// it). Else one thread runs detail::segment_walk on global memory.
// Either way the host's segments, bit for bit (the row-by-row merge is tested against the
// serial one on the host, test_properties.cpp).
template <class T>
__global__ void __launch_bounds__(walk_threads) walk_kernel(Weights<T> w, bool staged) {
  extern __shared__ __align__(16) double staging[];
  bool bad = false;
  for (int m = threadIdx.x; m < w.batch; m += blockDim.x) bad = bad || w.status[m] != -1;
  if (__syncthreads_or(bad)) return;
  const int thread = threadIdx.x, threads = walk_threads;  // run_start has walk_threads + 1
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
      if (thread == 0) {
        detail::segment_walk(mass, a.mass_total(w.total, n), in, out, weight, out_index, in_index,
                             flags, out_begin, in_begin);
      }
      continue;
    }
    const WalkStaging at(in, out);
    unsigned char* base = reinterpret_cast<unsigned char*>(staging);
    double* cs = reinterpret_cast<double*>(base + at.cs);  // cs[j] = CS[j]
    double* cu = reinterpret_cast<double*>(base + at.cu);
    std::int32_t* run_start = reinterpret_cast<std::int32_t*>(base + at.run_start);
    for (int j = thread; j < in; j += threads) cs[j + 1] = mass[j];
    for (int i = thread; i <= out; i += threads) cu[i] = detail::output_breakpoint(i, out);
    __syncthreads();
    if (thread == 0) {  // segment_walk's prefix sums, in its order
      cs[0] = 0.0;
      double prefix = cs[1];
      for (int j = 1; j < in; ++j) cs[j + 1] = prefix += cs[j + 1];
    }
    __syncthreads();
    const double total = a.mass_total(w.total, n);
    for (int j = thread; j < in; j += threads) {
      cs[j + 1] = detail::breakpoint_after(cs[j + 1], total, j, in);
    }
    __syncthreads();
    const auto cs_of = [&](int j) { return cs[j]; };
    const auto cu_of = [&](int i) { return cu[i]; };
    // Thread u takes the rows [u * per, (u + 1) * per); its segments start after the runs before.
    const int per = (in + threads - 1) / threads;
    const int j0 = min(in, thread * per), j1 = min(in, j0 + per);
    int segments = 0;
    for (int j = j0; j < j1; ++j) segments += detail::merge_row(cs_of, cu_of, out, j).count();
    run_start[thread + 1] = segments;
    __syncthreads();
    if (thread == 0) {
      run_start[0] = 0;
      for (int u = 1; u <= threads; ++u) run_start[u] += run_start[u - 1];
    }
    __syncthreads();
    int k = run_start[thread];
    for (int j = j0; j < j1; ++j) {
      const detail::MergeRow row = detail::merge_row(cs_of, cu_of, out, j);
      in_begin[j] = k;
      detail::merge_row_segments(cs_of, cu_of, j, row, k, weight, out_index, in_index, flags);
      k += row.count();
    }
    const int count = run_start[threads];
    if (thread == 0) in_begin[in] = count;
    __syncthreads();  // the block's segments are written (and visible to the block)
    for (int s = thread; s <= count; s += threads) {
      detail::merge_out_begin(out_index, count, out, s, out_begin);
    }
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
// dc). When `staged`, on copies in shared memory, in its parts: the divisions sy, every dCS[j]
// and the final dr, dc by the whole block, the suffix chains by thread 0 (y) and the block's
// middle thread (x); else those two threads run it whole on global memory. Then
// dS[n, h, w] = dr[h] + dc[w] by the whole block, or 0 for a map that summed to 0
// (detail::saliency_grad_image).
template <class T, class DS>
__global__ void saliency_backward_kernel(Weights<T> w, WeightsGrad<T> d_weights, DS* d_saliency,
                                         bool staged) {
  extern __shared__ __align__(16) double staging[];
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
      // detail::marginal_grad in its parts: sy = mass / total and every dCS[j]
      // (detail::marginal_dcs) by the block, the suffix chains by one thread per axis
      // (detail::marginal_suffix_chain), then dr and dc by the block.
      for (int h = thread; h < H; h += threads) y.mass[h] = y.mass[h] / total;
      for (int c = thread; c < W; c += threads) x.mass[c] = x.mass[c] / total;
      for (int j = thread; j <= H; j += threads)
        y.scratch[j] = detail::marginal_dcs(y.a, y.d_weight, j);
      for (int j = thread; j <= W; j += threads)
        x.scratch[j] = detail::marginal_dcs(x.a, x.d_weight, j);
      __syncthreads();
      if (thread == 0) {
        weighted[0] = detail::marginal_suffix_chain(
            H, [&](int h) { return y.mass[h]; }, y.scratch);
      }
      if (thread == threads / 2) {  // another warp (and another HIP wavefront) than thread 0
        weighted[1] = detail::marginal_suffix_chain(
            W, [&](int c) { return x.mass[c]; }, x.scratch);
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
      if (thread == threads / 2) detail::marginal_grad(ax, dwx, mx, total, dc);
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
