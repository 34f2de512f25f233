// ssbnet: the gather bodies for NCHW maps (see kernels.hpp for the formulas and the summation
// order, which is the same here, bit for bit).
//
// Small planes (channel_tile_fits): a block of channel_block planes is transposed into a
// channels-last tile, gathered by the NHWC row body (vectorised over the block), and transposed
// back; over large maps the next block's planes are prefetched meanwhile. Large planes: one plane
// at a time,
//   1. y sums, vectorised along source rows:  R[a][w] = sum_{k in range_y(a)} wy_k
//   src[source_y(k)][w]
//   2. transpose R (A x L) to Rt (L x A)
//   3. x sums, vectorised along destination rows: Ot[b][:] = sum_{l in range_x(b)} wx_l
//   Rt[source_x(l)][:]
//   4. dst[a][b] = scale * Ot[b][a]
// Float maps on AVX-512 targets take the packed body (planar_packed.hpp) where source and
// destination rows have at most 16 floats (inverse gathers: on planes under
// SSB_NCHW_LANES_MIN_PIXELS_INVERSE input pixels), else the lane body (below) from
// SSB_NCHW_LANES_MIN_PIXELS input pixels (forward gathers; _INVERSE for inverse ones). Every way,
// every sum starts from its first term and runs in ascending order, as kernels.hpp says. The pair
// dots of NCHW maps are in planar_dots.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#if defined(__AVX__) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
#include <immintrin.h>
#define SSB_PLANAR_AVX 1
#if defined(__AVX512F__)
#define SSB_PLANAR_AVX512 1
#endif
#endif

#include "kernels.hpp"
#include "pair_dot_rows.hpp"
#include "types.hpp"
#include "weights.hpp"

namespace ssb {
namespace detail {

// The first 64-byte aligned float at or after p (scratch of the lane bodies holds 16 floats more
// than they need, for this).
inline float* aligned_64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(p) + 63) & ~std::uintptr_t(63));
}

// Pixels of one plane on the input grid plus one on the sampled grid: a channels-last tile holds
// this many pixels of each of its channels.
template <class T>
SSB_HOST_DEVICE inline std::size_t both_grids_pixels(const Weights<T>& w) {
  return std::size_t(w.in_height()) * w.in_width() + std::size_t(w.out_height()) * w.out_width();
}

// Whether a channels-last tile of one block of planes (source and destination) stays within
// 256 KiB, the regime where the tile body beats the plane body.
template <class T>
SSB_HOST_DEVICE inline bool channel_tile_fits(const Weights<T>& w) {
  return both_grids_pixels(w) * channel_block * sizeof(T) <= (std::size_t(1) << 18);
}

// Elements of scratch that gather_plane or gather_channel_tile needs.
template <Direction D, class T>
SSB_HOST_DEVICE inline std::size_t plane_scratch_size(const Weights<T>& w) {
  const bool forward = D == Direction::forward;
  const std::size_t dst_h = std::size_t(forward ? w.out_height() : w.in_height());
  const std::size_t dst_w = std::size_t(forward ? w.out_width() : w.in_width());
  const std::size_t src_w = std::size_t(forward ? w.in_width() : w.out_width());
  if (channel_tile_fits(w)) return (both_grids_pixels(w) + src_w) * channel_block;
  return 2 * dst_h * src_w + dst_w * dst_h;
}

// Whether transpose (below) moves blocks of at least 8 x 8 floats by 8x8 AVX blocks only, the
// last block of each axis overlapping the one before, instead of finishing the edge element by
// element; 0 for comparisons. The channel tiles move 32 planes of 25, 36, 49 or 100 pixels and
// tiles of 9, 25, 36 or 49, whose edges were element by element. Same bits (a transpose). NCHW
// on the 5x5 to 12x12 bench shapes, Cascade Lake VM, openmp2, two runs of 2 and 3 rounds against
// d9d2b20 (bench/results/tried-2026-11-28-cascadelake.md): sample and sample_inverse 0.90-1.01x,
// the backward verbs 0.91-1.04x (one 1.16x, not seen again in the second run).
#ifndef SSB_TRANSPOSE_OVERLAP
#define SSB_TRANSPOSE_OVERLAP 1
#endif

