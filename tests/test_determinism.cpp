// The OpenMP backend gives the serial backend's bits at 1, 2 and 4 threads, for every verb.
#include "support.hpp"

#ifdef SSB_TEST_OPENMP

using test::Layout;

namespace {

// Every output of every verb for one problem, computed on one backend.
template <class T>
struct Outputs {
  std::vector<T> gy, gx, xr, z, dx, dy, dw, ds;
};

template <class T, class Exec>
Outputs<T> run_all(const Exec& exec, const test::Saliency<T>& s, const test::Tensor<T>& x,
                   const test::Tensor<T>& y, const test::Tensor<T>& dxr,
                   const test::Tensor<T>& dz) {
  Outputs<T> o;
  const auto w = test::weights_for(exec, s, y.h, y.w);
  const auto d = ssb::dense::to_dense(w);
  o.gy = d.gy, o.gx = d.gx;
  o.xr = test::sampled(exec, w, x).data;
  o.z = test::inverse_sampled(exec, w, y).data;
  test::Tensor<T> dx(x.n, x.h, x.w, x.c, x.layout), dy(y.n, y.h, y.w, y.c, y.layout);
  ssb::HostWeightsGrad<T> dw(w);
  ssb::sample_backward(exec, w, x.cview(), dxr.cview(), dx.view(), dw);
  ssb::sample_inverse_backward(exec, w, y.cview(), dz.cview(), dy.view(), dw);
  test::Saliency<T> ds(s.n, s.h, s.w);
  ssb::compute_weights_backward(exec, s.view(), w, dw, ds.mut());
  o.dx = dx.data, o.dy = dy.data, o.dw = dw.values(), o.ds = ds.data;
  return o;
}

template <class T>
void check_bitwise(const Outputs<T>& a, const Outputs<T>& b) {
  CHECK(test::bitwise_equal(a.gy, b.gy));
  CHECK(test::bitwise_equal(a.gx, b.gx));
  CHECK(test::bitwise_equal(a.xr, b.xr));
  CHECK(test::bitwise_equal(a.z, b.z));
  CHECK(test::bitwise_equal(a.dx, b.dx));
  CHECK(test::bitwise_equal(a.dy, b.dy));
  CHECK(test::bitwise_equal(a.dw, b.dw));
  CHECK(test::bitwise_equal(a.ds, b.ds));
}

}  // namespace

TEST_CASE_TEMPLATE("OpenMP at 1, 2 and 4 threads equals serial bit for bit, forked or not", T,
                   float, double) {
  std::mt19937 rng(41);
  std::vector<test::Shape> shapes = test::test_shapes(rng, 6);
  shapes.push_back({4, 28, 28, 64, 16, 16});
  shapes.push_back({1, 14, 14, 37, 8, 8});
  for (const auto& s : shapes) {
    for (Layout layout : {Layout::nhwc, Layout::nchw}) {
      CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, layout));
      const auto saliency = test::spiky_saliency<T>(rng, s.n, s.h, s.w);
      const auto x = test::random_tensor<T>(rng, s.n, s.h, s.w, s.c, layout);
      const auto y = test::random_tensor<T>(rng, s.n, s.hr, s.wr, s.c, layout);
      const auto dxr = test::random_tensor<T>(rng, s.n, s.hr, s.wr, s.c, layout);
      const auto dz = test::random_tensor<T>(rng, s.n, s.h, s.w, s.c, layout);
      const auto reference = run_all(ssb::serial{}, saliency, x, y, dxr, dz);
      for (int threads : {1, 2, 4}) {
        CAPTURE(threads);
        // This build forks on every launch (SSB_OPENMP_MIN_WORK 0); a huge threshold runs every
        // launch on the calling thread instead.
        check_bitwise(reference, run_all(ssb::openmp{threads}, saliency, x, y, dxr, dz));
        check_bitwise(reference, run_all(ssb::openmp{threads, std::int64_t(1) << 40}, saliency, x,
                                         y, dxr, dz));
      }
    }
  }
}

#endif  // SSB_TEST_OPENMP
