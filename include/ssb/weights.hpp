// ssbnet: sampling weights in segment form (MATH.md, eqs. 1-7 and "Segments").
//
// For one image and one axis (y shown; x is the same with W, Wr), the Hr x H weight matrix
//     G[i,j] = max(min(CS[j+1], CU[i+1]) - max(CS[j], CU[i]), 0)
// is stored as its K <= H + Hr - 1 non-zero-or-touching segments (i_k, j_k, w_k), k = 0..K-1,
// with i_k and j_k both non-decreasing in k. Two offset arrays make both gathers contiguous:
//     out_begin[i] .. out_begin[i+1]   the segments of output row i   (i = 0..Hr-1)
//     in_begin[j]  .. in_begin[j+1]    the segments of input row j    (j = 0..H-1)
// so the forward gather (per output) and the transposed gather (per input) need no atomics.
//
// Everything lives in one caller-provided workspace (workspace_size() bytes, 8-byte aligned),
// arrays laid out back to back for the whole batch, each starting on a 64-byte boundary:
//     y: weight[N][Ky] T, out_index/in_index[N][Ky] int32, flags[N][Ky] uint8,
//        out_begin[N][Hr+1], in_begin[N][H+1] int32, mass[N][H] double
//     x: the same with W, Wr
//     total[N] double                     sum of each saliency map (0: uniform fallback)
//     gradient_scratch[N][H+1 + W+1]      double, used by compute_weights_backward only
//     status[N]                           int64: -1 once image n's weights are made, 0 before;
//                                         the GPU backends put 1 + a bad value's position there
// with Ky = H + Hr - 1 and Kx = W + Wr - 1 (the capacity: slots k >= K are unused).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "types.hpp"

namespace ssb {

// Flags of a segment: which of its two ends is a saliency breakpoint CS (and so moves with the
// saliency map) rather than a uniform breakpoint CU (a constant). Used by the backward pass.
enum SegmentFlags : std::uint8_t { start_is_saliency = 1, end_is_saliency = 2 };

// The segments of one image along one axis (pointers already offset to that image).
template <class T>
struct AxisImage {
  const T* weight;
  const std::int32_t* out_index;
  const std::int32_t* in_index;
  const std::uint8_t* flags;
  const std::int32_t* out_begin;
  const std::int32_t* in_begin;
  int in_size;
  int out_size;
  SSB_HOST_DEVICE int count() const { return out_begin[out_size]; }
};

// The segments of one axis for the whole batch.
template <class T>
struct AxisSegments {
  int in_size = 0;   // H (or W)
  int out_size = 0;  // Hr (or Wr)
  T* weight = nullptr;
  std::int32_t* out_index = nullptr;
  std::int32_t* in_index = nullptr;
  std::uint8_t* flags = nullptr;
  std::int32_t* out_begin = nullptr;
  std::int32_t* in_begin = nullptr;
  // Row sums r[h] = sum_w S[h,w] (or column sums c[w]) of each map; sy = r / T. All ones for a
  // map that sums to 0 (the uniform fallback).
  double* mass = nullptr;

  // The sum that normalises `mass` for image n: T, or in_size for the uniform fallback.
  SSB_HOST_DEVICE double mass_total(const double* totals, int n) const {
    return totals[n] > 0.0 ? totals[n] : double(in_size);
  }

