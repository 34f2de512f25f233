// ssbnet: the gathers of sample, sample_inverse and the data gradients (the NHWC row kernel and
// the per-element kernel), and launch_gather.
// Part of the GPU backends' kernels (ssb/detail/gpu_verbs.hpp, which includes it; see its file
// comment for the design). Include <ssb/cuda.cuh> or <ssb/hip.hpp>, not this header.
#pragma once

#include "gpu_common.hpp"

namespace ssb {
namespace gpu_detail {

// ---- gathers ---------------------------------------------------------------------------------

// One term of detail::gather_element's sums, with explicit rounding (gpu::mul_rn): w * v for the
// first term, else acc + w * v fused. Every GPU gather path sums through this, in
// gather_element's order, so all of them give the same bits.
template <class T>
__device__ inline T term(bool first, T w, T v, T acc) {
  return first ? gpu::mul_rn(w, v) : gpu::fma_rn(w, v, acc);
}
struct RoundedTerm {  // term() as detail::gather_element's `term`
  template <class T>
  __device__ T operator()(bool first, T w, T v, T acc) const {
    return term(first, w, v, acc);
  }
};

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
  const T acc = detail::gather_element<D, T>(ay, ax, ky0, ky1, kx0, kx1, load, RoundedTerm());
  gpu::narrow(dst.data + dst.pixel_offset(n, a, b) + c * dst.channel_stride(),
              gpu::mul_rn(scale, acc));
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

// The y sums of one source pixel's pack in gather_rows_kernel: V values in the accumulation type.
template <class T, int V>
struct alignas(16) PackSums {
  T v[V];
};

// The shared memory of gather_rows_kernel: the source row offsets (in packs) and weights of one
// destination row's y segments, the source columns and weights of the image's x segments, where
// each destination column's x segments begin, then the y sums of `chunk` packs of every source
// column.
template <class T>
struct RowStaging {
  std::size_t y_at, y_weight, x_source, x_weight, x_begin, sums, bytes;
  SSB_HOST_DEVICE RowStaging(int cap_y, int cap_x, int dst_width, int src_width, int chunk,
                             std::size_t sums_bytes) {
    y_at = 0;
    y_weight = y_at + sizeof(std::int64_t) * std::size_t(cap_y);
    x_weight = (y_weight + sizeof(T) * std::size_t(cap_y) + 7) / 8 * 8;
    x_source = x_weight + sizeof(T) * std::size_t(cap_x);
    x_begin = x_source + sizeof(std::int32_t) * std::size_t(cap_x);
    sums = (x_begin + sizeof(std::int32_t) * (std::size_t(dst_width) + 1) + 15) / 16 * 16;
    bytes = sums + sums_bytes * std::size_t(src_width) * std::size_t(chunk);
  }
};

// Items (source column, pack) of gather_rows_kernel's y sums that one thread takes at once. On a
// lent H200 (10 calls per timing; bench/results/cuda_h200_row_unroll.md), against one item at a
// time (each load waited for in turn): 2 took 0.78-0.97x the time on sample's 15 bench shapes
// and 0.84-1.05x on sample_inverse's, in each of two runs; 4 took 0.90-1.11x; 8 (104 registers,
// two blocks per SM) 1.33-1.94x.
#ifndef SSB_GPU_ROW_UNROLL
#define SSB_GPU_ROW_UNROLL 2
#endif
constexpr int row_unroll = SSB_GPU_ROW_UNROLL;

// The NHWC fast path of the gather (both maps NHWC, channels a multiple of Pack<S>::size, 16-byte
// aligned data; launch_gather picks `chunk` so that RowStaging fits staging_bytes). One block per
// destination row (n, a) and chunk of `chunk` packs (all channels unless rows are few or wide).
// The row's y segments and the image's x segments are staged in shared memory; then, per channel,
//   1. the y sums  inner(sx) = sum over the row's y segments k of wy_k * src[sy_k, sx], for every
//      source column sx, each source pack read once (a warp reads 512 contiguous bytes);
//   2. dst[a, b] = scale * sum over column b's x segments l of wx_l * inner(sx_l), from shared
//      memory.
// inner(sx) is exactly gather_one's inner sum of every x segment with source column sx, and both
// sums take gather_one's terms in its order: the same bits.
template <Direction D, class S, class T>
__global__ void __launch_bounds__(block_threads)
    gather_rows_kernel(Weights<T> w, FeatureMap<const S> src, FeatureMap<S> dst, T scale, int packs,
                       int chunk) {
  extern __shared__ __align__(16) double staging[];
  constexpr int V = Pack<S>::size;
  using Sums = PackSums<T, V>;
  const int dh = dst.height, dw = dst.width, sw = src.width;
  const RowStaging<T> at(w.y.capacity(), w.x.capacity(), dw, sw, chunk, sizeof(Sums));
  unsigned char* base = reinterpret_cast<unsigned char*>(staging);
  std::int64_t* y_at = reinterpret_cast<std::int64_t*>(base + at.y_at);
  T* y_weight = reinterpret_cast<T*>(base + at.y_weight);
  std::int32_t* x_source = reinterpret_cast<std::int32_t*>(base + at.x_source);
  T* x_weight = reinterpret_cast<T*>(base + at.x_weight);
  std::int32_t* x_begin = reinterpret_cast<std::int32_t*>(base + at.x_begin);
  Sums* sums = reinterpret_cast<Sums*>(base + at.sums);
  const int thread = threadIdx.y * blockDim.x + threadIdx.x, threads = blockDim.x * blockDim.y;
  const std::int64_t row_packs = std::int64_t(sw) * packs;
  const int splits = (packs + chunk - 1) / chunk;
  const int tasks = dst.batch * dh * splits;  // < 2^31 (launch_gather)
  for (int task = blockIdx.x; task < tasks; task += gridDim.x) {
    const int r = task / splits, q0 = (task - r * splits) * chunk;
    const int length = min(chunk, packs - q0);
    const int n = r / dh, a = r - n * dh;
    const AxisImage<T> ay = w.y.image(n), ax = w.x.image(n);
    const int ky0 = detail::range_begin<D>(ay, a);
    const int ny = detail::range_begin<D>(ay, a + 1) - ky0;
    const int nx = detail::range_begin<D>(ax, dw);  // the x segments of all columns
    for (int i = thread; i < ny; i += threads) {
      y_at[i] = detail::source_index<D>(ay, ky0 + i) * row_packs;
      y_weight[i] = ay.weight[ky0 + i];
    }
    for (int l = thread; l < nx; l += threads) {
      x_source[l] = detail::source_index<D>(ax, l);
      x_weight[l] = ax.weight[l];
    }
    for (int b = thread; b <= dw; b += threads) x_begin[b] = detail::range_begin<D>(ax, b);
    __syncthreads();
    const Pack<S>* in = reinterpret_cast<const Pack<S>*>(src.data + src.pixel_offset(n, 0, 0)) + q0;
    // Items e = x * length + q (consecutive threads: consecutive packs of one source column),
    // row_unroll of them per thread at once, so that the loads of a y segment for all of them
    // are in flight together. An item past the end loads the task's first pack (a valid
    // address) and stores nothing.
    const int items = sw * length;
    for (int e0 = thread; e0 < items; e0 += row_unroll * threads) {
      const Pack<S>* column[row_unroll];
      int slot[row_unroll];
      Sums inner[row_unroll];
#pragma unroll
      for (int j = 0; j < row_unroll; ++j) {
        const int e = e0 + j * threads, x = e / length, q = e - x * length;
        const bool live = e < items;
        column[j] = in + (live ? std::int64_t(x) * packs + q : 0);
        slot[j] = live ? x * chunk + q : -1;
        for (int u = 0; u < V; ++u) inner[j].v[u] = T(0);
      }
      for (int i = 0; i < ny; ++i) {
        const std::int64_t at = y_at[i];
        const T wk = y_weight[i];
        Pack<S> v[row_unroll];
#pragma unroll
        for (int j = 0; j < row_unroll; ++j) v[j] = column[j][at];
#pragma unroll
        for (int j = 0; j < row_unroll; ++j) {
          for (int u = 0; u < V; ++u)
            inner[j].v[u] = term(i == 0, wk, T(gpu::widen(v[j].v[u])), inner[j].v[u]);
        }
      }
#pragma unroll
      for (int j = 0; j < row_unroll; ++j) {
        if (slot[j] >= 0) sums[slot[j]] = inner[j];
      }
    }
    __syncthreads();
    Pack<S>* out = reinterpret_cast<Pack<S>*>(dst.data + dst.pixel_offset(n, a, 0)) + q0;
    for (int b = threadIdx.y; b < dw; b += blockDim.y) {
      const int kx0 = x_begin[b], kx1 = x_begin[b + 1];
      for (int q = threadIdx.x; q < length; q += blockDim.x) {
        T acc[V];
        for (int u = 0; u < V; ++u) acc[u] = T(0);
        for (int l = kx0; l < kx1; ++l) {
          const Sums inner = sums[x_source[l] * chunk + q];
          const T wl = x_weight[l];
          for (int u = 0; u < V; ++u) acc[u] = term(l == kx0, wl, inner.v[u], acc[u]);
        }
        Pack<S> y;
        for (int u = 0; u < V; ++u) gpu::narrow(&y.v[u], gpu::mul_rn(scale, acc[u]));
        out[std::int64_t(b) * packs + q] = y;
      }
    }
    __syncthreads();
  }
}

// The shared memory of gather_planes_kernel: the weights and source indices of the image's y and
// x segments, where each destination row's and column's segments begin, then `sums` y sums.
template <class T>
struct PlaneStaging {
  std::size_t y_weight, x_weight, y_source, x_source, y_begin, x_begin, sums, bytes;
  SSB_HOST_DEVICE PlaneStaging(int cap_y, int cap_x, int dst_height, int dst_width,
                               std::size_t sums_count) {
    y_weight = 0;
    x_weight = y_weight + sizeof(T) * std::size_t(cap_y);
    y_source = x_weight + sizeof(T) * std::size_t(cap_x);
    x_source = y_source + sizeof(std::int32_t) * std::size_t(cap_y);
    y_begin = x_source + sizeof(std::int32_t) * std::size_t(cap_x);
    x_begin = y_begin + sizeof(std::int32_t) * (std::size_t(dst_height) + 1);
    sums = (x_begin + sizeof(std::int32_t) * (std::size_t(dst_width) + 1) + 15) / 16 * 16;
    bytes = sums + sizeof(T) * sums_count;
  }
};

// Items of the y sums one thread of gather_planes_kernel takes at once.
#ifndef SSB_GPU_PLANE_UNROLL
#define SSB_GPU_PLANE_UNROLL 4
#endif
constexpr int plane_unroll = SSB_GPU_PLANE_UNROLL;
// Whether gather_planes_kernel copies the source planes of inverse gathers into shared memory
// where they fit (plane_task).
#ifndef SSB_GPU_PLANE_STAGE
#define SSB_GPU_PLANE_STAGE 1
#endif

// The NCHW path of the gather (both maps NCHW). A task is `planes` channels of one image with all
// their destination rows, or (planes == 1, where one plane's y sums do not fit) `rows`
// destination rows of one plane; plane_task sizes it to PlaneStaging. The image's segments
// are staged in shared memory; then
//   1. the y sums  inner(p, a, sx) = sum over row a's y segments k of wy_k * src[p, sy_k, sx],
//      one item per (plane, row, source column) of the task, plane_unroll items per thread at
//      a time: a warp reads consecutive columns of one source row (of a few rows, on small
//      planes), and the rows a segment shares with the next destination row come from L1;
//   2. dst[p, a, b] = scale * sum over column b's x segments l of wx_l * inner(p, a, sx_l), one
//      thread per destination element: the task's destination is one contiguous run, written
//      with consecutive addresses.
// Staged (tasks of whole planes whose source fits in shared memory too): the task's source planes
// are first copied into shared memory in 16-byte packs (block_copy), so that every source byte
// is read from global memory once, and the y sums read that copy.
// Both sums take gather_one's terms in its order (as gather_rows_kernel does): NHWC's bits.
template <Direction D, bool Staged, class S, class T>
__global__ void __launch_bounds__(block_threads)
    gather_planes_kernel(Weights<T> w, FeatureMap<const S> src, FeatureMap<S> dst, T scale,
                         int planes, int rows) {
  extern __shared__ __align__(16) double staging[];
  const int dh = dst.height, dw = dst.width, sw = src.width, channels = dst.channels;
  const PlaneStaging<T> at(w.y.capacity(), w.x.capacity(), dh, dw, 0);
  unsigned char* base = reinterpret_cast<unsigned char*>(staging);
  T* y_weight = reinterpret_cast<T*>(base + at.y_weight);
  T* x_weight = reinterpret_cast<T*>(base + at.x_weight);
  std::int32_t* y_source = reinterpret_cast<std::int32_t*>(base + at.y_source);
  std::int32_t* x_source = reinterpret_cast<std::int32_t*>(base + at.x_source);
  std::int32_t* y_begin = reinterpret_cast<std::int32_t*>(base + at.y_begin);
  std::int32_t* x_begin = reinterpret_cast<std::int32_t*>(base + at.x_begin);
  T* sums = reinterpret_cast<T*>(base + at.sums);
  const int thread = threadIdx.x, threads = blockDim.x;
  const std::int64_t src_plane = src.channel_stride(), dst_plane = dst.channel_stride();
  const int channel_blocks = (channels + planes - 1) / planes, row_blocks = (dh + rows - 1) / rows;
  const std::int64_t tasks = std::int64_t(dst.batch) * channel_blocks * row_blocks;
  for (std::int64_t task = blockIdx.x; task < tasks; task += gridDim.x) {
    const int rb = int(task % row_blocks);
    const std::int64_t rest = task / row_blocks;
    const int cb = int(rest % channel_blocks), n = int(rest / channel_blocks);
    const int c0 = cb * planes, np = min(planes, channels - c0);
    const int a0 = rb * rows, nr = min(rows, dh - a0);
    const AxisImage<T> ay = w.y.image(n), ax = w.x.image(n);
    const int ny = detail::range_begin<D>(ay, dh), nx = detail::range_begin<D>(ax, dw);
    for (int k = thread; k < ny; k += threads) {
      y_source[k] = detail::source_index<D>(ay, k);
      y_weight[k] = ay.weight[k];
    }
    for (int l = thread; l < nx; l += threads) {
      x_source[l] = detail::source_index<D>(ax, l);
      x_weight[l] = ax.weight[l];
    }
    for (int a = thread; a <= dh; a += threads) y_begin[a] = detail::range_begin<D>(ay, a);
    for (int b = thread; b <= dw; b += threads) x_begin[b] = detail::range_begin<D>(ax, b);
    __syncthreads();
    const S* in = src.data + src.pixel_offset(n, 0, 0) + c0 * src_plane;
    if (Staged) {
      // The task's source planes (whole: nr == dh), after the y sums, at in's address mod 16.
      const std::uintptr_t region =
          (reinterpret_cast<std::uintptr_t>(sums + std::size_t(planes) * rows * sw) + 15) / 16 * 16;
      S* copy = reinterpret_cast<S*>(region + reinterpret_cast<std::uintptr_t>(in) % 16);
      block_copy(in, copy, np * src_plane, thread, threads);
      in = copy;
      __syncthreads();
    }
    const int row_items = nr * sw, items = np * row_items;
    // Each thread takes plane_unroll items at once (e, e + threads, ...), so that as many loads
    // are in flight; (p, r, x) of the next item by carries, not divisions.
    const int step_p = threads / row_items, step_r = threads % row_items / sw,
              step_x = threads % sw;
    int p = thread / row_items, r = thread % row_items / sw, x = thread % sw;
    for (int e0 = thread; e0 < items; e0 += plane_unroll * threads) {
      T inner[plane_unroll];
      const S* column[plane_unroll];
      int k0[plane_unroll], kn[plane_unroll];
      int most = 0;
#pragma unroll
      for (int u = 0; u < plane_unroll; ++u) {
        const bool live = e0 + u * threads < items;
        k0[u] = live ? y_begin[a0 + r] : 0;
        kn[u] = live ? y_begin[a0 + r + 1] - k0[u] : 0;
        column[u] = in + p * src_plane + x;
        inner[u] = T(0);
        most = max(most, kn[u]);
        x += step_x;
        if (x >= sw) x -= sw, ++r;
        r += step_r;
        if (r >= nr) r -= nr, ++p;
        p += step_p;
      }
      for (int t = 0; t < most; ++t) {
#pragma unroll
        for (int u = 0; u < plane_unroll; ++u) {
          if (t < kn[u]) {
            const int k = k0[u] + t;
            inner[u] = term(t == 0, y_weight[k],
                            T(gpu::widen(column[u][std::int64_t(y_source[k]) * sw])), inner[u]);
          }
        }
      }
#pragma unroll
      for (int u = 0; u < plane_unroll; ++u) {
        if (e0 + u * threads < items) sums[e0 + u * threads] = inner[u];
      }
    }
    __syncthreads();
    // The destination planes c0.. with rows a0..: one contiguous run (np > 1 only where
    // nr == dh), whose element e is column b of line e / dw of the y sums.
    S* out = dst.data + dst.pixel_offset(n, a0, 0) + c0 * dst_plane;
    const int step_line = threads / dw, step_b = threads % dw;
    int line = thread / dw, b = thread % dw;
    for (int e = thread; e < np * nr * dw; e += threads) {
      const int l0 = x_begin[b], l1 = x_begin[b + 1];
      const T* row = sums + line * sw;
      T acc = T(0);
      for (int l = l0; l < l1; ++l) acc = term(l == l0, x_weight[l], row[x_source[l]], acc);
      gpu::narrow(out + e, gpu::mul_rn(scale, acc));
      b += step_b;
      if (b >= dw) b -= dw, ++line;
      line += step_line;
    }
    __syncthreads();
  }
}

// Shared memory a gather_planes_kernel task aims at: eight blocks of 256 threads (a full H100 SM)
// then fit in its 228 KiB. A task of one plane (or row block) that needs more may take up to
// staging_bytes.
constexpr std::size_t plane_task_bytes = 24 * 1024;

// The task of gather_planes_kernel for these maps (planes, rows and the shared memory), or
// planes == 0 where a single destination row's staging exceeds staging_bytes.
struct PlaneTask {
  int planes = 0, rows = 0;
  bool staged = false;  // gather_planes_kernel<D, true>
  std::size_t shared = 0;
};
template <class T, class S>
PlaneTask plane_task(const Weights<T>& w, const FeatureMap<const S>& src, const FeatureMap<S>& dst,
                     Direction direction) {
  PlaneTask t;
  const int dh = dst.height, dw = dst.width, sw = src.width;
  const std::size_t fixed = PlaneStaging<T>(w.y.capacity(), w.x.capacity(), dh, dw, 0).bytes;
  const std::size_t row = sizeof(T) * std::size_t(sw);
  if (fixed + row > staging_bytes) return t;
  // Fewer planes per task while tasks are too few to fill the GPU.
  const auto fewer = [&](int planes) {
    while (planes > 1 &&
           std::int64_t(dst.batch) * ((dst.channels + planes - 1) / planes) < min_blocks) {
      planes = (planes + 1) / 2;
    }
    return planes;
  };
  // Whole planes with their source copied (their y sums, the copy, 32 bytes to align it), for
  // inverse gathers only: on the H100 that made them 0.87-0.98x as slow on 13 of the 15 bench
  // shapes (1.06x on one; one too large to copy), forward gathers 0.90-1.08x (mixed).
  const std::size_t source = sizeof(S) * std::size_t(src.height) * std::size_t(sw);
  const std::size_t plane = row * std::size_t(dh) + source, slack = 32;
  if (SSB_GPU_PLANE_STAGE && direction == Direction::inverse &&
      fixed + slack + plane <= staging_bytes) {
    const std::size_t budget = std::max(plane_task_bytes, fixed + slack + plane);
    t.staged = true;
    t.rows = dh;
    t.planes = fewer(
        int(std::min<std::size_t>((budget - fixed - slack) / plane, std::size_t(dst.channels))));
    t.shared =
        PlaneStaging<T>(w.y.capacity(), w.x.capacity(), dh, dw, std::size_t(t.planes) * dh * sw)
            .bytes +
        slack + source * std::size_t(t.planes);
    return t;
  }
  const std::size_t budget = std::max(plane_task_bytes, fixed + row);
  const std::int64_t fit_rows = std::int64_t((budget - fixed) / row);
  if (fit_rows >= dh) {
    t.rows = dh;
    t.planes = fewer(int(std::min<std::int64_t>(fit_rows / dh, dst.channels)));
  } else {
    t.planes = 1;
    t.rows = int(fit_rows);
  }
  t.shared =
      PlaneStaging<T>(w.y.capacity(), w.x.capacity(), dh, dw, std::size_t(t.planes) * t.rows * sw)
          .bytes;
  return t;
}

// gather_planes_kernel<D, staged> for these maps and task.
template <Direction D, class S, class T>
void launch_planes(gpu::stream_t stream, const PlaneTask& t, const Weights<T>& w,
                   const FeatureMap<const S>& src, const FeatureMap<S>& dst, T scale) {
  const std::int64_t tasks = std::int64_t(dst.batch) * ((dst.channels + t.planes - 1) / t.planes) *
                             ((dst.height + t.rows - 1) / t.rows);
  if (t.staged) {
    gather_planes_kernel<D, true><<<grid_for(tasks, 1), block_threads, t.shared, stream>>>(
        w, src, dst, scale, t.planes, t.rows);
  } else {
    gather_planes_kernel<D, false><<<grid_for(tasks, 1), block_threads, t.shared, stream>>>(
        w, src, dst, scale, t.planes, t.rows);
  }
}

template <class S, class T>
void launch_gather(gpu::stream_t stream, const char* verb, const Weights<T>& w,
                   const FeatureMap<const S>& src, const FeatureMap<S>& dst, Direction direction,
                   T scale) {
  if (packs_fit(src, dst)) {
    const int packs = dst.channels / Pack<S>::size;
    const std::int64_t rows = std::int64_t(dst.batch) * dst.height;
    const std::size_t per_pack = sizeof(PackSums<T, Pack<S>::size>);
    const RowStaging<T> fixed(w.y.capacity(), w.x.capacity(), dst.width, src.width, 0, per_pack);
    const std::size_t column_bytes = per_pack * std::size_t(src.width);
    if (fixed.bytes + column_bytes <= staging_bytes) {
      // The largest power-of-two chunk whose y sums fit; then more, smaller chunks while rows
      // are few, down to 32 packs, so that some min_blocks blocks keep every SM busy.
      const std::int64_t fit = std::int64_t((staging_bytes - fixed.bytes) / column_bytes);
      int chunk = 1;
      while (2 * chunk <= std::min<std::int64_t>(fit, packs)) chunk *= 2;
      while (chunk > 32 && rows * ((packs + chunk - 1) / chunk) < min_blocks) chunk /= 2;
      const std::int64_t tasks = rows * ((packs + chunk - 1) / chunk);
      if (tasks <= std::numeric_limits<int>::max()) {
        const int bx = std::min(chunk, block_threads);
        const dim3 block(unsigned(bx), unsigned(block_threads / bx));
        const std::size_t shared =
            RowStaging<T>(w.y.capacity(), w.x.capacity(), dst.width, src.width, chunk, per_pack)
                .bytes;
        if (direction == Direction::forward) {
          gather_rows_kernel<Direction::forward>
              <<<grid_for(tasks, 1), block, shared, stream>>>(w, src, dst, scale, packs, chunk);
        } else {
          gather_rows_kernel<Direction::inverse>
              <<<grid_for(tasks, 1), block, shared, stream>>>(w, src, dst, scale, packs, chunk);
        }
        check_launch(verb, "the gather kernel");
        return;
      }
    }
  }
  if (src.layout == Layout::nchw && dst.layout == Layout::nchw) {
    const PlaneTask t = plane_task(w, src, dst, direction);
    if (t.planes > 0) {
      if (direction == Direction::forward) {
        launch_planes<Direction::forward>(stream, t, w, src, dst, scale);
      } else {
        launch_planes<Direction::inverse>(stream, t, w, src, dst, scale);
      }
      check_launch(verb, "the plane gather kernel");
      return;
    }
  }
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

}  // namespace gpu_detail
}  // namespace ssb
