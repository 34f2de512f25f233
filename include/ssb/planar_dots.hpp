// ssbnet: the pair dots of NCHW maps (the weight gradients' D(k, l) of backward.hpp, for maps
// whose layout is NCHW on both grids); planar.hpp has their gathers, and the helpers both share.
//
// Planes whose groups of dot_lanes channels fit a tile take tile_pair_dots (channels-last tiles,
// the NHWC pair dots' bits). Larger float planes on AVX-512 targets take the lane bodies: one task
// per chunk of segments where rows have at most 32 columns (chunk_pair_dots_lanes), one per input
// row where they are wider (row_pair_dots_lanes). Other larger planes take the channel tiles or
// one plane at a time (plane_pair_dots).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels.hpp"
#include "pair_dot_rows.hpp"
#include "planar.hpp"
#include "types.hpp"
#include "weights.hpp"

namespace ssb {
namespace detail {

#if defined(SSB_PLANAR_AVX512)
// The lane bodies of the pair dots: 16 x segments per register, the source and `other` columns of
// each segment picked from the two rows by permutes. A block of 16 segments spans at most 16
// columns of either grid (each segment moves the source or the destination column by at most
// one, MATH.md, "Segments"), so a 16-column window of each row, at the block's first columns,
// serves it; rows of at most 32 columns are held whole (two registers, bases 0).
struct alignas(64) DotBlock {
  std::int32_t src_index[16];    // source column minus src_base
  std::int32_t other_index[16];  // the same on the destination grid
  int src_base, other_base;
};

// Fills blocks[0 .. lane_blocks(count)) for the image's `count` x segments: block j holds
// segments 16j .. 16j + 15 (the last one repeated past count). `windows`: indices from the
// block's first source and destination columns (16-column windows), else from column 0.
template <Direction D>
inline void plan_dot_blocks(const AxisImage<float>& ax, int count, bool windows, DotBlock* blocks) {
  for (int j = 0; j < lane_blocks(count); ++j) {
    DotBlock& b = blocks[j];
    const int l0 = 16 * j, l1 = l0 + 16 < count ? l0 + 16 : count;
    b.src_base = windows ? source_index<D>(ax, l0) : 0;
    b.other_base = windows ? dest_index<D>(ax, l0) : 0;
    for (int u = 0; u < 16; ++u) {
      const int l = l0 + u < l1 ? l0 + u : l1 - 1;
      b.src_index[u] = source_index<D>(ax, l) - b.src_base;
      b.other_index[u] = dest_index<D>(ax, l) - b.other_base;
    }
  }
}

// The pair dots of y segments k0 .. k1 - 1 of image n for float NCHW maps whose rows have at
// most 32 columns: dots[k][l] = sum_c x * y from 0, channels ascending (x and y the permuted
// columns; plane_pair_dots' sums in its order), channels outermost. Each channel's planes are read
// once for all the segments, whose rows then stay in the L1 cache, and the rows dots_prefetch
// channels ahead are asked for; the partial sums wait in `acc` (dots_chunk rows of
// lane_blocks(capacity_x) registers, 64-byte aligned) from channel to channel. `dots` is the
// image's pair dots, [capacity_y][capacity_x].
//
// It replaced one task per segment that read the segment's two rows of every channel, over and
// over from segment to segment: where planes are 4 KiB apart (32x32) those rows of all channels
// fall in the same sets of the L1 cache. Same bits. Same-run A/B, openmp2, both orders
// (bench/results/ab-02feeac-chunk-dots.md): the NCHW backward verbs and round trip 0.58-0.80x on
// 32x32x2048 -> 18, 0.74-0.93x on 32x32x512 -> 18, 0.81-0.98x on 20x20 to 28x28 planes (NHWC
// controls 0.87-1.03x).
constexpr int dots_chunk = 16;
// Channels ahead whose rows the chunk and row bodies ask the caches for (dots_prefetch).
#ifndef SSB_DOTS_PREFETCH
#define SSB_DOTS_PREFETCH 8
#endif
constexpr int dots_prefetch = SSB_DOTS_PREFETCH;

template <Direction D>
inline void chunk_pair_dots_lanes(const Weights<float>& weights, const FeatureMap<const float>& src,
                                  const FeatureMap<const float>& other, int n, int k0, int k1,
                                  float* dots, int cap_x, DotBlock* blocks, float* acc) {
  const AxisImage<float> ay = weights.y.image(n), ax = weights.x.image(n);
  const int count = ax.count();
  const int nblocks = lane_blocks(count);
  plan_dot_blocks<D>(ax, count, false, blocks);
  const int row_floats = 16 * nblocks;
  for (int e = 0; e < (k1 - k0) * row_floats; ++e) acc[e] = 0.0f;
  const int src_w = src.width, other_w = other.width;
  const std::int64_t src_plane = std::int64_t(src.height) * src_w;
  const std::int64_t other_plane = std::int64_t(other.height) * other_w;
  const float* src_end = src.data + std::int64_t(src.batch) * src.channels * src_plane;
  const float* other_end = other.data + std::int64_t(other.batch) * other.channels * other_plane;
  const float* src_image = src.data + std::int64_t(n) * src.channels * src_plane;
  const float* other_image = other.data + std::int64_t(n) * other.channels * other_plane;
  // The rows the segments read (source_index and dest_index do not decrease with k).
  const std::int64_t s_first = std::int64_t(source_index<D>(ay, k0)) * src_w;
  const int s_count = (source_index<D>(ay, k1 - 1) + 1) * src_w - int(s_first);
  const std::int64_t o_first = std::int64_t(dest_index<D>(ay, k0)) * other_w;
  const int o_count = (dest_index<D>(ay, k1 - 1) + 1) * other_w - int(o_first);
  for (int c = 0; c < src.channels; ++c) {
    const float* s_plane = src_image + c * src_plane;
    const float* o_plane = other_image + c * other_plane;
    if (dots_prefetch > 0 && c + dots_prefetch < src.channels) {
      prefetch_lines(s_plane + dots_prefetch * src_plane + s_first, s_count);
      prefetch_lines(o_plane + dots_prefetch * other_plane + o_first, o_count);
    }
    for (int k = k0; k < k1; ++k) {
      const float* s = s_plane + std::int64_t(source_index<D>(ay, k)) * src_w;
      const float* o = o_plane + std::int64_t(dest_index<D>(ay, k)) * other_w;
      const __m512 s_lo = load16_before(s, src_end), s_hi = load16_before(s + 16, src_end);
      const __m512 o_lo = load16_before(o, other_end), o_hi = load16_before(o + 16, other_end);
      float* a = acc + (k - k0) * row_floats;
      for (int j = 0; j < nblocks; ++j) {
        const DotBlock& b = blocks[j];
        const __m512 x = _mm512_permutex2var_ps(s_lo, _mm512_load_si512(b.src_index), s_hi);
        const __m512 y = _mm512_permutex2var_ps(o_lo, _mm512_load_si512(b.other_index), o_hi);
        _mm512_store_ps(a + 16 * j, _mm512_load_ps(a + 16 * j) + x * y);
      }
    }
  }
  for (int k = k0; k < k1; ++k) {
    const float* a = acc + (k - k0) * row_floats;
    float* d = dots + std::int64_t(k) * cap_x;
    for (int l = 0; l < count; ++l) d[l] = a[l];
  }
}

// The pair dots of the y segments of input row h of image n for float NCHW maps whose rows are
// wider than 32 columns (16-column windows; chunk_pair_dots_lanes' sums and order, so its bits).
// The segments of row h (y.in_begin[h] .. y.in_begin[h + 1]) share their row of the input-grid
// map, and go together, up to dots_run at a time: that row is read and permuted once per channel
// for all of them, and their rows of the other map are consecutive. The rows dots_prefetch
// channels ahead are asked for: a row and the next channel's are a plane apart (16 KiB or more
// here), which the hardware prefetchers did not follow. `dots` is the image's pair dots,
// [capacity_y][capacity_x]. On 64x64 and 128x128 planes (COCO shapes, openmp2) one task per
// segment had taken the NCHW backward verbs to 1.75-1.96x this one's time: rows 64 KiB apart fall
// in the same sets of the L1 and L2 caches, so the next segment's reads of the same rows missed
// again (bench/results/ab-f252a65-row-dots.md).
constexpr int dots_run = 4;

template <Direction D>
inline void row_pair_dots_lanes(const Weights<float>& weights, const FeatureMap<const float>& src,
                                const FeatureMap<const float>& other, int n, int h, float* dots,
                                int cap_x, DotBlock* blocks) {
  const AxisImage<float> ay = weights.y.image(n), ax = weights.x.image(n);
  const int k_begin = ay.in_begin[h], k_end = ay.in_begin[h + 1];
  if (k_begin == k_end) return;
  const int count = ax.count();
  const int nblocks = lane_blocks(count);
  // The input-grid map is the source of forward gathers and `other` of inverse ones. Its row
  // ("shared") is row h for every segment here; the other map ("own") has one row per segment.
  constexpr bool shared_is_src = D == Direction::forward;
  const FeatureMap<const float>& shared = shared_is_src ? src : other;
  const FeatureMap<const float>& own = shared_is_src ? other : src;
  plan_dot_blocks<D>(ax, count, true, blocks);
  const auto shared_base = [](const DotBlock& b) {
    return shared_is_src ? b.src_base : b.other_base;
  };
  const auto own_base = [](const DotBlock& b) { return shared_is_src ? b.other_base : b.src_base; };
  const auto shared_index = [](const DotBlock& b) {
    return _mm512_load_si512(shared_is_src ? b.src_index : b.other_index);
  };
  const auto own_index = [](const DotBlock& b) {
    return _mm512_load_si512(shared_is_src ? b.other_index : b.src_index);
  };
  const int shared_w = shared.width, own_w = own.width;
  const std::int64_t shared_plane = std::int64_t(shared.height) * shared_w;
  const std::int64_t own_plane = std::int64_t(own.height) * own_w;
  const int channels = shared.channels;
  const float* shared_row =
      shared.data + std::int64_t(n) * channels * shared_plane + std::int64_t(h) * shared_w;
  const float* shared_end = shared.data + std::int64_t(shared.batch) * channels * shared_plane;
  const float* own_end = own.data + std::int64_t(own.batch) * channels * own_plane;
  for (int k0 = k_begin; k0 < k_end; k0 += dots_run) {
    const int run = k_end - k0 < dots_run ? k_end - k0 : dots_run;
    // Row out_index[k0] of the own map; the run's other segments take the rows after it (within
    // an input row, out_index goes up by one from segment to segment).
    const float* own_row =
        own.data + std::int64_t(n) * channels * own_plane + std::int64_t(ay.out_index[k0]) * own_w;
    for (int j0 = 0; j0 < nblocks; j0 += 4) {
      const int group = nblocks - j0 < 4 ? nblocks - j0 : 4;
      __m512 acc[dots_run][4];
      for (int r = 0; r < dots_run; ++r) {
        for (int g = 0; g < 4; ++g) acc[r][g] = _mm512_setzero_ps();
      }
      // The columns the group reads of each row: from its first window to the end of its last.
      const int shared_first = shared_base(blocks[j0]);
      const int shared_cols = shared_base(blocks[j0 + group - 1]) + 16 - shared_first;
      const int own_first = own_base(blocks[j0]);
      const int own_cols = own_base(blocks[j0 + group - 1]) + 16 - own_first;
      for (int c = 0; c < channels; ++c) {
        const float* sh = shared_row + c * shared_plane;
        const float* ow = own_row + c * own_plane;
        if (dots_prefetch > 0 && c + dots_prefetch < channels) {
          prefetch_lines(sh + dots_prefetch * shared_plane + shared_first, shared_cols);
          for (int r = 0; r < run; ++r) {
            prefetch_lines(ow + dots_prefetch * own_plane + r * own_w + own_first, own_cols);
          }
        }
        for (int g = 0; g < 4; ++g) {
          if (g >= group) break;
          const DotBlock& b = blocks[j0 + g];
          const __m512 sv = load16_before(sh + shared_base(b), shared_end);
          const __m512 x = _mm512_permutex2var_ps(sv, shared_index(b), sv);
          for (int r = 0; r < dots_run; ++r) {
            if (r >= run) break;
            const __m512 ov = load16_before(ow + r * own_w + own_base(b), own_end);
            const __m512 y = _mm512_permutex2var_ps(ov, own_index(b), ov);
            acc[r][g] = acc[r][g] + x * y;  // x * y == y * x: chunk_pair_dots_lanes' bits
          }
        }
      }
      for (int r = 0; r < run; ++r) {
        for (int g = 0; g < group; ++g) {
          _mm512_mask_storeu_ps(dots + std::int64_t(k0 + r) * cap_x + 16 * (j0 + g),
                                first_lanes(count - 16 * (j0 + g)), acc[r][g]);
        }
      }
    }
  }
}
#endif

// The pair dots of image n restricted to planes c0 .. c0 + channel_block - 1 (kernels.hpp), for
// NCHW maps whose channel tiles fit: both maps' planes go to channels-last tiles, then the NHWC
// pair dots run over the block. `dots` ([capacity_y][capacity_x]) receives the block's partial
// sums; the launcher adds the blocks in order. `scratch` has plane_scratch_size elements.
template <Direction D, class T>
SSB_HOST_DEVICE inline void channel_tile_pair_dots(const Weights<T>& weights,
                                                   const FeatureMap<const T>& src,
                                                   const FeatureMap<const T>& other, int n, int c0,
                                                   T* dots, T* scratch) {
  const int cb = src.channels - c0 < channel_block ? src.channels - c0 : channel_block;
  const std::int64_t src_pixels = std::int64_t(src.height) * src.width;
  const std::int64_t other_pixels = std::int64_t(other.height) * other.width;
  T* tile_src = scratch;
  T* tile_other = tile_src + src_pixels * cb;
  transpose(src.data + (std::int64_t(n) * src.channels + c0) * src_pixels, src_pixels, cb,
            src_pixels, tile_src, cb);
  transpose(other.data + (std::int64_t(n) * other.channels + c0) * other_pixels, other_pixels, cb,
            other_pixels, tile_other, cb);
  const FeatureMap<const T> s(tile_src, 1, src.height, src.width, cb, Layout::nhwc);
  const PairDots<T> pair{
      FeatureMap<const T>(tile_other, 1, other.height, other.width, cb, Layout::nhwc), dots,
      weights.x.capacity()};
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  for (int a = 0; a < other.height; ++a) row_pair_dots<D>(ay, ax, s, pair, 0, a);
}

#if defined(SSB_VECTOR_EXTENSIONS)
// The tiles of tile_pair_dots: at most dots_tile_bytes for both (at least one group of
// dot_lanes channels), and the lane body (or the channel tiles) where one group takes more. On
// the 2-core AVX-512 EPYC (32 KiB L1 data cache, 1 MiB L2 per core), one thread, one image in
// cache, the d_weights pass of the NCHW backward verbs took, in ns per plane, against the lane
// body (then one task per segment, since replaced by chunk_pair_dots_lanes and
// row_pair_dots_lanes):
//   5x5 -> 3:  21.1 -> 8.1;  7x7 -> 4:  29.1 -> 15.6;  8x8 -> 5:  40.0 -> 22.9 (32 KiB tiles)
//   10x10 -> 6:  51.7 -> 36.4 (128 KiB), 39.8 (512 KiB);  14x14 -> 8:  108 -> 73.3 (512 KiB)
//   20x20 -> 12: 161 -> 159 (512 KiB);  28x28 -> 16: 257 -> 392 (512 KiB: one group)
// But on the bench (32 images, two threads, maps out of cache), whole backward verbs, the larger
// tiles took 0.95-1.21x the time of the lane body on 10x10 -> 6 (slower in 3 of 4) and
// 0.94-1.09x on 14x14 -> 8; with 32 KiB tiles, 5x5 to 8x8 planes took 0.52-0.94x
// (bench/results/ab-15b498e-tile-dots.md).
constexpr std::size_t dots_tile_bytes = 32 * 1024;

// Channels per tile of tile_pair_dots for these weights and `channels` channels: whole groups of
// dot_lanes channels (no more than the channels need); 0 where one group does not fit
// dots_tile_bytes.
template <class T>
inline int tile_dots_channels(const Weights<T>& w, int channels) {
  const std::size_t group = both_grids_pixels(w) * std::size_t(dot_lanes<T>()) * sizeof(T);
  const std::size_t groups = dots_tile_bytes / group;
  const std::size_t needed = (std::size_t(channels) + dot_lanes<T>() - 1) / dot_lanes<T>();
  return int(groups < needed ? groups : needed) * dot_lanes<T>();
}

// Elements of scratch that tile_pair_dots needs: both tiles, then the lanes of every pair.
template <class T>
inline std::size_t tile_dots_scratch(const Weights<T>& w, int channels) {
  return both_grids_pixels(w) * std::size_t(channels) +
         std::size_t(w.y.capacity()) * std::size_t(w.x.capacity()) * std::size_t(dot_lanes<T>());
}

// The pair dots of image n of NCHW maps (pair_dot_rows.hpp), with pair_dot's lanes, order and
// tree, so the bits of the NHWC pair dots: `channels` (tile_dots_channels) planes at a time of
// both maps go to channels-last tiles, and every pair's lanes take the tile's whole groups of
// dot_lanes channels, as pair_dots_shared's four vector accumulators do, kept in `scratch` from
// one tile to the next; after the last tile, the channels past the last whole group and the
// tree (finish_pair_dot, finish_pair_dot_vectors). `dots` is the image's [capacity_y][capacity_x];
// `scratch` has tile_dots_scratch elements.
template <Direction D, class T>
inline void tile_pair_dots(const Weights<T>& weights, const FeatureMap<const T>& src,
                           const FeatureMap<const T>& other, int n, int channels, T* dots,
                           T* scratch) {
  typedef typename Vec<T>::type V;
  constexpr int per = int(vector_bytes / sizeof(T));
  constexpr int lanes = dot_lanes<T>();
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  const int count_y = ay.count(), count_x = ax.count(), stride = weights.x.capacity();
  const int total = src.channels, whole = total / lanes * lanes;
  const std::int64_t src_pixels = std::int64_t(src.height) * src.width;
  const std::int64_t other_pixels = std::int64_t(other.height) * other.width;
  T* tile_src = scratch;
  T* tile_other = tile_src + src_pixels * channels;
  T* state = tile_other + other_pixels * channels;
  for (std::int64_t e = 0; e < std::int64_t(count_y) * count_x * lanes; ++e) state[e] = T(0);
  for (int c0 = 0; c0 < total; c0 += channels) {
    const int cb = total - c0 < channels ? total - c0 : channels;
    transpose(src.data + (std::int64_t(n) * total + c0) * src_pixels, src_pixels, cb, src_pixels,
              tile_src, cb);
    transpose(other.data + (std::int64_t(n) * total + c0) * other_pixels, other_pixels, cb,
              other_pixels, tile_other, cb);
    const int groups = ((whole < c0 + cb ? whole : c0 + cb) - c0) / lanes;
    const bool last = c0 + cb == total;
    for (int k = 0; k < count_y; ++k) {
      const std::int64_t src_row = std::int64_t(source_index<D>(ay, k)) * src.width;
      const std::int64_t other_row = std::int64_t(dest_index<D>(ay, k)) * other.width;
      for (int l = 0; l < count_x; ++l) {
        const T* a = tile_src + (src_row + source_index<D>(ax, l)) * cb;
        const T* b = tile_other + (other_row + dest_index<D>(ax, l)) * cb;
        T* lane = state + (std::int64_t(k) * count_x + l) * lanes;
        V acc[4];
        for (int j = 0; j < 4; ++j) vec_load(acc[j], lane + j * per);
        for (int g = 0; g < groups; ++g) {
          for (int j = 0; j < 4; ++j) {
            V x, y;
            vec_load(y, b + g * lanes + j * per);
            vec_load(x, a + g * lanes + j * per);
            acc[j] += x * y;
          }
        }
        if (!last) {
          for (int j = 0; j < 4; ++j) vec_store(lane + j * per, acc[j]);
        } else {  // channels whole .. total-1 are at whole - c0 of this tile
          dots[std::int64_t(k) * stride + l] = finish_pair_dot_accumulators(
              acc, lane, a + (whole - c0), b + (whole - c0), 0, total - whole);
        }
      }
    }
  }
}
#endif

// The pair dots of y segment k of image n for NCHW maps (kernels.hpp), channels in order:
//     dots[l] = sum_c src[c, source_y(k), source_x(l)] * other[c, dest_y(k), dest_x(l)]
// for every x segment l; `other` is on the destination grid.
template <Direction D, class T>
SSB_HOST_DEVICE inline void plane_pair_dots(const Weights<T>& weights,
                                            const FeatureMap<const T>& src,
                                            const FeatureMap<const T>& other, int n, int k,
                                            T* dots) {
  const AxisImage<T> ay = weights.y.image(n), ax = weights.x.image(n);
  const int count = ax.count();
  const std::int64_t src_plane = std::int64_t(src.height) * src.width;
  const std::int64_t other_plane = std::int64_t(other.height) * other.width;
  const T* src_row = src.data + std::int64_t(n) * src.channels * src_plane +
                     std::int64_t(source_index<D>(ay, k)) * src.width;
  const T* other_row = other.data + std::int64_t(n) * other.channels * other_plane +
                       std::int64_t(dest_index<D>(ay, k)) * other.width;
  const bool forward = D == Direction::forward;
  const std::int32_t* source_x = forward ? ax.in_index : ax.out_index;
  const std::int32_t* dest_x = forward ? ax.out_index : ax.in_index;
  T* SSB_RESTRICT d = dots;
  for (int l = 0; l < count; ++l) d[l] = T(0);
  for (int c = 0; c < src.channels; ++c) {
    const T* SSB_RESTRICT s = src_row + c * src_plane;
    const T* SSB_RESTRICT o = other_row + c * other_plane;
    for (int l = 0; l < count; ++l) d[l] += s[source_x[l]] * o[dest_x[l]];
  }
}

}  // namespace detail
}  // namespace ssb