#if defined(SSB_PLANAR_AVX)
// Rows 0..7 of `in` (8 floats each, `in_stride` apart) become columns of `out`.
inline void transpose_8x8(const float* in, std::int64_t in_stride, float* out,
                          std::int64_t out_stride) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in + i * in_stride);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(out + i * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(out + (i + 4) * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
#endif

// to[j * rows + i] = from[i * cols + j] for a rows x cols block with row strides `from_stride`
// and `to_stride`: the transposes between planes and channels-last tiles.
template <class T>
SSB_HOST_DEVICE inline void transpose(const T* from, std::int64_t from_stride, int rows,
                                      std::int64_t cols, T* to, std::int64_t to_stride) {
  std::int64_t j0 = 0;
#if defined(SSB_PLANAR_AVX)
  // At least 8 x 8: all by 8x8 blocks, the last block of each axis moved back so that it ends at
  // the edge (it overlaps the one before, whose elements it writes again, with the same values;
  // `from` and `to` never overlap).
  if (std::is_same<T, float>::value && SSB_TRANSPOSE_OVERLAP && rows >= 8 && cols >= 8) {
    for (j0 = 0;; j0 += 8) {
      if (j0 + 8 > cols) j0 = cols - 8;
      for (int i0 = 0;; i0 += 8) {
        if (i0 + 8 > rows) i0 = rows - 8;
        transpose_8x8(reinterpret_cast<const float*>(from) + i0 * from_stride + j0, from_stride,
                      reinterpret_cast<float*>(to) + j0 * to_stride + i0, to_stride);
        if (i0 + 8 == rows) break;
      }
      if (j0 + 8 == cols) return;
    }
  }
  if (std::is_same<T, float>::value) {
    const int rows8 = rows / 8 * 8;
    for (; j0 + 8 <= cols; j0 += 8) {
      for (int i0 = 0; i0 < rows8; i0 += 8) {
        transpose_8x8(reinterpret_cast<const float*>(from) + i0 * from_stride + j0, from_stride,
                      reinterpret_cast<float*>(to) + j0 * to_stride + i0, to_stride);
      }
      for (int i = rows8; i < rows; ++i) {
        for (std::int64_t j = j0; j < j0 + 8; ++j)
          to[j * to_stride + i] = from[i * from_stride + j];
      }
    }
  }
#endif
  for (std::int64_t j = j0; j < cols; ++j) {
    for (int i = 0; i < rows; ++i) to[j * to_stride + i] = from[i * from_stride + j];
  }
}

#if defined(SSB_VECTOR_EXTENSIONS)
// Share `a` of dst.height of the block of planes that follows the block ending at plane `c_end` of
// image n (the first block of image n + 1 after the last one; nothing after the last image): its
// source planes asked for reading, its destination planes for writing. gather_channel_tile calls
// it once per destination row, so that the next block, which the launchers give to the same
// thread, is in cache when its transposes run. A separate function: with this code inline, GCC
// inlined the whole tile body into gather_channel_tile, and the forward gathers on 5x5, 6x6 and
// 10x10 planes, which do not prefetch, took 1.07-1.15x their time (GCC 12, -O3 -march=native).
template <class T>
inline void prefetch_next_planes(const FeatureMap<const T>& src, const FeatureMap<T>& dst, int n,
                                 int c_end, int a) {
  const int next_n = c_end < src.channels ? n : n + 1, next_c = c_end < src.channels ? c_end : 0;
  if (next_n >= src.batch) return;
  const int cb = src.channels - next_c < channel_block ? src.channels - next_c : channel_block;
  const std::int64_t src_block = std::int64_t(src.height) * src.width * cb;
  const std::int64_t dst_block = std::int64_t(dst.height) * dst.width * cb;
  const std::int64_t src_begin = src_block * a / dst.height,
                     src_end = src_block * (a + 1) / dst.height;
  const std::int64_t dst_begin = dst_block * a / dst.height,
                     dst_end = dst_block * (a + 1) / dst.height;
  const T* s = src.data + (std::int64_t(next_n) * src.channels + next_c) * src.height * src.width;
  T* d = dst.data + (std::int64_t(next_n) * dst.channels + next_c) * dst.height * dst.width;
  prefetch_bytes(s + src_begin, (src_end - src_begin) * std::int64_t(sizeof(T)));
  prefetch_bytes_for_write(d + dst_begin, (dst_end - dst_begin) * std::int64_t(sizeof(T)));
}
#endif

// Planes c0 .. c0 + channel_block - 1 (or up to the last channel) of image n of NCHW maps, through
// a channels-last tile. `scratch` has plane_scratch_size elements. `prefetch_next`: ask the caches
// for the next block's planes meanwhile (host builds; prefetch_next_planes).
template <Direction D, class T>
SSB_HOST_DEVICE inline void gather_channel_tile(const Weights<T>& weights,
                                                const FeatureMap<const T>& src,
                                                const FeatureMap<T>& dst, int n, int c0, T scale,
                                                T* scratch, bool prefetch_next) {
  const int cb = src.channels - c0 < channel_block ? src.channels - c0 : channel_block;
  const std::int64_t src_pixels = std::int64_t(src.height) * src.width;
  const std::int64_t dst_pixels = std::int64_t(dst.height) * dst.width;
  T* tile_in = scratch;
  T* tile_out = tile_in + src_pixels * cb;
  const T* planes = src.data + (std::int64_t(n) * src.channels + c0) * src_pixels;
  transpose(planes, src_pixels, cb, src_pixels, tile_in, cb);
  const FeatureMap<const T> in(tile_in, 1, src.height, src.width, cb, Layout::nhwc);
  const FeatureMap<T> out(tile_out, 1, dst.height, dst.width, cb, Layout::nhwc);
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  for (int a = 0; a < dst.height; ++a) {
#if defined(SSB_VECTOR_EXTENSIONS)
    if (prefetch_next) prefetch_next_planes(src, dst, n, c0 + cb, a);
#endif
    gather_row_nhwc<D, T, false>(ay, ax, in, out, 0, a, scale);
  }
#if !defined(SSB_VECTOR_EXTENSIONS)
  (void)prefetch_next;
#endif
  T* planes_out = dst.data + (std::int64_t(n) * dst.channels + c0) * dst_pixels;
  transpose(tile_out, cb, int(dst_pixels), cb, planes_out, dst_pixels);
}

// Plane (n, c) of NCHW maps src -> dst. `scratch` has plane_scratch_size elements.
template <Direction D, class T>
SSB_HOST_DEVICE inline void gather_plane(const Weights<T>& weights, const FeatureMap<const T>& src,
                                         const FeatureMap<T>& dst, int n, int c, T scale,
                                         T* scratch) {
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  const int dst_h = dst.height, dst_w = dst.width, src_w = src.width;
  const T* plane = src.data + (std::int64_t(n) * src.channels + c) * src.height * src_w;
  T* out = dst.data + (std::int64_t(n) * dst.channels + c) * dst_h * dst_w;
  T* r = scratch;                            // [dst_h][src_w]
  T* rt = r + std::int64_t(dst_h) * src_w;   // [src_w][dst_h]
  T* ot = rt + std::int64_t(dst_h) * src_w;  // [dst_w][dst_h]
  for (int a = 0; a < dst_h; ++a) {
    sum_rows<D>(ay, range_begin<D>(ay, a), range_begin<D>(ay, a + 1), plane, src_w, src_w,
                r + std::int64_t(a) * src_w);
  }
  transpose(r, src_w, dst_h, src_w, rt, dst_h);
  for (int b = 0; b < dst_w; ++b) {
    sum_rows<D>(ax, range_begin<D>(ax, b), range_begin<D>(ax, b + 1), rt, dst_h, dst_h,
                ot + std::int64_t(b) * dst_h);
  }
  for (std::int64_t e = 0; e < std::int64_t(dst_w) * dst_h; ++e) ot[e] *= scale;
  transpose(ot, dst_h, dst_w, dst_h, out, dst_w);
}

#ifndef SSB_NCHW_LANES_MIN_PIXELS
#define SSB_NCHW_LANES_MIN_PIXELS 196
#endif
#ifndef SSB_NCHW_LANES_MIN_PIXELS_INVERSE
#define SSB_NCHW_LANES_MIN_PIXELS_INVERSE 196
#endif
// Whether the lane body's inverse gathers (sample_inverse, d_x) on source rows of up to 32
// columns run two planes at a time, two independent chains of the same plan. Measured on a
// Cascade Lake Xeon only (bench/results/ab-086cbaf-cascadelake.md): same-run bench A/Bs, NCHW
// sample_inverse 0.52-0.94x and sample_backward 0.83-0.93x (medians of 3 rounds) on the 14x14 to
// 28x28 maps, one thread out of cache 0.69-0.91x (8 of 9 runs). So it is on where GCC tunes for
// that core family (-march=native there, or -mtune=cascadelake and its kin), off elsewhere: the AMD
// EPYC VM where the other thresholds were measured was not available to measure it, and four planes
// at once had cost it 1.7x out of cache (forward, bench/results/tried-2026-11-27-nchw-backward.md).
#ifndef SSB_NCHW_LANE_PAIRS_INVERSE
#if defined(__tune_skylake_avx512__) || defined(__tune_cascadelake__) || \
    defined(__tune_cooperlake__)
#define SSB_NCHW_LANE_PAIRS_INVERSE 1
#else
#define SSB_NCHW_LANE_PAIRS_INVERSE 0
#endif
#endif

#if defined(SSB_PLANAR_AVX512)
// The lane body of float NCHW maps (AVX-512): a block of planes of one image, one destination row
// at a time (of one plane; of two side by side under SSB_NCHW_LANE_PAIRS_INVERSE):
//   1. y sums of the row, R[w] = sum_{k in range_y(a)} wy_k src[source_y(k)][w], in registers when
//      the source row has at most 32 columns (two zmm), else in scratch;
//   2. x sums of 16 destination columns per register: slot s of column b is the s-th segment of
//      range_x(b), its source column picked from R by a two-register permute (vpermt2ps) or, when
//      the 16 columns' sources span 32 or more columns, by a gather; the slots are added in
//      ascending order under per-lane masks, so each column gets exactly the sum of kernels.hpp
//      (first term, then ascending, then the scale): the NHWC bodies' bits.
// The plan of the slots (indices, weights, masks) depends only on the image's x segments and is
// built once per task.
// Measured on the bench shapes (2-core AVX-512 EPYC, 2 threads, medians of 3 runs alternating
// with the channel-tile build), the lane body's time over the channel tiles' was: sample 0.39-0.65
// from 14x14 planes up, 1.03-1.16 on 12x12, 1.36 on 10x10; sample_inverse 0.53-0.85 from 16x16 up
// (but 1.12 on 32x32x2048 -> 18), 1.15 on 14x14, 1.5-2 on 10x10 and 12x12. (One thread, planes
// of 8x8 and smaller: 1.2-3.) Measured again at 6931b23 with page-aligned maps
// (bench/results/ab-6931b23-lane-thresholds.md): the lane body took sample_inverse on 14x14x1024
// -> 8 to 0.55-0.66x its time, sample_backward (whose d_x is an inverse gather) to 0.72-0.86x;
// on 12x12x1024 -> 7 it took sample 1.06-1.08x and sample_inverse 1.29-1.31x. So launch_gather
// takes the lane body from SSB_NCHW_LANES_MIN_PIXELS input pixels for forward gathers (sample,
// d_y) and from SSB_NCHW_LANES_MIN_PIXELS_INVERSE for inverse ones (sample_inverse, d_x): 14x14
// planes on, both ways.
struct alignas(64) LaneSlot {
  std::int32_t index[16];  // source column, minus the block's base (permutes) or absolute (gather)
  float weight[16];        // 0 where the lane has no such segment
  std::uint32_t mask;      // lanes that have this segment
};
struct LaneBlock {
  int first_slot;  // in the LaneSlot array
  int slots;       // the most segments any of its columns has
  int base;        // first source column of the permute window
  bool gather;     // the sources span 32 columns or more: gather instead of permute
};

// Asks the caches for every 64-byte line that holds one of the `count` floats from p, with
// intent to write where Write. Always inline, the prefetches written out here: GCC 12 finds a
// called function that only prefetches free of side effects and drops the call (so
// prefetch_next_planes' calls leave no instruction); inlined, the prefetches stay.
template <bool Write = false>
__attribute__((always_inline)) inline void prefetch_lines(const float* p, std::int64_t count) {
  const std::uintptr_t end = reinterpret_cast<std::uintptr_t>(p + count);
  for (std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t(63); a < end;
       a += 64) {
    __builtin_prefetch(reinterpret_cast<const void*>(a), Write ? 1 : 0);
  }
}

// The first min(n, 16) lanes (none for n <= 0).
inline __mmask16 first_lanes(std::int64_t n) {
  return n <= 0 ? __mmask16(0) : n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u);
}

// The 16 floats at `in`: a whole-register load where they lie before `end` (the end of the
// tensor), else only those before it, the others 0. The lane bodies read rows this way: lanes past
// a row are never picked by their permutes, and whole-register loads keep them fast (masked loads
// that miss the cache were 2-4x slower here).
inline __m512 load16_before(const float* in, const float* end) {
  const std::int64_t left = end - in;
  return left >= 16 ? _mm512_loadu_ps(in) : _mm512_maskz_loadu_ps(first_lanes(left), in);
}

// load16_before when Checked, else a whole-register load (the caller knows the 16 floats lie
// before the end of the tensor). The lane bodies check once per plane (or group of planes)
// whether any of its loads can reach the end, and take the unchecked form where none can: two
// compares and branches less per load (NCHW sample on 20x20 to 32x32 planes, one thread, in
// cache: 0.71-0.87x the time; bench/results/ab-s30-unchecked-loads.md).
template <bool Checked>
inline __m512 load16_row(const float* in, const float* end) {
  return Checked ? load16_before(in, end) : _mm512_loadu_ps(in);
}

// Blocks of lane_plan for `dst_w` destination columns, and an upper bound on its slots.
inline int lane_blocks(int dst_w) {
  return (dst_w + 15) / 16;
}
inline int lane_slots_bound(const AxisImage<float>& ax) {
  return ax.count();
}

// Fills blocks[0 .. lane_blocks(dst_w)) and their slots. `in_registers`: R is held in two
// registers (source rows of at most 32 columns), so every permute window starts at column 0.
template <Direction D>
inline void lane_plan(const AxisImage<float>& ax, int dst_w, bool in_registers, LaneBlock* blocks,
                      LaneSlot* slots) {
  int next = 0;
  for (int j = 0; j < lane_blocks(dst_w); ++j) {
    const int q0 = 16 * j, q1 = q0 + 16 < dst_w ? q0 + 16 : dst_w;
    int most = 0;
    for (int q = q0; q < q1; ++q) {
      const int count = range_begin<D>(ax, q + 1) - range_begin<D>(ax, q);
      most = count > most ? count : most;
    }
    LaneBlock& block = blocks[j];
    block.first_slot = next;
    block.slots = most;
    block.base = 0;
    block.gather = false;
    const int k0 = range_begin<D>(ax, q0), k1 = range_begin<D>(ax, q1);
    if (!in_registers && k0 < k1) {
      // The window starts at a whole vector of the row where the block's sources fit that
      // window: its two loads then match two of lane_y_sums' stores, which the store buffer
      // forwards. A window from any other column spans two stores and waits for both to reach
      // the cache (perf: about a sixth of NCHW sample_inverse's time on 128x128 <- 72x72 planes
      // sat on those loads).
      const int lo = source_index<D>(ax, k0), hi = source_index<D>(ax, k1 - 1);
      if (hi - (lo & ~15) < 32) {
        block.base = lo & ~15;
      } else if (hi - lo < 32) {
        block.base = lo;
      } else {
        block.gather = true;
      }
    }
    for (int s = 0; s < most; ++s) {
      LaneSlot& slot = slots[next + s];
      slot.mask = 0;
      for (int u = 0; u < 16; ++u) {
        const int q = q0 + u;
        const int k = q < q1 ? range_begin<D>(ax, q) + s : 0;
        if (q < q1 && k < range_begin<D>(ax, q + 1)) {
          slot.index[u] = source_index<D>(ax, k) - block.base;
          slot.weight[u] = ax.weight[k];
          slot.mask |= 1u << u;
        } else {
          slot.index[u] = 0;
          slot.weight[u] = 0.0f;
        }
      }
    }
    next += most;
  }
}

// The x sums of one destination row (step 2 above): out[b] = scale * sum_l wx_l R[source_x(l)]
// for b < dst_w. R is (lo, hi) when InRegisters, else `row` (readable up to its last permute
// window: 32 floats of padding). A partial last block is stored whole (zeros past dst_w) when
// that stays before `store_end`: the caller writes its region in ascending order, so the next
// row overwrites them. (Masked stores that miss the cache were slow, as masked loads were.)
template <bool InRegisters>
inline void lane_x_sums(const LaneBlock* blocks, const LaneSlot* slots, int dst_w, __m512 lo,
                        __m512 hi, const float* row, float scale, float* out,
                        const float* store_end) {
  for (int j = 0; j < lane_blocks(dst_w); ++j) {
    const LaneBlock& block = blocks[j];
    if (!InRegisters && !block.gather) {
      lo = _mm512_loadu_ps(row + block.base);
      hi = _mm512_loadu_ps(row + block.base + 16);
    }
    __m512 acc = _mm512_setzero_ps();
    for (int s = 0; s < block.slots; ++s) {
      const LaneSlot& slot = slots[block.first_slot + s];
      const __m512i index = _mm512_load_si512(slot.index);
      const __mmask16 mask = __mmask16(slot.mask);
      const __m512 term = !InRegisters && block.gather
                              ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, index, row, 4)
                              : _mm512_permutex2var_ps(lo, index, hi);
      const __m512 weight = _mm512_load_ps(slot.weight);
      // The arithmetic of the other bodies, written with the same operators (so the compiler
      // contracts it, or not, as it does there): the first term, then acc + w * term.
      acc = s == 0 ? _mm512_maskz_mov_ps(mask, weight * term)
                   : _mm512_mask_mov_ps(acc, mask, acc + weight * term);
    }
    if (out + 16 * j + 16 <= store_end) {
      _mm512_storeu_ps(out + 16 * j, scale * acc);
    } else {
      _mm512_mask_storeu_ps(out + 16 * j, first_lanes(dst_w - 16 * j), scale * acc);
    }
  }
}