  // At most in + out - 1 segments per image (MATH.md, "Segments").
  SSB_HOST_DEVICE int capacity() const { return in_size + out_size - 1; }
  SSB_HOST_DEVICE AxisImage<T> image(int n) const {
    const std::int64_t k0 = std::int64_t(n) * capacity();
    return {weight + k0,
            out_index + k0,
            in_index + k0,
            flags + k0,
            out_begin + std::int64_t(n) * (out_size + 1),
            in_begin + std::int64_t(n) * (in_size + 1),
            in_size,
            out_size};
  }
};

// Non-owning view of the sampling weights of a batch, over a workspace.
template <class T>
struct Weights {
  int batch = 0;
  AxisSegments<T> y;  // Hr x H
  AxisSegments<T> x;  // Wr x W
  double* total = nullptr;
  double* gradient_scratch = nullptr;
  // Per image: -1 when compute_weights made its weights (0 in a zeroed, never-filled workspace).
  // The GPU backends, which check the saliency values on the device, store 1 + h*W + w of the
  // first bad value there (1 + H*W when a sum overflows) and leave the segments unwritten; see
  // check_weights_status in ssb/detail/gpu_verbs.hpp.
  std::int64_t* status = nullptr;
  void* workspace = nullptr;  // the memory all of the above lives in
  std::size_t workspace_bytes = 0;

