// ssbnet: the pair dots of NCHW maps (the weight gradients' D(k, l) of backward.hpp, for maps
// whose layout is NCHW on both grids); planar.hpp has their gathers, and the helpers both share.
//
// Float planes of 24 to 128 pixels on both grids together (at most 64 each) on AVX-512 targets
// take the packed body (packed_pair_dots: no tiles, the NHWC pair dots' bits). Planes whose groups
// of dot_lanes channels fit a tile take tile_pair_dots (channels-last tiles, the NHWC pair dots'
// bits). Larger float planes on AVX-512 targets take the lane body, one task
// per chunk of segments (chunk_pair_dots_lanes; rows of at most 32 columns in registers, wider
// ones by windows). Other larger planes take the channel tiles or one plane at a time
// (plane_pair_dots).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels.hpp"
#include "pair_dot_rows.hpp"
#include "planar.hpp"
#include "planar_packed.hpp"
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

// The pair dots of y segments k0 .. k1 - 1 of image n for float NCHW maps: dots[k][l] = sum_c
// x * y from 0, channels ascending (x and y the permuted columns; plane_pair_dots' sums in its
// order). Channels go in groups of dots_group, outermost: each group's rows of the chunk are read
// once for all its segments (and stay in the L1 cache meanwhile), and a register of partial sums
// takes the group's terms, in channel order, between one load from and one store to `acc` (k1 - k0
// rows of lane_blocks(capacity_x) registers, 64-byte aligned). `dots` is the image's pair dots,
// [capacity_y][capacity_x]. Two forms, the same bits:
//   Windows false: rows of at most 32 columns, in two registers each, chunks of at most
//     dots_chunk segments; all the chunk's rows dots_prefetch channels ahead are asked for before
//     each group.
//   Windows true: wider rows, a 16-column window of each row per block, chunks of at most
//     dots_wide_chunk segments; the next group's rows are asked for as the segments reach them,
//     so the requests spread over the group's work.
//
// The narrow form replaced one task per segment that read the segment's two rows of every
// channel, over and over from segment to segment: where planes are 4 KiB apart (32x32) those rows
// of all channels fall in the same sets of the L1 cache. Same-run A/B, openmp2, both orders
// (bench/results/ab-02feeac-chunk-dots.md): the NCHW backward verbs and round trip 0.58-0.80x on
// 32x32x2048 -> 18, 0.74-0.93x on 32x32x512 -> 18, 0.81-0.98x on 20x20 to 28x28 planes (NHWC
// controls 0.87-1.03x).
//
// The wide form replaced one task per input row that went over every channel once per pass of up
// to 4 segments and 64 x segments (row_pair_dots_lanes, 02feeac): each pass read 512 bytes of
// each 64 KiB plane (128x128), at a new page every time, and `perf` put 52% of its samples on the
// instruction after its first prefetch of a channel. Reading each channel's rows of a chunk in
// one sweep (about 16 KiB on 128x128 planes), one channel at a time: the NCHW backward verbs
// 0.76-0.90x on 128x128x512 -> 72 and 64x64x1024 -> 36, round trip 0.82-0.94x (same-run A/B,
// openmp2, both orders; NHWC controls 0.93-1.08x; bench/results/ab-0749636-wide-dots.md). Rows of
// at most 32 columns keep the narrow form: the wide one took 0.80-0.96x its time on 28x28x512 ->
// 16 and 32x32x512 -> 18 planes, but up to 1.23-1.28x on 16x16x1024 -> 9, 20x20x512 -> 12 and
// 32x32x2048 -> 18.
//
// Then, one channel at a time, both forms were bound by their own loads, stores and permutes,
// not by memory: one thread took as long per plane with the maps in cache as out of it (about
// 2.2-2.4 us on 64x64 -> 36 planes, 9.0 us on 128x128 -> 72). Groups of 4 channels load and store
// `acc` once per 4 terms: one thread, out of cache, the weight gradients alone took 0.74-0.76x the
// time of one channel at a time on 32x32 to 128x128 planes. Same-run A/B of the two (openmp2,
// both orders, bench/results/ab-8f35fa3-dot-groups.md): the NCHW backward verbs 0.84-0.99x on
// 32x32 to 128x128 planes (NHWC controls 0.96-1.05x).
constexpr int dots_chunk = 16;
// Channels ahead whose rows the narrow form asks the caches for (dots_prefetch).
#ifndef SSB_DOTS_PREFETCH
#define SSB_DOTS_PREFETCH 8
#endif
constexpr int dots_prefetch = SSB_DOTS_PREFETCH;
// Segments per chunk of the wide form: the image's segments are split into equal parts of at most
// this many. On the COCO shapes (one channel at a time), chunks of 32 and 100 segments took the
// same time as 64, whole images (199 segments) 1.01-1.07x.
#ifndef SSB_DOTS_WIDE_CHUNK
#define SSB_DOTS_WIDE_CHUNK 64
#endif
constexpr int dots_wide_chunk = SSB_DOTS_WIDE_CHUNK;
// Channels per group of both forms where the input grid's planes take at least
// dots_group_min_floats (4 KiB), else 1. On smaller planes groups of 4 took the NCHW backward
// verbs to 1.02-1.17x on 16x16 to 24x24 planes (28x28: 0.89-1.00x), and two threads on 32 images
// of 16x16x1024 -> 9 (the weight gradients alone) to 1.25-1.32x: there the 4 planes of a group
// share a page, and the rows read go back and forth in it (the hardware prefetchers seem not to
// follow; there are no counters here to check).
#ifndef SSB_DOTS_GROUP
#define SSB_DOTS_GROUP 4
#endif
constexpr int dots_group = SSB_DOTS_GROUP;
constexpr std::int64_t dots_group_min_floats = 1024;