// lane_x_sums<true> for the rows of two planes at once (the same plan): (lo0, hi0) -> out0 and
// (lo1, hi1) -> out1, each with lane_x_sums' arithmetic; whole-register stores of out0 stay before
// end0, of out1 before end1.
inline void lane_x_sums_pair(const LaneBlock* blocks, const LaneSlot* slots, int dst_w, __m512 lo0,
                             __m512 hi0, __m512 lo1, __m512 hi1, float scale, float* out0,
                             float* out1, const float* end0, const float* end1) {
  for (int j = 0; j < lane_blocks(dst_w); ++j) {
    const LaneBlock& block = blocks[j];
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int s = 0; s < block.slots; ++s) {
      const LaneSlot& slot = slots[block.first_slot + s];
      const __m512i index = _mm512_load_si512(slot.index);
      const __mmask16 mask = __mmask16(slot.mask);
      const __m512 term0 = _mm512_permutex2var_ps(lo0, index, hi0);
      const __m512 term1 = _mm512_permutex2var_ps(lo1, index, hi1);
      const __m512 weight = _mm512_load_ps(slot.weight);
      acc0 = s == 0 ? _mm512_maskz_mov_ps(mask, weight * term0)
                    : _mm512_mask_mov_ps(acc0, mask, acc0 + weight * term0);
      acc1 = s == 0 ? _mm512_maskz_mov_ps(mask, weight * term1)
                    : _mm512_mask_mov_ps(acc1, mask, acc1 + weight * term1);
    }
    if (out0 + 16 * j + 16 <= end0) {
      _mm512_storeu_ps(out0 + 16 * j, scale * acc0);
    } else {
      _mm512_mask_storeu_ps(out0 + 16 * j, first_lanes(dst_w - 16 * j), scale * acc0);
    }
    if (out1 + 16 * j + 16 <= end1) {
      _mm512_storeu_ps(out1 + 16 * j, scale * acc1);
    } else {
      _mm512_mask_storeu_ps(out1 + 16 * j, first_lanes(dst_w - 16 * j), scale * acc1);
    }
  }
}

