// Test support: tensors, random inputs, comparisons, and one helper per verb that runs it on a
// backend with owning buffers.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ssb_test_backends.hpp"  // generated: includes each enabled backend, SSB_TEST_BACKENDS

namespace test {

using ssb::Layout;

template <class T>
struct Tensor {
  std::vector<T> data;
  int n = 0, h = 0, w = 0, c = 0;
  Layout layout = Layout::nhwc;

  Tensor() = default;
  Tensor(int n_, int h_, int w_, int c_, Layout layout_, T fill = T(0))
      : data(std::size_t(n_) * h_ * w_ * c_, fill), n(n_), h(h_), w(w_), c(c_), layout(layout_) {}
  ssb::FeatureMap<T> view() { return {data.data(), n, h, w, c, layout}; }
  ssb::FeatureMap<const T> cview() const { return {data.data(), n, h, w, c, layout}; }
  std::size_t index(int in, int ih, int iw, int ic) const {
    return std::size_t(cview().pixel_offset(in, ih, iw) + ic * cview().channel_stride());
  }
  T& at(int in, int ih, int iw, int ic) { return data[index(in, ih, iw, ic)]; }
  T at(int in, int ih, int iw, int ic) const { return data[index(in, ih, iw, ic)]; }
};

// The same values in another layout.
template <class T>
Tensor<T> relayout(const Tensor<T>& t, Layout layout) {
  Tensor<T> r(t.n, t.h, t.w, t.c, layout);
  for (int n = 0; n < t.n; ++n)
    for (int h = 0; h < t.h; ++h)
      for (int w = 0; w < t.w; ++w)
        for (int c = 0; c < t.c; ++c) r.at(n, h, w, c) = t.at(n, h, w, c);
  return r;
}

template <class T>
Tensor<T> random_tensor(std::mt19937& rng, int n, int h, int w, int c, Layout layout) {
  Tensor<T> t(n, h, w, c, layout);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (auto& v : t.data) v = T(u(rng));
  return t;
}

// A saliency batch (N x H x W) with its view.
template <class T>
struct Saliency {
  std::vector<T> data;
  int n = 0, h = 0, w = 0;
  Saliency(int n_, int h_, int w_, T fill = T(1))
      : data(std::size_t(n_) * h_ * w_, fill), n(n_), h(h_), w(w_) {}
  ssb::SaliencyMap<const T> view() const { return {data.data(), n, h, w}; }
  ssb::SaliencyMap<T> mut() { return {data.data(), n, h, w}; }
  T& at(int in, int ih, int iw) { return data[(std::size_t(in) * h + ih) * w + iw]; }
};

// Smooth positive maps: exp of a few random low-frequency cosines (values within about 1:20).
template <class T>
Saliency<T> smooth_saliency(std::mt19937& rng, int n, int h, int w) {
  Saliency<T> s(n, h, w);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int in = 0; in < n; ++in) {
    double a[3], fy[3], fx[3], ph[3];
    for (int t = 0; t < 3; ++t) {
      a[t] = u(rng), fy[t] = 3.0 * u(rng), fx[t] = 3.0 * u(rng), ph[t] = 6.28 * u(rng);
    }
    for (int ih = 0; ih < h; ++ih)
      for (int iw = 0; iw < w; ++iw) {
        double v = 0.0;
        for (int t = 0; t < 3; ++t)
          v += a[t] * std::cos(fy[t] * ih / h * 3.14 + fx[t] * iw / w * 3.14 + ph[t]);
        s.at(in, ih, iw) = T(std::exp(v));
      }
  }
  return s;
}

// Random values in [0.5, 1) with one pixel per image 1000x larger.
template <class T>
Saliency<T> spiky_saliency(std::mt19937& rng, int n, int h, int w) {
  Saliency<T> s(n, h, w);
  std::uniform_real_distribution<double> u(0.5, 1.0);
  for (auto& v : s.data) v = T(u(rng));
  for (int in = 0; in < n; ++in) {
    std::uniform_int_distribution<int> ph(0, h - 1), pw(0, w - 1);
    s.at(in, ph(rng), pw(rng)) = T(1000);
  }
  return s;
}

