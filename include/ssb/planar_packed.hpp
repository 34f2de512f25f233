// ssbnet: the packed body of float NCHW gathers on AVX-512 targets (planes whose rows have at
// most 16 floats); planar.hpp has the other NCHW gather bodies and the lane body's slots that this
// one shares, planar_dots.hpp the pair dots.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels.hpp"
#include "planar.hpp"
#include "types.hpp"
#include "weights.hpp"

#if defined(SSB_PLANAR_AVX512)
namespace ssb {
namespace detail {

// The packed lane body of float NCHW maps (AVX-512): planes whose source and destination rows
// have at most 16 floats, several rows per register, a task's block of planes (16 to 128,
// packed_block_planes) one register or vector of the plan at a time, for every plane of the
// block, so that its slots (indices, weights, masks) are loaded once per block and held in
// registers (for up to 4 slots):
//   1. y sums: an R register holds consecutive rows of R, row a in lanes (a - a0) * src_w ..
//      Where the source rows that its rows read span at most 32 floats, it loads that window of
//      the plane (two registers) and adds slot by slot as the lane body's x sums do: slot s of a
//      lane is the s-th segment of its row's range, picked by a two-register permute
//      (vpermt2ps). Otherwise (one row, a wider span) each term loads its source row and adds it:
//      the first term, then the others. A first form that did so for every row (a 64-byte load
//      per term and plane, of which 3-16 floats were used) took 1.0-2.3x the channel tiles' time
//      on the 5x5 to 16x16 bench shapes (Cascade Lake VM, 2 threads): the windows read each
//      source float about once;
//   2. x sums: a register holds consecutive destination rows (rows * dst_w <= 16) whose R rows
//      lie in two neighbouring R registers, its slots picked by two-register permutes; lanes of
//      destination rows with no y segment are zero.
// Each lane's sums start from their first term and run in ascending order, as every other body's:
// the same bits. The plan depends only on the image's segments: launch_gather builds each
// image's once per launch (rebuilt for every block of 32 planes, the plans took the body to
// 1.1-1.6x its time: one thread, 5x5 to 16x16 planes in cache). Its first form ran 4 planes side
// by side through the whole plan, reading each slot from memory for every 4 planes; against it
// this order takes 0.49-0.92x the time on 5x5 -> 3 to 16x16 -> 9 (one thread, in cache) and
// 0.60-1.02x (`sample`, `sample_inverse`; 2 threads, batches of 32;
// bench/results/ab-s31-packed-order.md).
struct PackedTerm {
  std::int32_t offset;  // of the source row in the plane
  float weight;
};
struct PackedRegister {
  int a0, rows;           // the R rows it holds
  int window;             // first element of its 32-float window in the plane; -1: terms instead
  int first_slot, slots;  // window: in the LaneSlot array
  int first, end;         // terms: PackedTerms [first, end)
};
struct PackedVector {
  int a0;                   // first destination row
  int reg;                  // permute window: R registers reg and reg + 1
  int first_slot, slots;    // in the LaneSlot array
  std::uint32_t rows_mask;  // lanes of its destination rows that have a y segment
};
struct PackedPlan {
  int registers = 0, vectors = 0;
  // The least and greatest offset in a plane of an element that a load reads (0, 0: none).
  std::int64_t lowest = 0, highest = 0;
};

// Whether the packed body takes planes with these source and destination widths.
inline bool packed_fits(int src_w, int dst_w) {
  return src_w <= 16 && dst_w <= 16;
}

// Fills the plan of one image: at most dst_h registers and vectors, ay.count() terms and
// ay.count() + dst_h * src_w slots (a register's y slots are its rows' largest segment count, so
// at most their sum; a vector's x slots are the largest count of a destination column, whose
// segments have distinct source columns, so at most src_w).
template <Direction D>
inline PackedPlan packed_plan(const AxisImage<float>& ay, const AxisImage<float>& ax, int src_w,
                              int dst_h, int dst_w, PackedTerm* terms, PackedRegister* registers,
                              PackedVector* vectors, LaneSlot* slots) {
  PackedPlan plan;
  int next_slot = 0, next_term = 0;
  bool any = false;
  const auto reach = [&](std::int64_t lo, std::int64_t hi) {
    plan.lowest = !any || lo < plan.lowest ? lo : plan.lowest;
    plan.highest = !any || hi > plan.highest ? hi : plan.highest;
    any = true;
  };
  const auto clear = [](LaneSlot& slot) {
    slot.mask = 0;
    for (int u = 0; u < 16; ++u) {
      slot.index[u] = 0;
      slot.weight[u] = 0.0f;
    }
  };
  const auto count = [](const AxisImage<float>& axis, int d) {
    return range_begin<D>(axis, d + 1) - range_begin<D>(axis, d);
  };
  for (int a0 = 0; a0 < dst_h;) {
    // As many rows as 16 lanes hold whose source rows span at most 32 floats; one at least.
    int rows = 0, y_lo = 0, y_hi = -1;
    for (int a = a0; a < dst_h && (a - a0 + 1) * src_w <= 16; ++a) {
      int lo = y_lo, hi = y_hi;
      for (int k = range_begin<D>(ay, a); k < range_begin<D>(ay, a + 1); ++k) {
        const int y = source_index<D>(ay, k);
        lo = hi < lo || y < lo ? y : lo;
        hi = hi < lo || y > hi ? y : hi;
      }
      if (rows > 0 && hi >= lo && (hi - lo + 1) * src_w > 32) break;
      rows = a - a0 + 1;
      y_lo = lo;
      y_hi = hi;
    }
    PackedRegister& reg = registers[plan.registers++];
    reg.a0 = a0;
    reg.rows = rows;
    reg.first_slot = next_slot;
    reg.slots = 0;
    reg.first = reg.end = next_term;
    if (y_hi < y_lo || (y_hi - y_lo + 1) * src_w <= 32) {
      reg.window = y_hi < y_lo ? 0 : y_lo * src_w;
      for (int a = a0; a < a0 + rows; ++a) reg.slots = std::max(reg.slots, count(ay, a));
      for (int s = 0; s < reg.slots; ++s) {
        LaneSlot& slot = slots[next_slot + s];
        clear(slot);
        for (int a = a0; a < a0 + rows; ++a) {
          if (s >= count(ay, a)) continue;
          const int k = range_begin<D>(ay, a) + s;
          for (int w = 0; w < src_w; ++w) {
            const int u = (a - a0) * src_w + w;
            slot.index[u] = source_index<D>(ay, k) * src_w + w - reg.window;
            slot.weight[u] = ay.weight[k];
            slot.mask |= 1u << u;
          }
        }
      }
      next_slot += reg.slots;
      if (reg.slots > 0) reach(reg.window, reg.window + 31);
    } else {
      reg.window = -1;
      for (int k = range_begin<D>(ay, a0); k < range_begin<D>(ay, a0 + 1); ++k) {
        PackedTerm& term = terms[next_term++];
        term.offset = source_index<D>(ay, k) * src_w;
        term.weight = ay.weight[k];
        reach(term.offset, term.offset + 15);
      }
      reg.end = next_term;
    }
    a0 += rows;
  }
  // Destination vectors: consecutive rows while 16 lanes hold them and their R rows lie in two
  // neighbouring registers.
  int most = 0;
  for (int b = 0; b < dst_w; ++b) most = std::max(most, count(ax, b));
  for (int a0 = 0, g0 = 0; a0 < dst_h;) {
    while (registers[g0].a0 + registers[g0].rows <= a0) ++g0;
    int rows = 1;
    while (a0 + rows < dst_h && (rows + 1) * dst_w <= 16) {
      int g = g0;
      while (registers[g].a0 + registers[g].rows <= a0 + rows) ++g;
      if (g > g0 + 1) break;
      ++rows;
    }
    PackedVector& vector = vectors[plan.vectors++];
    vector.a0 = a0;
    vector.reg = g0;
    vector.first_slot = next_slot;
    vector.slots = most;
    vector.rows_mask = 0;
    for (int a = a0; a < a0 + rows; ++a) {
      if (count(ay, a) > 0) vector.rows_mask |= ((1u << dst_w) - 1u) << ((a - a0) * dst_w);
    }
    for (int s = 0; s < most; ++s) {
      LaneSlot& slot = slots[next_slot + s];
      clear(slot);
      for (int a = a0, g = g0; a < a0 + rows; ++a) {
        while (registers[g].a0 + registers[g].rows <= a) ++g;
        const int r_lane = (g - g0) * 16 + (a - registers[g].a0) * src_w;
        for (int b = 0; b < dst_w; ++b) {
          if (s >= count(ax, b)) continue;
          const int u = (a - a0) * dst_w + b, k = range_begin<D>(ax, b) + s;
          slot.index[u] = r_lane + source_index<D>(ax, k);
          slot.weight[u] = ax.weight[k];
          slot.mask |= 1u << u;
        }
      }
    }
    next_slot += most;
    a0 += rows;
  }
  return plan;
}

// The 16 floats at element `at` of a tensor of `size` elements at `data`: a whole-register load
// where they all lie inside it, else only those inside (the others 0).
// Always inline: with the packed gathers calling it too, GCC 12 stopped inlining it into
// packed_pair_dots, which then took 1.2x its time (7x7x2048 -> 4, weight gradients).
__attribute__((always_inline)) inline __m512 load16_inside(const float* data, std::int64_t at,
                                                           std::int64_t size) {
  if (at >= 0 && at + 16 <= size) return _mm512_loadu_ps(data + at);
  __mmask16 mask = first_lanes(size - at);
  if (at < 0) mask = at <= -16 ? __mmask16(0) : __mmask16(mask & (0xFFFFu << -at));
  return _mm512_maskz_loadu_ps(mask, data + at);
}

// The slots of one register or vector of the plan: S > 0, exactly S slots held in registers for
// a whole block of planes; S = 0, `count` slots read from memory for each plane.
template <int S>
struct PackedSlots {
  static constexpr int held = S > 0 ? S : 1;
  __m512i index[held];
  __m512 weight[held];
  __mmask16 mask[held];
  const LaneSlot* slots;
  int count;