// Vectors [v0, v0 + V) of the y sums of one destination row (step 1 above, rows wider than 32):
// row[e] = sum_{k = k0 .. k1-1} w_k src[source_y(k)][e] from the first term, in V registers,
// reading the source rows one after the other.
template <Direction D, int V, bool Checked>
inline void lane_y_sums_block(const AxisImage<float>& ay, int k0, int k1, const float* plane,
                              int src_w, const float* src_end, int v0, float* row) {
  __m512 acc[V];
  const float* first = plane + std::int64_t(source_index<D>(ay, k0)) * src_w + 16 * v0;
  const __m512 w0 = _mm512_set1_ps(ay.weight[k0]);
  for (int v = 0; v < V; ++v) {
    acc[v] = w0 * load16_row<Checked>(first + 16 * v, src_end);
#if defined(SSB_FIRST_TERM)
    SSB_FIRST_TERM(acc[v]);
#endif
  }
  for (int k = k0 + 1; k < k1; ++k) {
    const float* in = plane + std::int64_t(source_index<D>(ay, k)) * src_w + 16 * v0;
    const __m512 w = _mm512_set1_ps(ay.weight[k]);
    for (int v = 0; v < V; ++v) acc[v] = acc[v] + w * load16_row<Checked>(in + 16 * v, src_end);
  }
  for (int v = 0; v < V; ++v) _mm512_store_ps(row + 16 * (v0 + v), acc[v]);
}

