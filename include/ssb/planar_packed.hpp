// ssbnet: the packed body of float NCHW gathers on AVX-512 targets (planes whose rows have at
// most 16 floats); planar.hpp has the other NCHW gather bodies and the lane body's slots that this
// one shares, planar_dots.hpp the pair dots.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels.hpp"
#include "planar.hpp"
#include "types.hpp"
#include "weights.hpp"

#if defined(SSB_PLANAR_AVX512)
namespace ssb {
namespace detail {

// The packed lane body of float NCHW maps (AVX-512): planes whose source and destination rows
// have at most 16 floats, several rows per register, SSB_NCHW_PACKED_PLANES planes side by side
// (independent sums sharing the plan's loads):
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
// 1.1-1.6x its time: one thread, 5x5 to 16x16 planes in cache).
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
inline __m512 load16_inside(const float* data, std::int64_t at, std::int64_t size) {
  if (at >= 0 && at + 16 <= size) return _mm512_loadu_ps(data + at);
  __mmask16 mask = first_lanes(size - at);
  if (at < 0) mask = at <= -16 ? __mmask16(0) : __mmask16(mask & (0xFFFFu << -at));
  return _mm512_maskz_loadu_ps(mask, data + at);
}

// acc[p] = the sums of `count` slots (lane_x_sums' arithmetic: from the first slot, under each
// slot's mask) of terms picked from (lo[p], hi[p]) by two-register permutes, for P planes.
template <int P>
__attribute__((always_inline)) inline void packed_slot_sums(const LaneSlot* slots, int count,
                                                            const __m512* lo, const __m512* hi,
                                                            __m512* acc) {
  for (int p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps();
  for (int s = 0; s < count; ++s) {
    const __m512i index = _mm512_load_si512(slots[s].index);
    const __mmask16 mask = __mmask16(slots[s].mask);
    const __m512 weight = _mm512_load_ps(slots[s].weight);
    for (int p = 0; p < P; ++p) {
      const __m512 term = _mm512_permutex2var_ps(lo[p], index, hi[p]);
      acc[p] = s == 0 ? _mm512_maskz_mov_ps(mask, weight * term)
                      : _mm512_mask_mov_ps(acc[p], mask, acc[p] + weight * term);
    }
  }
}

// P planes of the packed body side by side: source planes at element base + p * src_plane of
// src, destination planes at out + p * dst_plane. `r` holds P * (plan.registers + 1) R
// registers, each plane's last one zero. Checked: some load may reach past either end of the
// source tensor (`src_size` elements); they read only inside it.
template <int P, bool Checked>
inline void packed_planes(const PackedPlan& plan, const PackedTerm* terms,
                          const PackedRegister* registers, const PackedVector* vectors,
                          const LaneSlot* slots, const float* src, std::int64_t base,
                          std::int64_t src_plane, std::int64_t src_size, float* out,
                          std::int64_t dst_plane, int dst_w, __m512 scales, float* r) {
  const int stride = 16 * (plan.registers + 1);
  const auto load = [&](std::int64_t at, int p) {
    return Checked ? load16_inside(src, base + at + p * src_plane, src_size)
                   : _mm512_loadu_ps(src + base + at + p * src_plane);
  };
  for (int g = 0; g < plan.registers; ++g) {
    const PackedRegister& reg = registers[g];
    __m512 acc[P];
    if (reg.window >= 0) {
      __m512 lo[P], hi[P];
      for (int p = 0; p < P; ++p) {
        lo[p] = load(reg.window, p);
        hi[p] = load(reg.window + 16, p);
      }
      packed_slot_sums<P>(slots + reg.first_slot, reg.slots, lo, hi, acc);
    } else {
      // One row: the first term, then the others (lane_y_sums_block's arithmetic; lanes past
      // the row hold sums of the next rows' columns, which no permute picks).
      const __m512 w0 = _mm512_set1_ps(terms[reg.first].weight);
      for (int p = 0; p < P; ++p) {
        acc[p] = w0 * load(terms[reg.first].offset, p);
#if defined(SSB_FIRST_TERM)
        SSB_FIRST_TERM(acc[p]);
#endif
      }
      for (int t = reg.first + 1; t < reg.end; ++t) {
        const __m512 weight = _mm512_set1_ps(terms[t].weight);
        for (int p = 0; p < P; ++p) acc[p] = acc[p] + weight * load(terms[t].offset, p);
      }
    }
    for (int p = 0; p < P; ++p) _mm512_store_ps(r + p * stride + 16 * g, acc[p]);
  }
  for (int v = 0; v < plan.vectors; ++v) {
    const PackedVector& vector = vectors[v];
    __m512 lo[P], hi[P], acc[P];
    for (int p = 0; p < P; ++p) {
      lo[p] = _mm512_load_ps(r + p * stride + 16 * vector.reg);
      hi[p] = _mm512_load_ps(r + p * stride + 16 * vector.reg + 16);
    }
    packed_slot_sums<P>(slots + vector.first_slot, vector.slots, lo, hi, acc);
    // Whole-register stores while they end inside their plane (later vectors overwrite what
    // lies past the vector's rows), else up to the plane's end.
    const std::int64_t at = std::int64_t(vector.a0) * dst_w;
    for (int p = 0; p < P; ++p) {
      const __m512 result = _mm512_maskz_mul_ps(__mmask16(vector.rows_mask), scales, acc[p]);
      float* const to = out + p * dst_plane + at;
      if (at + 16 <= dst_plane) {
        _mm512_storeu_ps(to, result);
      } else {
        _mm512_mask_storeu_ps(to, first_lanes(dst_plane - at), result);
      }
    }
  }
}

#ifndef SSB_NCHW_PACKED_PLANES
#define SSB_NCHW_PACKED_PLANES 4
#endif

// Planes c0 .. c0 + count - 1 of image n of float NCHW maps whose rows fit packed_fits, by the
// packed body with the image's plan (packed_plan). `scratch` holds 16 * SSB_NCHW_PACKED_PLANES *
// (dst.height + 1) + 16 floats.
inline void gather_planes_packed(const PackedPlan& plan, const PackedTerm* terms,
                                 const PackedRegister* registers, const PackedVector* vectors,
                                 const LaneSlot* slots, const FeatureMap<const float>& src,
                                 const FeatureMap<float>& dst, int n, int c0, int count,
                                 float scale, float* scratch) {
  constexpr int P = SSB_NCHW_PACKED_PLANES;
  const int dst_h = dst.height, dst_w = dst.width, src_w = src.width;
  const std::int64_t src_plane = std::int64_t(src.height) * src_w;
  const std::int64_t dst_plane = std::int64_t(dst_h) * dst_w;
  const std::int64_t src_size = std::int64_t(src.batch) * src.channels * src_plane;
  float* const r = aligned_64(scratch);
  for (int p = 0; p < P; ++p) {
    _mm512_store_ps(r + 16 * (p * (plan.registers + 1) + plan.registers), _mm512_setzero_ps());
  }
  const __m512 scales = _mm512_set1_ps(scale);
  for (int c = c0, planes = 0; c < c0 + count; c += planes) {
    planes = c + P <= c0 + count ? P : 1;
    const std::int64_t base = (std::int64_t(n) * src.channels + c) * src_plane;
    float* const out = dst.data + (std::int64_t(n) * dst.channels + c) * dst_plane;
    const bool inside =
        base + plan.lowest >= 0 && base + (planes - 1) * src_plane + plan.highest < src_size;
#define SSB_PACKED_PLANES(PLANES, CHECKED)                                               \
  packed_planes<PLANES, CHECKED>(plan, terms, registers, vectors, slots, src.data, base, \
                                 src_plane, src_size, out, dst_plane, dst_w, scales, r)
    if (planes == P) {
      if (inside) {
        SSB_PACKED_PLANES(P, false);
      } else {
        SSB_PACKED_PLANES(P, true);
      }
    } else if (inside) {
      SSB_PACKED_PLANES(1, false);
    } else {
      SSB_PACKED_PLANES(1, true);
    }
#undef SSB_PACKED_PLANES
  }
}

}  // namespace detail
}  // namespace ssb
#endif