template <Direction D, bool Windows, int G>
inline void chunk_pair_dots_lanes(const Weights<float>& weights, const FeatureMap<const float>& src,
                                  const FeatureMap<const float>& other, int n, int k0, int k1,
                                  float* dots, int cap_x, DotBlock* blocks, float* acc) {
  const AxisImage<float> ay = weights.y.image(n), ax = weights.x.image(n);
  const int count = ax.count();
  const int nblocks = lane_blocks(count);
  plan_dot_blocks<D>(ax, count, Windows, blocks);
  const int row_floats = 16 * nblocks;
  for (int e = 0; e < (k1 - k0) * row_floats; ++e) acc[e] = 0.0f;
  const int channels = src.channels, src_w = src.width, other_w = other.width;
  const std::int64_t src_plane = std::int64_t(src.height) * src_w;
  const std::int64_t other_plane = std::int64_t(other.height) * other_w;
  const float* src_end = src.data + std::int64_t(src.batch) * channels * src_plane;
  const float* other_end = other.data + std::int64_t(other.batch) * channels * other_plane;
  const float* src_image = src.data + std::int64_t(n) * channels * src_plane;
  const float* other_image = other.data + std::int64_t(n) * channels * other_plane;
  // The rows the segments read (source_index and dest_index do not decrease with k).
  const std::int64_t s_first = std::int64_t(source_index<D>(ay, k0)) * src_w;
  const int s_count = (source_index<D>(ay, k1 - 1) + 1) * src_w - int(s_first);
  const std::int64_t o_first = std::int64_t(dest_index<D>(ay, k0)) * other_w;
  const int o_count = (dest_index<D>(ay, k1 - 1) + 1) * other_w - int(o_first);
  for (int c0 = 0; c0 < channels; c0 += G) {
    const int group = channels - c0 < G ? channels - c0 : G;
    const float* s_planes = src_image + c0 * src_plane;
    const float* o_planes = other_image + c0 * other_plane;
    // The narrow form asks for all the chunk's rows dots_prefetch channels ahead at once.
    if (!Windows && c0 + dots_prefetch + G <= channels) {
      for (int g = 0; g < G; ++g) {
        prefetch_lines(s_planes + (dots_prefetch + g) * src_plane + s_first, s_count);
        prefetch_lines(o_planes + (dots_prefetch + g) * other_plane + o_first, o_count);
      }
    }
    // Whole-register loads without checks where the group's planes (and 32 floats more) lie
    // before the ends of the maps.
    const auto group_dots = [&](auto Checked) {
      const bool next_group = c0 + 2 * G <= channels;
      for (int k = k0; k < k1; ++k) {
        const int s_row = source_index<D>(ay, k), o_row = dest_index<D>(ay, k);
        const float* s = s_planes + std::int64_t(s_row) * src_w;
        const float* o = o_planes + std::int64_t(o_row) * other_w;
        float* a = acc + (k - k0) * row_floats;
        if (Windows) {
          // The wide form asks for the next group's rows as the segments reach them.
          if (next_group && (k == k0 || s_row != source_index<D>(ay, k - 1))) {
            for (int g = 0; g < G; ++g) prefetch_lines(s + (G + g) * src_plane, src_w);
          }
          if (next_group && (k == k0 || o_row != dest_index<D>(ay, k - 1))) {
            for (int g = 0; g < G; ++g) prefetch_lines(o + (G + g) * other_plane, other_w);
          }
          for (int j = 0; j < nblocks; ++j) {
            const DotBlock& b = blocks[j];
            const __m512i si = _mm512_load_si512(b.src_index);
            const __m512i oi = _mm512_load_si512(b.other_index);
            __m512 sum = _mm512_load_ps(a + 16 * j);
            for (int g = 0; g < G; ++g) {
              if (g >= group) break;
              const __m512 sv =
                  load16_row<decltype(Checked)::value>(s + g * src_plane + b.src_base, src_end);
              const __m512 ov = load16_row<decltype(Checked)::value>(
                  o + g * other_plane + b.other_base, other_end);
              sum = sum + _mm512_permutex2var_ps(sv, si, sv) * _mm512_permutex2var_ps(ov, oi, ov);
            }
            _mm512_store_ps(a + 16 * j, sum);
          }
          continue;
        }
        // Rows of at most 32 columns: each channel's two rows in registers for all the blocks.
        __m512 s_lo[G], s_hi[G], o_lo[G], o_hi[G];
        for (int g = 0; g < G; ++g) {
          if (g >= group) break;
          s_lo[g] = load16_row<decltype(Checked)::value>(s + g * src_plane, src_end);
          s_hi[g] = load16_row<decltype(Checked)::value>(s + g * src_plane + 16, src_end);
          o_lo[g] = load16_row<decltype(Checked)::value>(o + g * other_plane, other_end);
          o_hi[g] = load16_row<decltype(Checked)::value>(o + g * other_plane + 16, other_end);
        }
        for (int j = 0; j < nblocks; ++j) {
          const DotBlock& b = blocks[j];
          const __m512i si = _mm512_load_si512(b.src_index);
          const __m512i oi = _mm512_load_si512(b.other_index);
          __m512 sum = _mm512_load_ps(a + 16 * j);
          for (int g = 0; g < G; ++g) {
            if (g >= group) break;
            sum = sum + _mm512_permutex2var_ps(s_lo[g], si, s_hi[g]) *
                            _mm512_permutex2var_ps(o_lo[g], oi, o_hi[g]);
          }
          _mm512_store_ps(a + 16 * j, sum);
        }
      }
    };
    if (src_end - s_planes >= G * src_plane + 32 && other_end - o_planes >= G * other_plane + 32) {
      group_dots(std::false_type{});
    } else {
      group_dots(std::true_type{});
    }
  }
  for (int k = k0; k < k1; ++k) {
    const float* a = acc + (k - k0) * row_floats;
    float* d = dots + std::int64_t(k) * cap_x;
    for (int l = 0; l < count; ++l) d[l] = a[l];
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
// body (then one task per segment, since replaced by chunk_pair_dots_lanes):
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

#if defined(SSB_PLANAR_AVX512)
// The packed body of the pair dots of float NCHW maps (AVX-512) whose planes have at most 64
// floats on both grids (packed_dots_fit): 16 pairs (k, l) per register, each channel's two planes
// held in four registers each and the pairs' columns picked by permutes, no channels-last tiles.
// Each pair keeps tile_pair_dots' dot_lanes partial sums (lane c mod dot_lanes takes channel c,
// channels ascending, from 0) in scratch, one row of registers per lane, then the same halving
// tree: the NHWC pair dots' bits, as tile_pair_dots gives them.
struct alignas(64) PackedDotBlock {
  std::int32_t src_index[16];          // of the pair's source element in the source plane
  std::int32_t other_index[16];        // the same in the `other` plane
  std::uint32_t src_high, other_high;  // lanes whose index is 32 or more (the upper registers)
};

// Whether the packed body takes planes of these sizes (packed_dots_fit): at most 64 pixels each,
// and at least SSB_NCHW_PACKED_DOTS_MIN_PIXELS together. One thread, 256 channels, the weight
// gradient alone, against tile_pair_dots (Cascade Lake VM, ns per plane): 5x5 -> 3 40 against 27,
// 6x6 -> 3 44 and 44, 5x5 -> 4 38 and 42, 6x6 -> 4 56 and 62, 7x7 -> 4 38 and 80, 7x7 -> 5 78 and
// 105, 8x8 -> 5 79 and 118; hence 48 pixels then. In s31, after load16_inside was made always
// inline (GCC had stopped inlining it here), both in one process, 2 threads, batches of 32, 2048
// channels, the weight gradient alone, packed / tiles: 4x4 -> 3 0.74-0.77, 5x5 -> 3 0.82-0.91,
// 5x5 -> 4 0.62-0.71, 6x6 -> 3 0.70-0.77, but 4x4 -> 2 1.28-1.30 and 3x3 -> 2 1.04-1.36 (20 and 13
// pixels; bench/results/ab-s31-packed-order.md).
#ifndef SSB_NCHW_PACKED_DOTS_MIN_PIXELS
#define SSB_NCHW_PACKED_DOTS_MIN_PIXELS 24
#endif
// Blocks of 16 pairs for these weights, and the scratch floats of packed_pair_dots.
template <class T>
inline int packed_dot_blocks(const Weights<T>& w) {
  return (w.y.capacity() * w.x.capacity() + 15) / 16;
}
// At most 256 pairs (16 blocks, 64 KiB of partial sums): planes that zoom in along one axis and
// out along the other (1x64 -> 64x1: 4096 pairs) stay with the tiles.
template <class T>
inline bool packed_dots_fit(const Weights<T>& w, std::int64_t src_pixels,
                            std::int64_t other_pixels) {
  return src_pixels <= 64 && other_pixels <= 64 &&
         src_pixels + other_pixels >= SSB_NCHW_PACKED_DOTS_MIN_PIXELS && packed_dot_blocks(w) <= 16;
}
template <class T>
inline std::size_t packed_dots_scratch(const Weights<T>& w) {
  return std::size_t(dot_lanes<float>()) * 16 * std::size_t(packed_dot_blocks(w)) + 16;
}

// Element `index` (0 .. 63) of four registers, per lane: `high` marks lanes in r[2], r[3].
inline __m512 pick64(const __m512* r, __m512i index, __mmask16 high, bool wide) {
  const __m512 lo = _mm512_permutex2var_ps(r[0], index, r[1]);
  if (!wide) return lo;
  return _mm512_mask_blend_ps(high, lo, _mm512_permutex2var_ps(r[2], index, r[3]));
}

// The pair dots of image n (dots: [capacity_y][capacity_x]) by the packed body. `scratch` has
// packed_dots_scratch floats, `blocks` packed_dot_blocks entries.
template <Direction D>
inline void packed_pair_dots(const Weights<float>& weights, const FeatureMap<const float>& src,
                             const FeatureMap<const float>& other, int n, float* dots,
                             float* scratch, PackedDotBlock* blocks) {
  constexpr int lanes = dot_lanes<float>();
  const AxisImage<float> ay = weights.y.image(n), ax = weights.x.image(n);
  const int count_y = ay.count(), count_x = ax.count(), stride = weights.x.capacity();
  const int pairs = count_y * count_x, nblocks = (pairs + 15) / 16;
  for (int b = 0; b < nblocks; ++b) {
    PackedDotBlock& block = blocks[b];
    block.src_high = block.other_high = 0;
    for (int u = 0; u < 16; ++u) {
      const int p = 16 * b + u < pairs ? 16 * b + u : pairs - 1;
      const int k = p / count_x, l = p % count_x;
      block.src_index[u] = source_index<D>(ay, k) * src.width + source_index<D>(ax, l);
      block.other_index[u] = dest_index<D>(ay, k) * other.width + dest_index<D>(ax, l);
      block.src_high |= std::uint32_t(block.src_index[u] >= 32) << u;
      block.other_high |= std::uint32_t(block.other_index[u] >= 32) << u;
    }
  }
  const std::int64_t src_pixels = std::int64_t(src.height) * src.width;
  const std::int64_t other_pixels = std::int64_t(other.height) * other.width;
  const std::int64_t src_size = std::int64_t(src.batch) * src.channels * src_pixels;
  const std::int64_t other_size = std::int64_t(other.batch) * other.channels * other_pixels;
  const int src_regs = int((src_pixels + 15) / 16), other_regs = int((other_pixels + 15) / 16);
  const bool src_wide = src_pixels > 32, other_wide = other_pixels > 32;
  float* const partial = aligned_64(scratch);  // [lanes][nblocks][16]
  for (std::int64_t e = 0; e < std::int64_t(lanes) * nblocks * 16; e += 16) {
    _mm512_store_ps(partial + e, _mm512_setzero_ps());
  }
  for (int c = 0; c < src.channels; ++c) {
    __m512 xs[4], os[4];
    const std::int64_t at = (std::int64_t(n) * src.channels + c) * src_pixels;
    const std::int64_t other_at = (std::int64_t(n) * other.channels + c) * other_pixels;
    for (int j = 0; j < 4; ++j) {
      xs[j] = j < src_regs ? load16_inside(src.data, at + 16 * j, src_size) : _mm512_setzero_ps();
      os[j] = j < other_regs ? load16_inside(other.data, other_at + 16 * j, other_size)
                             : _mm512_setzero_ps();
    }
    float* const row = partial + std::int64_t(c % lanes) * nblocks * 16;
    for (int b = 0; b < nblocks; ++b) {
      const PackedDotBlock& block = blocks[b];
      const __m512 x =
          pick64(xs, _mm512_load_si512(block.src_index), __mmask16(block.src_high), src_wide);
      const __m512 y =
          pick64(os, _mm512_load_si512(block.other_index), __mmask16(block.other_high), other_wide);
      // tile_pair_dots' arithmetic: acc += x * y.
      __m512 acc = _mm512_load_ps(row + 16 * b);
      acc += x * y;
      _mm512_store_ps(row + 16 * b, acc);
    }
  }
  // finish_pair_dot's halving tree, 16 pairs at a time.
  for (int b = 0; b < nblocks; ++b) {
    __m512 v[lanes];
    for (int u = 0; u < lanes; ++u)
      v[u] = _mm512_load_ps(partial + (std::int64_t(u) * nblocks + b) * 16);
    for (int width = lanes / 2; width > 0; width /= 2) {
      for (int u = 0; u < width; ++u) v[u] = v[u] + v[u + width];
    }
    float sums[16];
    _mm512_storeu_ps(sums, v[0]);
    for (int u = 0; u < 16 && 16 * b + u < pairs; ++u) {
      const int p = 16 * b + u;
      dots[std::int64_t(p / count_x) * stride + p % count_x] = sums[u];
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