// The y sums of one destination row into `row` (64-byte aligned), in whole vectors, by blocks of
// up to 8 registers. Lanes past the end of the source row hold sums of the next source rows' first
// columns (or zeros at the end of the tensor); no permute picks them. Each vector is stored once:
// sum_rows, which this replaced, went through memory once per term (one thread, NCHW
// sample_inverse, in cache: 1.1-1.25x the time on 64x64 <- 36x36 and 80x80 <- 40x40 planes).
template <Direction D, bool Checked>
inline void lane_y_sums(const AxisImage<float>& ay, int k0, int k1, const float* plane, int src_w,
                        const float* src_end, float* row) {
  const int vectors = (src_w + 15) / 16;
  int v0 = 0;
  for (; v0 + 8 <= vectors; v0 += 8) {
    lane_y_sums_block<D, 8, Checked>(ay, k0, k1, plane, src_w, src_end, v0, row);
  }
  switch (vectors - v0) {
#define SSB_LANE_Y_SUMS(V)                                                        \
  case V:                                                                         \
    lane_y_sums_block<D, V, Checked>(ay, k0, k1, plane, src_w, src_end, v0, row); \
    break;
    SSB_LANE_Y_SUMS(1)
    SSB_LANE_Y_SUMS(2)
    SSB_LANE_Y_SUMS(3)
    SSB_LANE_Y_SUMS(4)
    SSB_LANE_Y_SUMS(5)
    SSB_LANE_Y_SUMS(6)
    SSB_LANE_Y_SUMS(7)
#undef SSB_LANE_Y_SUMS
    default:
      break;
  }
}