// Weights computed by a backend, with an owning workspace.
template <class Exec, class T>
ssb::HostWeights<T> weights_for(const Exec& exec, const Saliency<T>& s, int out_h, int out_w) {
  ssb::HostWeights<T> w(s.n, s.h, s.w, out_h, out_w);
  ssb::compute_weights(exec, s.view(), out_h, out_w, w);
  return w;
}

// The gathers overwrite their outputs: these start as NaN, so that an element a body leaves
// unwritten shows.
template <class Exec, class T>
Tensor<T> sampled(const Exec& exec, const ssb::Weights<T>& w, const Tensor<T>& x) {
  Tensor<T> xr(x.n, w.out_height(), w.out_width(), x.c, x.layout,
               std::numeric_limits<T>::quiet_NaN());
  ssb::sample(exec, w, x.cview(), xr.view());
  return xr;
}

template <class Exec, class T>
Tensor<T> inverse_sampled(const Exec& exec, const ssb::Weights<T>& w, const Tensor<T>& y) {
  Tensor<T> z(y.n, w.in_height(), w.in_width(), y.c, y.layout, std::numeric_limits<T>::quiet_NaN());
  ssb::sample_inverse(exec, w, y.cview(), z.view());
  return z;
}

template <class T>
T dot(const Tensor<T>& a, const Tensor<T>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.data.size(); ++i) s += double(a.data[i]) * double(b.data[i]);
  return T(s);
}

// |got - ref| <= k * eps * max(|ref|, 1) elementwise; reports the worst element on failure.
template <class T>
void check_close(const std::vector<T>& got, const std::vector<T>& ref, double k,
                 const std::string& what) {
  REQUIRE(got.size() == ref.size());
  const double eps = std::numeric_limits<T>::epsilon();
  double worst = 0.0;
  std::size_t worst_at = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err =
        std::abs(double(got[i]) - double(ref[i])) / std::max(std::abs(double(ref[i])), 1.0);
    if (!(err <= worst)) worst = err, worst_at = i;
  }
  INFO(what << ": worst error " << worst / eps << " eps at element " << worst_at << " (got "
            << (got.empty() ? 0.0 : double(got[worst_at])) << ", expected "
            << (ref.empty() ? 0.0 : double(ref[worst_at])) << ")");
  CHECK(worst <= k * eps);
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

inline std::string describe(int n, int h, int w, int c, int hr, int wr, Layout layout) {
  return std::to_string(n) + "x" + std::to_string(h) + "x" + std::to_string(w) + "x" +
         std::to_string(c) + " -> " + std::to_string(hr) + "x" + std::to_string(wr) + " " +
         ssb::to_string(layout);
}

// Random problem sizes covering H < Hr, odd sizes, 1x1 and batches 1 and 7.
struct Shape {
  int n, h, w, c, hr, wr;
};
inline std::vector<Shape> test_shapes(std::mt19937& rng, int random_count) {
  std::vector<Shape> shapes = {{1, 1, 1, 1, 1, 1},    {1, 1, 1, 3, 3, 2}, {7, 5, 3, 2, 2, 4},
                               {1, 9, 7, 5, 4, 3},    {7, 8, 8, 4, 4, 4}, {2, 6, 10, 3, 9, 13},
                               {1, 13, 11, 33, 5, 6}, {3, 4, 4, 1, 4, 4}, {1, 2, 17, 2, 1, 5}};
  std::uniform_int_distribution<int> batch(1, 7), side(1, 20), out(1, 24), ch(1, 40);
  for (int i = 0; i < random_count; ++i) {
    shapes.push_back({batch(rng), side(rng), side(rng), ch(rng), out(rng), out(rng)});
  }
  return shapes;
}

}  // namespace test