  SSB_HOST_DEVICE int in_height() const { return y.in_size; }
  SSB_HOST_DEVICE int in_width() const { return x.in_size; }
  SSB_HOST_DEVICE int out_height() const { return y.out_size; }
  SSB_HOST_DEVICE int out_width() const { return x.out_size; }
};

// Gradient of a loss with respect to every segment weight, same slots as Weights<T>::weight:
// y[n*capacity_y + k] and x[n*capacity_x + k]. The backward verbs accumulate into it.
template <class T>
struct WeightsGrad {
  T* y = nullptr;
  T* x = nullptr;
  int batch = 0;
  int capacity_y = 0;
  int capacity_x = 0;
};

namespace detail {

constexpr std::size_t workspace_alignment = 64;

inline std::size_t align_up(std::size_t bytes) {
  return (bytes + workspace_alignment - 1) / workspace_alignment * workspace_alignment;
}

[[noreturn]] inline void fail(const std::string& what) {
  throw error(what);
}

inline void check_positive(const char* verb, const char* name, long long value) {
  if (value <= 0) {
    fail(std::string(verb) + ": " + name + " must be > 0, got " + std::to_string(value));
  }
}

// Byte offsets of every array of the workspace (see the file comment); `bytes` is the total.
struct WorkspaceLayout {
  std::size_t y_weight, y_out_index, y_in_index, y_flags, y_out_begin, y_in_begin, y_mass;
  std::size_t x_weight, x_out_index, x_in_index, x_flags, x_out_begin, x_in_begin, x_mass;
  std::size_t total, gradient_scratch, status, bytes;
};

template <class T>
WorkspaceLayout workspace_layout(const char* verb, int batch, int in_h, int in_w, int out_h,
                                 int out_w) {
  check_positive(verb, "batch", batch);
  check_positive(verb, "input height", in_h);
  check_positive(verb, "input width", in_w);
  check_positive(verb, "out_h", out_h);
  check_positive(verb, "out_w", out_w);
  // Segment indices are int32: keep in + out - 1 (and every offset) representable.
  constexpr long long max_extent = std::numeric_limits<std::int32_t>::max() / 2;
  if (in_h > max_extent || in_w > max_extent || out_h > max_extent || out_w > max_extent) {
    fail(std::string(verb) + ": spatial sizes must be <= " + std::to_string(max_extent));
  }
  WorkspaceLayout layout{};
  std::size_t at = 0;
  const auto take = [&at, verb](std::size_t count, std::size_t element) {
    const std::size_t limit = std::numeric_limits<std::size_t>::max() - 2 * workspace_alignment;
    if (count > (limit - at) / element) {
      fail(std::string(verb) + ": the workspace size overflows std::size_t");
    }
    const std::size_t start = at;
    at = align_up(at + count * element);
    return start;
  };
  const std::size_t n = std::size_t(batch);
  const std::size_t ky = std::size_t(in_h) + out_h - 1, kx = std::size_t(in_w) + out_w - 1;
  layout.y_weight = take(n * ky, sizeof(T));
  layout.y_out_index = take(n * ky, sizeof(std::int32_t));
  layout.y_in_index = take(n * ky, sizeof(std::int32_t));
  layout.y_flags = take(n * ky, sizeof(std::uint8_t));
  layout.y_out_begin = take(n * (std::size_t(out_h) + 1), sizeof(std::int32_t));
  layout.y_in_begin = take(n * (std::size_t(in_h) + 1), sizeof(std::int32_t));
  layout.y_mass = take(n * std::size_t(in_h), sizeof(double));
  layout.x_weight = take(n * kx, sizeof(T));
  layout.x_out_index = take(n * kx, sizeof(std::int32_t));
  layout.x_in_index = take(n * kx, sizeof(std::int32_t));
  layout.x_flags = take(n * kx, sizeof(std::uint8_t));
  layout.x_out_begin = take(n * (std::size_t(out_w) + 1), sizeof(std::int32_t));
  layout.x_in_begin = take(n * (std::size_t(in_w) + 1), sizeof(std::int32_t));
  layout.x_mass = take(n * std::size_t(in_w), sizeof(double));
  layout.total = take(n, sizeof(double));
  layout.gradient_scratch =
      take(n * (std::size_t(in_h) + 1 + std::size_t(in_w) + 1), sizeof(double));
  layout.status = take(n, sizeof(std::int64_t));
  layout.bytes = at;
  return layout;
}

}  // namespace detail

// Bytes of workspace that Weights<T> needs for `batch` images of in_h x in_w sampled to
// out_h x out_w. Grows as O(batch * (in_h + out_h + in_w + out_w)).
template <class T>
std::size_t workspace_size(int batch, int in_h, int in_w, int out_h, int out_w) {
  return detail::workspace_layout<T>("ssb::workspace_size", batch, in_h, in_w, out_h, out_w).bytes;
}

// A Weights<T> view over `workspace` (at least workspace_size<T>(...) bytes, 8-byte aligned;
// 64-byte alignment is best). The view is filled by compute_weights.
template <class T>
Weights<T> weights_view(void* workspace, std::size_t workspace_bytes, int batch, int in_h, int in_w,
                        int out_h, int out_w) {
  const char* verb = "ssb::weights_view";
  const auto layout = detail::workspace_layout<T>(verb, batch, in_h, in_w, out_h, out_w);
  if (workspace == nullptr) detail::fail(std::string(verb) + ": workspace is null");
  if (reinterpret_cast<std::uintptr_t>(workspace) % alignof(double) != 0) {
    detail::fail(std::string(verb) + ": workspace must be 8-byte aligned");
  }
  if (workspace_bytes < layout.bytes) {
    detail::fail(std::string(verb) + ": workspace too small: " + std::to_string(workspace_bytes) +
                 " bytes given, " + std::to_string(layout.bytes) + " needed");
  }
  char* base = static_cast<char*>(workspace);
  const auto at = [base](std::size_t offset) { return static_cast<void*>(base + offset); };
  Weights<T> w;
  w.batch = batch;
  w.y.in_size = in_h;
  w.y.out_size = out_h;
  w.y.weight = static_cast<T*>(at(layout.y_weight));
  w.y.out_index = static_cast<std::int32_t*>(at(layout.y_out_index));
  w.y.in_index = static_cast<std::int32_t*>(at(layout.y_in_index));
  w.y.flags = static_cast<std::uint8_t*>(at(layout.y_flags));
  w.y.out_begin = static_cast<std::int32_t*>(at(layout.y_out_begin));
  w.y.in_begin = static_cast<std::int32_t*>(at(layout.y_in_begin));
  w.y.mass = static_cast<double*>(at(layout.y_mass));
  w.x.in_size = in_w;
  w.x.out_size = out_w;
  w.x.weight = static_cast<T*>(at(layout.x_weight));
  w.x.out_index = static_cast<std::int32_t*>(at(layout.x_out_index));
  w.x.in_index = static_cast<std::int32_t*>(at(layout.x_in_index));
  w.x.flags = static_cast<std::uint8_t*>(at(layout.x_flags));
  w.x.out_begin = static_cast<std::int32_t*>(at(layout.x_out_begin));
  w.x.in_begin = static_cast<std::int32_t*>(at(layout.x_in_begin));
  w.x.mass = static_cast<double*>(at(layout.x_mass));
  w.total = static_cast<double*>(at(layout.total));
  w.gradient_scratch = static_cast<double*>(at(layout.gradient_scratch));
  w.status = static_cast<std::int64_t*>(at(layout.status));
  w.workspace = workspace;
  w.workspace_bytes = layout.bytes;
  return w;
}

namespace detail {

// `w` must be a view made by weights_view (every array present).
template <class T>
void check_weights(const char* verb, const Weights<T>& w) {
  const auto axis_ok = [](const AxisSegments<T>& a) {
    return a.in_size > 0 && a.out_size > 0 && a.weight != nullptr && a.out_index != nullptr &&
           a.in_index != nullptr && a.flags != nullptr && a.out_begin != nullptr &&
           a.in_begin != nullptr && a.mass != nullptr;
  };
  if (w.batch <= 0 || !axis_ok(w.y) || !axis_ok(w.x) || w.total == nullptr ||
      w.gradient_scratch == nullptr || w.status == nullptr || w.workspace == nullptr) {
    fail(std::string(verb) + ": weights is empty; make it with ssb::weights_view");
  }
}

}  // namespace detail

// Elements of T that a WeightsGrad<T> for `weights` needs.
template <class T>
std::size_t weights_grad_size(const Weights<T>& weights) {
  return std::size_t(weights.batch) *
         (std::size_t(weights.y.capacity()) + std::size_t(weights.x.capacity()));
}

// A WeightsGrad<T> over `data` (at least weights_grad_size(weights) elements). The backward
// verbs accumulate into it, so zero it before the first of them.
template <class T>
WeightsGrad<T> weights_grad_view(const Weights<T>& weights, T* data, std::size_t elements) {
  const char* verb = "ssb::weights_grad_view";
  detail::check_weights(verb, weights);
  if (data == nullptr) detail::fail(std::string(verb) + ": data is null");
  const std::size_t needed = weights_grad_size(weights);
  if (elements < needed) {
    detail::fail(std::string(verb) + ": buffer too small: " + std::to_string(elements) +
                 " elements given, " + std::to_string(needed) + " needed");
  }
  WeightsGrad<T> g;
  g.batch = weights.batch;
  g.capacity_y = weights.y.capacity();
  g.capacity_x = weights.x.capacity();
  g.y = data;
  g.x = data + std::size_t(weights.batch) * std::size_t(g.capacity_y);
  return g;
}

namespace detail {

// Lanes of the row sums of compute_masses.
constexpr int mass_lanes = 8;

// Row h's mass in the fixed order of compute_masses: column w into lane w mod mass_lanes, then
// the lanes as a halving tree. With Columns, also adds the row into col_mass[w]. least[u] keeps
// the smallest value seen in lane u (NaN compares false and is skipped). The GPU backends sum
// one row per thread through this too, so their masses are the host's bits.
template <bool Columns, class S>
SSB_HOST_DEVICE inline double row_mass(const S* row, int width, double* col_mass,
                                       double (&least)[mass_lanes]) {
  double lane[mass_lanes] = {};
  int w = 0;
  for (; w + mass_lanes <= width; w += mass_lanes) {
    for (int u = 0; u < mass_lanes; ++u) {
      const double v = double(row[w + u]);
      lane[u] += v;
      if (Columns) col_mass[w + u] += v;
      least[u] = v < least[u] ? v : least[u];
    }
  }
  // The last width % mass_lanes columns into lanes 0, 1, ...: a loop of fixed length (so that
  // lane and least stay in registers on narrow maps), the same additions in the same order.
  const int rest = width - w;
  for (int u = 0; u < mass_lanes; ++u) {
    if (u < rest) {
      const double v = double(row[w + u]);
      lane[u] += v;
      if (Columns) col_mass[w + u] += v;
      least[u] = v < least[u] ? v : least[u];
    }
  }
  static_assert(mass_lanes == 8, "the tree below adds eight lanes");
  const double a0 = lane[0] + lane[4], a1 = lane[1] + lane[5];
  const double a2 = lane[2] + lane[6], a3 = lane[3] + lane[7];
  return (a0 + a2) + (a1 + a3);
}

// The smallest of row_mass' least values and 0 (NaN is skipped, as there).
SSB_HOST_DEVICE inline double smallest_of(const double (&least)[mass_lanes]) {
  double smallest = 0.0;
  for (int u = 0; u < mass_lanes; ++u) smallest = least[u] < smallest ? least[u] : smallest;
  return smallest;
}

// The total T of a map from its row sums, added in order, and the uniform fallback of
// compute_masses (every row and column mass 1 when T is not > 0). Returns T.
SSB_HOST_DEVICE inline double finish_masses(double* row_mass, double* col_mass, int height,
                                            int width) {
  double sum = 0.0;
  for (int h = 0; h < height; ++h) sum += row_mass[h];
  if (!(sum > 0.0)) {
    for (int h = 0; h < height; ++h) row_mass[h] = 1.0;
    for (int w = 0; w < width; ++w) col_mass[w] = 1.0;
  }
  return sum;
}

// Eqs. 1-2 for one image, unnormalised: row sums r[h] and column sums c[w] of the saliency map
// in double and the total T = sum r (sy = r / T, sx = c / T). A map that sums to 0 gets r = c = 1
// (uniform weights) and T = 0, which marks the fallback. Returns the smallest value (NaN is
// skipped there but makes T NaN), so that the caller can check the map without a second pass.
// Fixed orders: c[w] and T add rows in order; r[h] as row_mass, so that the row sum is not one
// chain of dependent adds.
template <class S>
SSB_HOST_DEVICE inline double compute_masses(const S* saliency, int height, int width,
                                             double* row_mass_out, double* col_mass,
                                             double* total) {
  for (int w = 0; w < width; ++w) col_mass[w] = 0.0;
  double least[mass_lanes];
  for (int u = 0; u < mass_lanes; ++u) least[u] = 0.0;
  for (int h = 0; h < height; ++h) {
    row_mass_out[h] = row_mass<true>(saliency + std::int64_t(h) * width, width, col_mass, least);
  }
  *total = finish_masses(row_mass_out, col_mass, height, width);
  return smallest_of(least);
}

// The largest finite double (std::numeric_limits is host-only in device code).
constexpr double largest_double = 1.7976931348623157e308;

// The offset of the first negative, NaN or infinite value among `size` saliency values, or -1.
template <class S>
SSB_HOST_DEVICE inline std::int64_t first_bad_value(const S* map, std::int64_t size) {
  for (std::int64_t e = 0; e < size; ++e) {
    const double v = double(map[e]);
    if (!(v >= 0.0 && v <= largest_double)) return e;
  }
  return -1;
}

// Whether the total or a column sum of a map of finite values >= 0 overflowed to infinity.
SSB_HOST_DEVICE inline bool sums_overflow(const double* col_mass, int width, double total) {
  bool overflow = total > largest_double;
  for (int w = 0; w < width; ++w) overflow = overflow || col_mass[w] > largest_double;
  return overflow;
}

// Segment k = (output interval i, input row j) of the merge, from the four breakpoints CS[j],
// CS[j+1], CU[i], CU[i+1]: its weight (the overlap) and flags.
template <class T>
SSB_HOST_DEVICE inline void write_segment(double cs_lo, double cs_hi, double cu_lo, double cu_hi,
                                          int i, int j, int k, T* weight, std::int32_t* out_index,
                                          std::int32_t* in_index, std::uint8_t* flags) {
  const double lo = cs_lo > cu_lo ? cs_lo : cu_lo;
  const double hi = cs_hi < cu_hi ? cs_hi : cu_hi;
  weight[k] = T(hi - lo > 0.0 ? hi - lo : 0.0);
  out_index[k] = i;
  in_index[k] = j;
  flags[k] =
      std::uint8_t((cs_lo > cu_lo ? start_is_saliency : 0) | (cs_hi < cu_hi ? end_is_saliency : 0));
}

// Eqs. 3-7 and the segment walk for one image and axis. Breakpoints in double:
//     CS[j] = (sum_{h<j} mass[h]) / total  (CS[0] = 0, CS[in] = 1 exactly),  CU[i] = i / out
// Dividing the prefix sum once (rather than summing sy = mass / total) keeps CS[j] == CU[i] exact
// where the rationals are equal, e.g. a uniform map with Hr == H samples as the exact identity.
// Merging the two lists yields K <= in + out - 1 segments (i_k, j_k, w_k = hi - lo), both indices
// non-decreasing; a tie CS[j+1] == CU[i+1] advances both. Fills out_begin / in_begin. O(in + out).
//
// The merge itself, with the breakpoints given by functions: cs_next(j) = CS[j+1] (called once
// for each j = 0, 1, ... in order, up to j = in, where it is 1), cu(i) = CU[i]. segment_walk
// computes them as it goes; the GPU backends compute them in parallel first, with the same bits.
template <class T, class CsNext, class Cu>
SSB_HOST_DEVICE inline void merge_breakpoints(CsNext&& cs_next, const Cu& cu, int in_size,
                                              int out_size, T* weight, std::int32_t* out_index,
                                              std::int32_t* in_index, std::uint8_t* flags,
                                              std::int32_t* out_begin, std::int32_t* in_begin) {
  int i = 0, j = 0, k = 0;
  double cs_lo = 0.0;         // CS[j]
  double cs_hi = cs_next(0);  // CS[j+1]
  double cu_lo = cu(0);       // CU[i]
  double cu_hi = cu(1);       // CU[i+1]
  out_begin[0] = 0;
  in_begin[0] = 0;
  while (i < out_size && j < in_size) {
    write_segment(cs_lo, cs_hi, cu_lo, cu_hi, i, j, k, weight, out_index, in_index, flags);
    ++k;
    const bool next_in = !(cs_hi > cu_hi);   // CS[j+1] <= CU[i+1]
    const bool next_out = !(cs_hi < cu_hi);  // CS[j+1] >= CU[i+1]
    if (next_in) {
      ++j;
      in_begin[j] = k;
      cs_lo = cs_hi;
      cs_hi = cs_next(j);
    }
    if (next_out) {
      ++i;
      out_begin[i] = k;
      cu_lo = cu_hi;
      if (i < out_size) cu_hi = cu(i + 1);
    }
  }
  // CS[in] == CU[out] == 1 exactly, so both walks end together, except after trailing rows of
  // zero mass, which get no segment (G is zero there): close their empty ranges.
  for (; i < out_size; ++i) out_begin[i + 1] = k;
  for (; j < in_size; ++j) in_begin[j + 1] = k;
}

// merge_breakpoints row by row, for the GPU walk: the same segments and bits, with the rows in any
// order or in parallel. Here cs(j) = CS[j] for j = 0 .. in (CS[0] = 0, CS[in] = 1), cu(i) = CU[i].
// While input row j is current the serial merge visits the output intervals first .. last:
//   first = #{m in 1..out : CU[m] <= CS[j]}   (the merge reached row j with i = first; first ==
//           out: it had ended, and row j has no segment),
//   last  = min(out - 1, max(first, #{m in 1..out : CU[m] < CS[j+1]})),
// since CU increases strictly and CS does not decrease before CS[in] (CS[j] may round above 1 just
// before it, on the axis whose prefix sums are not the ones that made the total). Row j's
// segments are (first, j) .. (last, j), numbered from in_begin[j] = the segments of the rows
// before it; out_begin[i] = the segments with an output index below i.
struct MergeRow {
  int first, last;
  SSB_HOST_DEVICE int count() const { return last >= first ? last - first + 1 : 0; }
};
template <class Cs, class Cu>
SSB_HOST_DEVICE inline MergeRow merge_row(const Cs& cs, const Cu& cu, int out_size, int j) {
  // #{m in 1..out : CU[m] < v} (or <= v), by bisection over the increasing CU[1..out].
  const auto below = [&](double v, bool or_equal) {
    int lo = 0, hi = out_size;  // the count is in [lo, hi]
    while (lo < hi) {
      const int mid = lo + (hi - lo + 1) / 2;  // is CU[mid] below v?
      const double c = cu(mid);
      if (c < v || (or_equal && c == v)) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    return lo;
  };
  const int first = below(cs(j), true);
  const int after = below(cs(j + 1), false);
  const int last = after > first ? after : first;
  return {first, last < out_size - 1 ? last : out_size - 1};  // first == out: no segment
}
// Writes row j's segments from index k0 = in_begin[j] on: merge_breakpoints' values.
template <class T, class Cs, class Cu>
SSB_HOST_DEVICE inline void merge_row_segments(const Cs& cs, const Cu& cu, int j, MergeRow row,
                                               int k0, T* weight, std::int32_t* out_index,
                                               std::int32_t* in_index, std::uint8_t* flags) {
  const double cs_lo = cs(j), cs_hi = cs(j + 1);
  for (int i = row.first, k = k0; i <= row.last; ++i, ++k) {
    write_segment(cs_lo, cs_hi, cu(i), cu(i + 1), i, j, k, weight, out_index, in_index, flags);
  }
}
// out_begin from the written segments: segment k (< count) sets out_begin[i] = k for the output
// indices i after the previous segment's, up to its own; k == count sets the rest up to out.
SSB_HOST_DEVICE inline void merge_out_begin(const std::int32_t* out_index, int count, int out_size,
                                            int k, std::int32_t* out_begin) {
  const int from = k == 0 ? 0 : out_index[k - 1] + 1;
  const int to = k < count ? out_index[k] : out_size;
  for (int i = from; i <= to; ++i) out_begin[i] = k;
}

// CS[j+1] = (sum_{h <= j} mass[h]) / total for j < in - 1, and 1 from j = in - 1 on; the prefix
// sum in order h = 0, 1, ....
SSB_HOST_DEVICE inline double breakpoint_after(double prefix, double total, int j, int in_size) {
  return j + 1 >= in_size ? 1.0 : prefix / total;
}
SSB_HOST_DEVICE inline double output_breakpoint(int i, int out_size) {
  return double(i) / out_size;
}

template <class T>
SSB_HOST_DEVICE inline void segment_walk(const double* mass, double total, int in_size,
                                         int out_size, T* weight, std::int32_t* out_index,
                                         std::int32_t* in_index, std::uint8_t* flags,
                                         std::int32_t* out_begin, std::int32_t* in_begin) {
  double prefix = mass[0];  // sum_{h <= j} mass[h]
  const auto cs_next = [&](int j) {
    if (j > 0 && j < in_size) prefix += mass[j];
    return breakpoint_after(prefix, total, j, in_size);
  };
  const auto cu = [&](int i) { return output_breakpoint(i, out_size); };
  merge_breakpoints(cs_next, cu, in_size, out_size, weight, out_index, in_index, flags, out_begin,
                    in_begin);
}

}  // namespace detail
}  // namespace ssb