  __attribute__((always_inline)) PackedSlots(const LaneSlot* first, int n)
      : slots(first), count(n) {
    for (int s = 0; s < S; ++s) {
      index[s] = _mm512_load_si512(first[s].index);
      weight[s] = _mm512_load_ps(first[s].weight);
      mask[s] = __mmask16(first[s].mask);
    }
  }

  // The sums of the slots (lane_x_sums' arithmetic: from the first slot, under each slot's mask)
  // of terms picked from (lo, hi) by two-register permutes; 0 without slots.
  __attribute__((always_inline)) __m512 sums(__m512 lo, __m512 hi) const {
    const int n = S > 0 ? S : count;
    if (n == 0) return _mm512_setzero_ps();
    const auto term = [&](int s) {
      const __m512i i = S > 0 ? index[s] : _mm512_load_si512(slots[s].index);
      return (S > 0 ? weight[s] : _mm512_load_ps(slots[s].weight)) *
             _mm512_permutex2var_ps(lo, i, hi);
    };
    const auto mask_of = [&](int s) { return S > 0 ? mask[s] : __mmask16(slots[s].mask); };
    __m512 acc = _mm512_maskz_mov_ps(mask_of(0), term(0));
#if defined(SSB_FIRST_TERM)
    SSB_FIRST_TERM(acc);
#endif
    for (int s = 1; s < n; ++s) acc = _mm512_mask_mov_ps(acc, mask_of(s), acc + term(s));
    return acc;
  }
};

// Calls f(std::integral_constant<int, S>) with S = count for 1 to 4 slots, else S = 0.
template <class F>
__attribute__((always_inline)) inline void with_slot_count(int count, F&& f) {
  switch (count) {
    case 1:
      f(std::integral_constant<int, 1>{});
      break;
    case 2:
      f(std::integral_constant<int, 2>{});
      break;
    case 3:
      f(std::integral_constant<int, 3>{});
      break;
    case 4:
      f(std::integral_constant<int, 4>{});
      break;
    default:
      f(std::integral_constant<int, 0>{});
      break;
  }
}

// Planes per task of the packed gathers: a multiple of 16 from 16 to 128 whose source and
// destination planes together take about SSB_NCHW_PACKED_BLOCK_BYTES (64 planes of 5x5 -> 3,
// 32 of 7x7 -> 4, 16 of 10x10 -> 6 and up). Against 32 planes for all, 2 threads on batches of
// 32 (in-process): 0.90-1.01x; 16 for all took 5x5 -> 3 to 1.16-1.22x, 32 took 10x10 -> 6 and
// 12x12 -> 7 to about 1.09x of 16.
#ifndef SSB_NCHW_PACKED_BLOCK_BYTES
#define SSB_NCHW_PACKED_BLOCK_BYTES 9216
#endif
inline int packed_block_planes(std::int64_t src_pixels, std::int64_t dst_pixels) {
  const std::int64_t bytes = std::int64_t(sizeof(float)) * (src_pixels + dst_pixels);
  const std::int64_t planes = std::int64_t(SSB_NCHW_PACKED_BLOCK_BYTES) / bytes / 16 * 16;
  return int(planes < 16 ? 16 : planes > 128 ? 128 : planes);
}
// In launches over maps of SSB_NCHW_PACKED_PREFETCH_MIN_BYTES bytes and more (source and
// destination), the packed gathers ask for the next task's planes while they run a block: 1,
// those of the larger grid (source planes for forward gathers, destination planes for inverse
// ones); 2, both; 0, none. The block's register-by-register order reads and writes each plane
// in pieces, far apart. 2 threads, batches of 32, against no prefetch (in-process): 0.87-0.97x
// on 7x7 -> 4 to 12x12 -> 7 (launches of 17-25 MiB; 0.56x on the inverse 8x8 -> 5), but
// 1.11-1.29x on 5x5 -> 3 and 6x6 -> 3 (9 and 12 MiB, which stay in this L3 of 35.75 MiB). Both
// grids took 10x10 -> 6 and 12x12 -> 7 in cache (one thread) from 0.76-0.99x of the first form's
// time to 1.04-1.24x.
#ifndef SSB_NCHW_PACKED_PREFETCH
#define SSB_NCHW_PACKED_PREFETCH 1
#endif
#ifndef SSB_NCHW_PACKED_PREFETCH_MIN_BYTES
#define SSB_NCHW_PACKED_PREFETCH_MIN_BYTES (14ll << 20)
#endif

// Planes c0 .. c0 + count - 1 of image n of float NCHW maps whose rows fit packed_fits, by the
// packed body with the image's plan (packed_plan): each register of the plan for every plane of
// the block, then each vector for every plane, so that a register's or vector's slots are loaded
// once per block and held in registers. `scratch` holds 16 * count * plan.registers + 16 floats
// (the R registers of the block's planes, register by register).
template <bool Checked>
inline void packed_block(const PackedPlan& plan, const PackedTerm* terms,
                         const PackedRegister* registers, const PackedVector* vectors,
                         const LaneSlot* slots, const float* src, std::int64_t base,
                         std::int64_t src_plane, std::int64_t src_size, float* out,
                         std::int64_t dst_plane, int dst_w, int count, float scale, float* r,
                         int ahead, bool both) {
  const auto load = [&](std::int64_t at) {
    return Checked ? load16_inside(src, base + at, src_size) : _mm512_loadu_ps(src + base + at);
  };
  // Plane c of the `ahead` planes after the block (the next task's), asked for: its source for
  // reading where source planes are at least as large as destination planes (forward gathers),
  // else its destination for writing; both with `both`. Called once per plane of the first
  // register's pass.
  const auto prefetch = [&](int c) __attribute__((always_inline)) {
    if (c >= ahead) return;
    if (src_plane >= dst_plane || both) {
      prefetch_lines(src + base + (count + c) * src_plane, src_plane);
    }
    if (src_plane < dst_plane || both) {
      prefetch_lines<true>(out + (count + c) * dst_plane, dst_plane);
    }
  };
  for (int g = 0; g < plan.registers; ++g) {
    const PackedRegister& reg = registers[g];
    float* const rg = r + std::int64_t(16) * count * g;
    const bool first = g == 0;
    if (reg.window >= 0) {
      with_slot_count(reg.slots, [&](auto held) {
        const PackedSlots<decltype(held)::value> plane_slots(slots + reg.first_slot, reg.slots);
        for (int c = 0; c < count; ++c) {
          const std::int64_t at = c * src_plane + reg.window;
          if (first) prefetch(c);
          _mm512_store_ps(rg + 16 * c, plane_slots.sums(load(at), load(at + 16)));
        }
      });
    } else {
      // One row: the first term, then the others (lane_y_sums_block's arithmetic; lanes past
      // the row hold sums of the next rows' columns, which no permute picks).
      with_slot_count(reg.end - reg.first, [&](auto held) {
        // S > 0: S terms, weights and offsets held in registers; S = 0: read for each plane.
        constexpr int S = decltype(held)::value;
        const PackedTerm* const term = terms + reg.first;
        const int n = S > 0 ? S : reg.end - reg.first;
        __m512 weight[S > 0 ? S : 1];
        std::int64_t offset[S > 0 ? S : 1];
        for (int t = 0; t < S; ++t) {
          weight[t] = _mm512_set1_ps(term[t].weight);
          offset[t] = term[t].offset;
        }
        const auto weight_of = [&](int t) {
          return S > 0 ? weight[t] : _mm512_set1_ps(term[t].weight);
        };
        const auto offset_of = [&](int t) { return S > 0 ? offset[t] : term[t].offset; };
        for (int c = 0; c < count; ++c) {
          if (first) prefetch(c);
          const std::int64_t plane = c * src_plane;
          __m512 acc = weight_of(0) * load(plane + offset_of(0));
#if defined(SSB_FIRST_TERM)
          SSB_FIRST_TERM(acc);
#endif
          for (int t = 1; t < n; ++t) acc = acc + weight_of(t) * load(plane + offset_of(t));
          _mm512_store_ps(rg + 16 * c, acc);
        }
      });
    }
  }
  const __m512 scales = _mm512_set1_ps(scale);
  for (int v = 0; v < plan.vectors; ++v) {
    const PackedVector& vector = vectors[v];
    const float* const lo = r + std::int64_t(16) * count * vector.reg;
    // The register after the plane's last R register is zero.
    const bool last = vector.reg + 1 == plan.registers;
    const __mmask16 rows = __mmask16(vector.rows_mask);
    // Whole-register stores while they end inside their plane (later vectors overwrite what
    // lies past the vector's rows), else up to the plane's end.
    const std::int64_t at = std::int64_t(vector.a0) * dst_w;
    const __mmask16 stored = at + 16 <= dst_plane ? __mmask16(0xFFFF) : first_lanes(dst_plane - at);
    with_slot_count(vector.slots, [&](auto held) {
      const PackedSlots<decltype(held)::value> plane_slots(slots + vector.first_slot, vector.slots);
      for (int c = 0; c < count; ++c) {
        const __m512 hi = last ? _mm512_setzero_ps() : _mm512_load_ps(lo + 16 * (count + c));
        const __m512 acc = plane_slots.sums(_mm512_load_ps(lo + 16 * c), hi);
        const __m512 result = _mm512_maskz_mul_ps(rows, scales, acc);
        float* const to = out + c * dst_plane + at;
        if (stored == 0xFFFF) {
          _mm512_storeu_ps(to, result);
        } else {
          _mm512_mask_storeu_ps(to, stored, result);
        }
      }
    });
  }
}

// Planes c0 .. c0 + count - 1 of image n by packed_block, which checks its loads against the ends
// of the source tensor only where some load of these planes can reach past one. `prefetch`: ask
// for the next task's planes meanwhile (SSB_NCHW_PACKED_PREFETCH).
inline void gather_planes_packed(const PackedPlan& plan, const PackedTerm* terms,
                                 const PackedRegister* registers, const PackedVector* vectors,
                                 const LaneSlot* slots, const FeatureMap<const float>& src,
                                 const FeatureMap<float>& dst, int n, int c0, int count,
                                 float scale, float* scratch, bool prefetch) {
  const int dst_h = dst.height, dst_w = dst.width, src_w = src.width;
  const std::int64_t src_plane = std::int64_t(src.height) * src_w;
  const std::int64_t dst_plane = std::int64_t(dst_h) * dst_w;
  const std::int64_t src_size = std::int64_t(src.batch) * src.channels * src_plane;
  const std::int64_t base = (std::int64_t(n) * src.channels + c0) * src_plane;
  float* const out = dst.data + (std::int64_t(n) * dst.channels + c0) * dst_plane;
  float* const r = aligned_64(scratch);
  const bool inside =
      base + plan.lowest >= 0 && base + (count - 1) * src_plane + plan.highest < src_size;
  // The planes after the block (the next block's, of this image or the next), up to `count`.
  const std::int64_t after =
      std::int64_t(src.batch) * src.channels - (std::int64_t(n) * src.channels + c0 + count);
  const int ahead =
      SSB_NCHW_PACKED_PREFETCH && prefetch ? int(std::min<std::int64_t>(count, after)) : 0;
  if (inside) {
    packed_block<false>(plan, terms, registers, vectors, slots, src.data, base, src_plane, src_size,
                        out, dst_plane, dst_w, count, scale, r, ahead,
                        SSB_NCHW_PACKED_PREFETCH == 2);
  } else {
    packed_block<true>(plan, terms, registers, vectors, slots, src.data, base, src_plane, src_size,
                       out, dst_plane, dst_w, count, scale, r, ahead,
                       SSB_NCHW_PACKED_PREFETCH == 2);
  }
}

}  // namespace detail
}  // namespace ssb
#endif
