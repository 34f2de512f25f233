// ssbnet: the paper's dense form (eqs. 1-9 taken literally): materialised Hr x H and Wr x W weight
// matrices and two batched matrix products per sampler. O(H*Hr) memory per image and axis and
// O(Hr*H*W*C + Hr*Wr*W*C) work: the oracle the banded kernels are tested against and the
// baseline they are benchmarked against. Plain loops, accumulation in double, host only.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/checks.hpp"
#include "types.hpp"
#include "weights.hpp"

namespace ssb {
namespace dense {

// Gy[n] (out_h x in_h) and Gx[n] (out_w x in_w), row-major, images back to back.
template <class T>
struct DenseWeights {
  int batch = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  std::vector<T> gy, gx;
  const T* gy_of(int n) const { return gy.data() + std::int64_t(n) * out_h * in_h; }
  const T* gx_of(int n) const { return gx.data() + std::int64_t(n) * out_w * in_w; }
};

// Eqs. 3-7 for one axis: G[i,j] = max(min(CS[j+1], CU[i+1]) - max(CS[j], CU[i]), 0) with
// CS the cumulative sum of `marginal` (CS[in] = 1 exactly) and CU[i] = i / out.
template <class T>
void weight_matrix(const double* marginal, int in, int out, T* g) {
  std::vector<double> cs(std::size_t(in) + 1, 0.0);
  for (int j = 0; j < in; ++j) cs[j + 1] = cs[j] + marginal[j];
  cs[in] = 1.0;
  for (int i = 0; i < out; ++i) {
    const double cu_lo = double(i) / out, cu_hi = double(i + 1) / out;
    for (int j = 0; j < in; ++j) {
      const double hi = cs[j + 1] < cu_hi ? cs[j + 1] : cu_hi;
      const double lo = cs[j] > cu_lo ? cs[j] : cu_lo;
      g[std::int64_t(i) * in + j] = T(hi - lo > 0.0 ? hi - lo : 0.0);
    }
  }
}

// Eqs. 1-7 for a batch of saliency maps; a map that sums to 0 is treated as uniform.
template <class S>
DenseWeights<std::remove_const_t<S>> weights(SaliencyMap<S> s, int out_h, int out_w) {
  using T = std::remove_const_t<S>;
  detail::check_view("ssb::dense::weights", "saliency", s);
  detail::check_positive("ssb::dense::weights", "out_h", out_h);
  detail::check_positive("ssb::dense::weights", "out_w", out_w);
  DenseWeights<T> d;
  d.batch = s.batch, d.in_h = s.height, d.in_w = s.width, d.out_h = out_h, d.out_w = out_w;
  d.gy.resize(std::size_t(s.batch) * out_h * s.height);
  d.gx.resize(std::size_t(s.batch) * out_w * s.width);
  std::vector<double> sy(std::size_t(s.height)), sx(std::size_t(s.width));
  for (int n = 0; n < s.batch; ++n) {
    double total = 0.0;
    for (int h = 0; h < s.height; ++h) sy[h] = 0.0;
    for (int w = 0; w < s.width; ++w) sx[w] = 0.0;
    for (int h = 0; h < s.height; ++h) {
      for (int w = 0; w < s.width; ++w) {
        const double v = double(s.data[(std::int64_t(n) * s.height + h) * s.width + w]);
        sy[h] += v;
        sx[w] += v;
        total += v;
      }
    }
    for (int h = 0; h < s.height; ++h) sy[h] = total > 0.0 ? sy[h] / total : 1.0 / s.height;
    for (int w = 0; w < s.width; ++w) sx[w] = total > 0.0 ? sx[w] / total : 1.0 / s.width;
    weight_matrix(sy.data(), s.height, out_h, d.gy.data() + std::int64_t(n) * out_h * s.height);
    weight_matrix(sx.data(), s.width, out_w, d.gx.data() + std::int64_t(n) * out_w * s.width);
  }
  return d;
}

// The dense matrices of segment weights computed by any backend (for comparisons).
template <class T>
DenseWeights<T> to_dense(const Weights<T>& w) {
  DenseWeights<T> d;
  d.batch = w.batch, d.in_h = w.in_height(), d.in_w = w.in_width();
  d.out_h = w.out_height(), d.out_w = w.out_width();
  d.gy.assign(std::size_t(d.batch) * d.out_h * d.in_h, T(0));
  d.gx.assign(std::size_t(d.batch) * d.out_w * d.in_w, T(0));
  for (int n = 0; n < w.batch; ++n) {
    for (const auto& [axis, g] : {std::pair{&w.y, d.gy.data()}, std::pair{&w.x, d.gx.data()}}) {
      const AxisImage<T> a = axis->image(n);
      T* gn = g + std::int64_t(n) * a.out_size * a.in_size;
      for (int k = 0; k < a.count(); ++k) {
        gn[std::int64_t(a.out_index[k]) * a.in_size + a.in_index[k]] += a.weight[k];
      }
    }
  }
  return d;
}

namespace impl {

// dst[n,a,b,c] = scale * sum_{j,l} Ga[n][a? j] Gb[n][b? l] src[n,j,l,c] as two matrix products:
//     P = Ga src (per image, channel)   then   dst = scale * P Gb^T
// forward: Ga = Gy (a on the sampled grid); inverse: Ga = Gy^T (a on the input grid).
template <class T>
void two_matmuls(const DenseWeights<T>& d, const FeatureMap<const T>& src, const FeatureMap<T>& dst,
                 bool inverse, double scale) {
  const int A = dst.height, B = dst.width, J = src.height, L = src.width, C = dst.channels;
  std::vector<double> p(std::size_t(A) * L);
  for (int n = 0; n < d.batch; ++n) {
    const T* gy = d.gy_of(n);
    const T* gx = d.gx_of(n);
    // G[a][j] of the y axis for this direction (Gy is out_h x in_h).
    const auto ga = [&](int a, int j) {
      return double(inverse ? gy[std::int64_t(j) * d.in_h + a] : gy[std::int64_t(a) * d.in_h + j]);
    };
    const auto gb = [&](int b, int l) {
      return double(inverse ? gx[std::int64_t(l) * d.in_w + b] : gx[std::int64_t(b) * d.in_w + l]);
    };
    for (int c = 0; c < C; ++c) {
      const auto at = [&](int j, int l) {
        return double(src.data[src.pixel_offset(n, j, l) + c * src.channel_stride()]);
      };
      for (int a = 0; a < A; ++a) {
        for (int l = 0; l < L; ++l) {
          double sum = 0.0;
          for (int j = 0; j < J; ++j) sum += ga(a, j) * at(j, l);
          p[std::size_t(a) * L + l] = sum;
        }
      }
      for (int a = 0; a < A; ++a) {
        for (int b = 0; b < B; ++b) {
          double sum = 0.0;
          for (int l = 0; l < L; ++l) sum += p[std::size_t(a) * L + l] * gb(b, l);
          dst.data[dst.pixel_offset(n, a, b) + c * dst.channel_stride()] = T(scale * sum);
        }
      }
    }
  }
}

template <class T>
void check_dense(const char* verb, const DenseWeights<T>& d, const FeatureMap<const T>& in,
                 int in_h, int in_w, const FeatureMap<T>& out, int out_h, int out_w) {
  ssb::detail::check_view(verb, "input", in);
  ssb::detail::check_view(verb, "output", out);
  ssb::detail::check_grid(verb, "input", in, d.batch, in_h, in_w, "source");
  ssb::detail::check_grid(verb, "output", out, d.batch, out_h, out_w, "destination");
  ssb::detail::check_same_channels(verb, "input", in, "output", out);
}

}  // namespace impl

// Eq. 8: xr = Hr*Wr * Gy X Gx^T.
template <class T, class X>
void sample(const DenseWeights<T>& d, FeatureMap<X> x, FeatureMap<T> xr) {
  const FeatureMap<const T> in = x;
  impl::check_dense("ssb::dense::sample", d, in, d.in_h, d.in_w, xr, d.out_h, d.out_w);
  impl::two_matmuls(d, in, xr, false, double(d.out_h) * d.out_w);
}

// Eq. 9 (inner sum): z = H*W * Gy^T Y Gx.
template <class T, class Y>
void sample_inverse(const DenseWeights<T>& d, FeatureMap<Y> y, FeatureMap<T> z) {
  const FeatureMap<const T> in = y;
  impl::check_dense("ssb::dense::sample_inverse", d, in, d.out_h, d.out_w, z, d.in_h, d.in_w);
  impl::two_matmuls(d, in, z, true, double(d.in_h) * d.in_w);
}

}  // namespace dense
}  // namespace ssb