// The y sums of destination row a of one plane whose source rows have at most 32 columns, in two
// registers (step 1 above); the row's y range is not empty.
template <Direction D, bool Checked>
inline void lane_row_y_sums(const AxisImage<float>& ay, int a, const float* plane, int src_w,
                            const float* src_end, __m512& lo, __m512& hi) {
  const int k0 = range_begin<D>(ay, a), k1 = range_begin<D>(ay, a + 1);
  const auto load2 = [&](const float* in, __m512& l, __m512& h) {
    l = load16_row<Checked>(in, src_end);
    h = src_w <= 16 ? _mm512_setzero_ps() : load16_row<Checked>(in + 16, src_end);
  };
  const __m512 w0 = _mm512_set1_ps(ay.weight[k0]);
  __m512 l, h;
  load2(plane + std::int64_t(source_index<D>(ay, k0)) * src_w, l, h);
  lo = w0 * l;
  hi = w0 * h;
  for (int k = k0 + 1; k < k1; ++k) {
    const __m512 w = _mm512_set1_ps(ay.weight[k]);
    load2(plane + std::int64_t(source_index<D>(ay, k)) * src_w, l, h);
    lo = lo + w * l;
    hi = hi + w * h;
  }
}

// One plane whose source rows have at most 32 columns (y sums in registers), row by row.
template <Direction D, bool Checked>
inline void lane_plane_in_registers(const AxisImage<float>& ay, const LaneBlock* blocks,
                                    const LaneSlot* slots, const float* plane, int src_w, int dst_h,
                                    int dst_w, const float* src_end, float scale, float* out,
                                    const float* out_end) {
  for (int a = 0; a < dst_h; ++a, out += dst_w) {
    if (range_begin<D>(ay, a) == range_begin<D>(ay, a + 1)) {
      for (int b = 0; b < dst_w; ++b) out[b] = 0.0f;
      continue;
    }
    __m512 lo, hi;
    lane_row_y_sums<D, Checked>(ay, a, plane, src_w, src_end, lo, hi);
    lane_x_sums<true>(blocks, slots, dst_w, lo, hi, nullptr, scale, out, out_end);
  }
}

