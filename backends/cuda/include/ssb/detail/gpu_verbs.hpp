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
//             sums c[w] and the total in row order: the host's bits. Checks the values.
//   walk      one block per (image, axis): one thread runs detail::segment_walk (the host's body
//             and bits) on copies in shared memory.
//   gather    NHWC maps whose channels fill 16-byte packs (the usual case): one block per
//             destination row and chunk of channels; y sums of every source column into shared
//             memory, then x sums (gather_rows_kernel). Otherwise one thread per destination
//             element (gather_kernel). Both in detail::gather_element's order, with the same bits.
//   dots      one block per y segment k, one group of 32 lanes per pair (k, l): D(k, l) of
//             backward.hpp, channels split across the lanes, then a fixed shuffle tree.
//   grads     one thread per segment: detail::segment_grad.
//   saliency  one block per image: detail::marginal_grad of both axes (two threads, on copies in
//             shared memory), then one thread per pixel.
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
constexpr std::int64_t min_blocks = 1024;  // blocks that keep an H100's 132 SMs busy

inline unsigned grid_for(std::int64_t items, std::int64_t per_block) {
  const std::int64_t blocks = (items + per_block - 1) / per_block;
  return unsigned(std::max<std::int64_t>(1, std::min<std::int64_t>(blocks, std::int64_t(1) << 20)));
}

// ---- compute_weights -------------------------------------------------------------------------

// Dynamic shared memory of the compute_weights and compute_weights_backward kernels: they stage
// what their serial parts read and write there (a serial loop over global memory waits on every
// load in turn), and work on global memory directly where the staging would not fit.
constexpr std::size_t staging_bytes = 48 * 1024;

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

// 16 bytes of storage elements: the unit of the NHWC fast path's loads and stores.
template <class S>
struct alignas(16) Pack {
  static constexpr int size = int(16 / sizeof(S));
  S v[size];
};

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
  extern __shared__ double staging[];
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
    for (int x = threadIdx.y; x < sw; x += blockDim.y) {
      for (int q = threadIdx.x; q < length; q += blockDim.x) {
        const Pack<S>* column = in + std::int64_t(x) * packs + q;
        Sums inner;
        for (int u = 0; u < V; ++u) inner.v[u] = T(0);
        for (int i = 0; i < ny; ++i) {
          const Pack<S> v = column[y_at[i]];
          const T wk = y_weight[i];
          for (int u = 0; u < V; ++u)
            inner.v[u] = term(i == 0, wk, T(gpu::widen(v.v[u])), inner.v[u]);
        }
        sums[x * chunk + q] = inner;
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

// Whether two maps (of one storage type) can be read and written in 16-byte packs: both NHWC,
// channels a multiple of Pack<S>::size, data 16-byte aligned.
template <class A, class B>
bool packs_fit(const FeatureMap<A>& a, const FeatureMap<B>& b) {
  using S = std::remove_const_t<A>;
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  return a.layout == Layout::nhwc && b.layout == Layout::nhwc && a.channels % Pack<S>::size == 0 &&
         b.channels % Pack<S>::size == 0 && aligned(a.data) && aligned(b.data);
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
// for every pair of segments of image n (kernels.hpp, "Pair dots"). One block per input row
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
  extern __shared__ double staging[];
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
  const bool packs = packs_fit(upstream, other);
  const std::int64_t rows = std::int64_t(w.batch) * w.y.in_size;
  const std::size_t shared = 2 * sizeof(std::int64_t) * std::size_t(w.x.capacity());
  const bool staged = shared <= staging_bytes;  // else (W + Wr > 3073) offsets from the weights
  if (direction == Direction::forward) {
    pair_dots_kernel<Direction::forward><<<grid_for(rows, 1), block, staged ? shared : 0, stream>>>(
        w, upstream, other, dots, packs, staged);
  } else {
    pair_dots_kernel<Direction::inverse><<<grid_for(rows, 1), block, staged ? shared : 0, stream>>>(
        w, upstream, other, dots, packs, staged);
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
  const std::size_t mass_bytes = sizeof(double) * (std::size_t(s.height) + std::size_t(s.width));
  const bool masses_staged = mass_bytes <= staging_bytes;
  masses_kernel<<<grid_for(s.batch, 1), block_threads, masses_staged ? mass_bytes : 0, stream>>>(
      s, weights, masses_staged);
  check_launch(verb, "the masses kernel");
  const std::size_t walk_bytes =
      std::max(WalkStaging<T>(s.height, out_h).bytes, WalkStaging<T>(s.width, out_w).bytes);
  const bool walk_staged = walk_bytes <= staging_bytes;
  walk_kernel<<<grid_for(2 * std::int64_t(s.batch), 1), 32, walk_staged ? walk_bytes : 0, stream>>>(
      weights, walk_staged);
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
  const bool marginal_staged = marginal_bytes <= staging_bytes;
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