// Planes `plane` and `plane + src_plane` side by side (SSB_NCHW_LANE_PAIRS_INVERSE): each row's
// sums of each plane as lane_plane_in_registers forms them, the two planes' chains together.
// The y sums are lane_row_y_sums' with the two planes' terms interleaved in the code: two calls
// of lane_row_y_sums instead took NCHW sample_inverse to 1.10-1.20x (Cascade Lake VM, one thread,
// in cache, 14x14 to 32x32 planes; bench/results/ab-s30-unchecked-loads.md).
template <Direction D, bool Checked>
inline void lane_plane_pair_in_registers(const AxisImage<float>& ay, const LaneBlock* blocks,
                                         const LaneSlot* slots, const float* plane,
                                         std::int64_t src_plane, int src_w, int dst_h, int dst_w,
                                         const float* src_end, float scale, float* out,
                                         std::int64_t dst_plane, const float* out_end) {
  // The first plane's stores stay within it: the second plane's first rows are written before
  // the first plane's last.
  const float* const end0 = out + dst_plane;
  for (int a = 0; a < dst_h; ++a, out += dst_w) {
    if (range_begin<D>(ay, a) == range_begin<D>(ay, a + 1)) {
      for (int b = 0; b < dst_w; ++b) out[b] = out[b + dst_plane] = 0.0f;
      continue;
    }
    const int k0 = range_begin<D>(ay, a), k1 = range_begin<D>(ay, a + 1);
    const auto load2 = [&](const float* in, __m512& l, __m512& h) {
      l = load16_row<Checked>(in, src_end);
      h = src_w <= 16 ? _mm512_setzero_ps() : load16_row<Checked>(in + 16, src_end);
    };
    const float* first = plane + std::int64_t(source_index<D>(ay, k0)) * src_w;
    const __m512 w0 = _mm512_set1_ps(ay.weight[k0]);
    __m512 lo0, hi0, lo1, hi1, l, h;
    load2(first, l, h);
    lo0 = w0 * l;
    hi0 = w0 * h;
    load2(first + src_plane, l, h);
    lo1 = w0 * l;
    hi1 = w0 * h;
    for (int k = k0 + 1; k < k1; ++k) {
      const float* in = plane + std::int64_t(source_index<D>(ay, k)) * src_w;
      const __m512 w = _mm512_set1_ps(ay.weight[k]);
      load2(in, l, h);
      lo0 = lo0 + w * l;
      hi0 = hi0 + w * h;
      load2(in + src_plane, l, h);
      lo1 = lo1 + w * l;
      hi1 = hi1 + w * h;
    }
    lane_x_sums_pair(blocks, slots, dst_w, lo0, hi0, lo1, hi1, scale, out, out + dst_plane, end0,
                     out_end);
  }
}

// Planes c0 .. c0 + count - 1 of image n of float NCHW maps, by the lane body. `scratch` has
// src.width + 48 floats (the row of y sums, 64-byte aligned within it, when the source rows are
// wider than 32), `blocks` and `slots` the sizes of lane_blocks and lane_slots_bound.
template <Direction D>
inline void gather_planes_lanes(const Weights<float>& weights, const FeatureMap<const float>& src,
                                const FeatureMap<float>& dst, int n, int c0, int count, float scale,
                                float* scratch, LaneBlock* blocks, LaneSlot* slots) {
  const AxisImage<float> ay = weights.y.image(n), ax = weights.x.image(n);
  const int src_w = src.width, dst_h = dst.height, dst_w = dst.width;
  const std::int64_t src_plane = std::int64_t(src.height) * src_w;
  const std::int64_t dst_plane = std::int64_t(dst_h) * dst_w;
  const bool in_registers = src_w <= 32;
  lane_plan<D>(ax, dst_w, in_registers, blocks, slots);
  float* const row = aligned_64(scratch);
  if (!in_registers) {
    for (int e = src_w; e < src_w + 32; ++e) row[e] = 0.0f;
  }
  const float* src_end = src.data + std::int64_t(src.batch) * src.channels * src_plane;
  const float* out_end = dst.data + (std::int64_t(n) * dst.channels + c0 + count) * dst_plane;
  int c = c0;
  if (SSB_NCHW_LANE_PAIRS_INVERSE && in_registers && D == Direction::inverse) {
    // Two planes at a time (see SSB_NCHW_LANE_PAIRS_INVERSE): the same sums as below, in the
    // same order, for planes c and c + 1 side by side.
    for (; c + 2 <= c0 + count; c += 2) {
      const float* plane = src.data + (std::int64_t(n) * src.channels + c) * src_plane;
      float* out = dst.data + (std::int64_t(n) * dst.channels + c) * dst_plane;
      if (src_end - plane >= 2 * src_plane + 32) {
        lane_plane_pair_in_registers<D, false>(ay, blocks, slots, plane, src_plane, src_w, dst_h,
                                               dst_w, src_end, scale, out, dst_plane, out_end);
      } else {
        lane_plane_pair_in_registers<D, true>(ay, blocks, slots, plane, src_plane, src_w, dst_h,
                                              dst_w, src_end, scale, out, dst_plane, out_end);
      }
    }
  }
  for (; c < c0 + count; ++c) {
    const float* plane = src.data + (std::int64_t(n) * src.channels + c) * src_plane;
    float* out = dst.data + (std::int64_t(n) * dst.channels + c) * dst_plane;
    if (in_registers) {
      // Unchecked loads where every whole-register load of the plane's rows (up to 32 floats
      // from a row's start) stays before the end of the tensor; else the checked form.
      if (src_end - plane >= src_plane + 32) {
        lane_plane_in_registers<D, false>(ay, blocks, slots, plane, src_w, dst_h, dst_w, src_end,
                                          scale, out, out_end);
      } else {
        lane_plane_in_registers<D, true>(ay, blocks, slots, plane, src_w, dst_h, dst_w, src_end,
                                         scale, out, out_end);
      }
      continue;
    }
    // Rows wider than 32: the loads of lane_y_sums reach at most 15 floats past a row.
    const bool checked = src_end - plane < src_plane + 16;
    for (int a = 0; a < dst_h; ++a, out += dst_w) {
      const int k0 = range_begin<D>(ay, a), k1 = range_begin<D>(ay, a + 1);
      if (k0 == k1) {
        for (int b = 0; b < dst_w; ++b) out[b] = 0.0f;
        continue;
      }
      if (checked) {
        lane_y_sums<D, true>(ay, k0, k1, plane, src_w, src_end, row);
      } else {
        lane_y_sums<D, false>(ay, k0, k1, plane, src_w, src_end, row);
      }
      lane_x_sums<false>(blocks, slots, dst_w, _mm512_setzero_ps(), _mm512_setzero_ps(), row, scale,
                         out, out_end);
    }
  }
}

#endif

}  // namespace detail
}  // namespace ssb
