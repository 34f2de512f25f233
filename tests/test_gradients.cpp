// Every gradient against central finite differences in double (MATH.md, "Backward").
//
// Error measure, reported with MESSAGE: max_p |fd_p - analytic_p| / max_p |analytic_p|, the
// worst deviation relative to the largest gradient entry of the tensor.
#include <functional>

#include "support.hpp"

using test::Layout;

namespace {

// Compares `analytic` with central differences of `loss` over the entries of `param` (every entry,
// or `limit` random ones), stepping each by `step(value)`.
double fd_error(std::vector<double>& param, const std::vector<double>& analytic,
                const std::function<double()>& loss, const std::function<double(double)>& step,
                std::mt19937& rng, std::size_t limit) {
  REQUIRE(param.size() == analytic.size());
  std::vector<std::size_t> order(param.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  if (order.size() > limit) order.resize(limit);
  double largest = 0.0, worst = 0.0;
  for (double g : analytic) largest = std::max(largest, std::abs(g));
  for (std::size_t p : order) {
    const double v = param[p], h = step(v);
    param[p] = v + h;
    const double up = loss();
    param[p] = v - h;
    const double down = loss();
    param[p] = v;
    const double fd = (up - down) / (2.0 * h);
    worst = std::max(worst, std::abs(fd - analytic[p]));
  }
  return largest > 0.0 ? worst / largest : worst;
}

// The loss of an SSB layer's two samplers sharing one set of weights:
//     L(S, X, Y) = <sample(X; S), A> + <sample_inverse(Y; S), B>
template <class Exec>
struct SsbLoss {
  test::Saliency<double> s;
  test::Tensor<double> x, y, a, b;
  int hr, wr;

  double operator()() const {
    const auto w = test::weights_for(Exec{}, s, hr, wr);
    return test::dot(test::sampled(Exec{}, w, x), a) +
           test::dot(test::inverse_sampled(Exec{}, w, y), b);
  }
};

template <class Exec>
SsbLoss<Exec> make_loss(std::mt19937& rng, test::Saliency<double> s, int c, int hr, int wr,
                        Layout layout) {
  return {s,
          test::random_tensor<double>(rng, s.n, s.h, s.w, c, layout),
          test::random_tensor<double>(rng, s.n, hr, wr, c, layout),
          test::random_tensor<double>(rng, s.n, hr, wr, c, layout),
          test::random_tensor<double>(rng, s.n, s.h, s.w, c, layout),
          hr,
          wr};
}

struct Worst {
  double dx = 0, dy = 0, ds = 0;
};

// Runs all three checks on one problem and returns the errors.
template <class Exec>
Worst check_problem(std::mt19937& rng, SsbLoss<Exec>& f) {
  const auto w = test::weights_for(Exec{}, f.s, f.hr, f.wr);
  Worst e;
  // d_x of sample with upstream gradient A, d_y of sample_inverse with upstream gradient B; both
  // are overwritten, so they start as NaN.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  test::Tensor<double> dx(f.x.n, f.x.h, f.x.w, f.x.c, f.x.layout, nan);
  test::Tensor<double> dy(f.y.n, f.y.h, f.y.w, f.y.c, f.y.layout, nan);
  ssb::sample_backward(Exec{}, w, f.x.cview(), f.a.cview(), dx.view(), ssb::WeightsGrad<double>{});
  ssb::sample_inverse_backward(Exec{}, w, f.y.cview(), f.b.cview(), dy.view(),
                               ssb::WeightsGrad<double>{});
  const auto written = [](const std::vector<double>& v) {
    return std::all_of(v.begin(), v.end(), [](double e) { return std::isfinite(e); });
  };
  CHECK(written(dx.data));
  CHECK(written(dy.data));
  const auto linear_step = [](double) { return 1e-3; };
  e.dx = fd_error(
      f.x.data, dx.data, [&] { return test::dot(test::sampled(Exec{}, w, f.x), f.a); }, linear_step,
      rng, 200);
  e.dy = fd_error(
      f.y.data, dy.data, [&] { return test::dot(test::inverse_sampled(Exec{}, w, f.y), f.b); },
      linear_step, rng, 200);
  // d_saliency: both samplers' weight gradients accumulated, then compute_weights_backward.
  ssb::HostWeightsGrad<double> dw(w);
  ssb::sample_backward(Exec{}, w, f.x.cview(), f.a.cview(), ssb::FeatureMap<double>{}, dw);
  ssb::sample_inverse_backward(Exec{}, w, f.y.cview(), f.b.cview(), ssb::FeatureMap<double>{}, dw);
  test::Saliency<double> ds(f.s.n, f.s.h, f.s.w, -1.0);
  ssb::compute_weights_backward(Exec{}, f.s.view(), w, dw, ds.mut());
  e.ds = fd_error(
      f.s.data, ds.data, std::ref(f), [](double v) { return 1e-6 * v; }, rng, 400);
  return e;
}

}  // namespace

TEST_CASE_TEMPLATE("gradients match central finite differences", Exec, SSB_TEST_BACKENDS) {
  std::mt19937 rng(31);
  struct Problem {
    const char* kind;
    test::Shape s;
    Layout layout;
  };
  const std::vector<Problem> problems = {
      {"smooth", {2, 9, 7, 3, 4, 3}, Layout::nhwc},
      {"smooth", {1, 12, 10, 2, 5, 7}, Layout::nchw},
      {"smooth", {3, 6, 6, 4, 3, 3}, Layout::nhwc},
      {"smooth", {1, 1, 5, 3, 1, 2}, Layout::nhwc},
      {"spiky", {2, 10, 8, 3, 4, 4}, Layout::nhwc},
      {"spiky", {1, 16, 16, 2, 6, 5}, Layout::nchw},
      {"zoom in", {2, 5, 4, 3, 9, 7}, Layout::nhwc},
      {"zoom in", {1, 3, 6, 2, 8, 11}, Layout::nchw},
      {"zoom in", {1, 4, 4, 2, 4, 9}, Layout::nhwc},
      // planes too large for channel tiles in double (planar.hpp's plane bodies)
      {"smooth", {1, 34, 32, 2, 9, 7}, Layout::nchw},
      {"zoom in", {1, 8, 30, 2, 40, 9}, Layout::nchw}};
  Worst overall;
  for (const auto& p : problems) {
    const auto& s = p.s;
    const std::string kind = p.kind;
    CAPTURE(kind);
    CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, p.layout));
    auto saliency = kind == "spiky" ? test::spiky_saliency<double>(rng, s.n, s.h, s.w)
                                    : test::smooth_saliency<double>(rng, s.n, s.h, s.w);
    auto f = make_loss<Exec>(rng, saliency, s.c, s.hr, s.wr, p.layout);
    const Worst e = check_problem(rng, f);
    CHECK(e.dx <= 1e-9);
    CHECK(e.dy <= 1e-9);
    CHECK(e.ds <= 1e-6);
    MESSAGE(kind << " " << test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, p.layout) << ": d_x "
                 << e.dx << ", d_y " << e.dy << ", d_saliency " << e.ds);
    overall.dx = std::max(overall.dx, e.dx);
    overall.dy = std::max(overall.dy, e.dy);
    overall.ds = std::max(overall.ds, e.ds);
  }
  MESSAGE("worst relative error: d_x " << overall.dx << ", d_y " << overall.dy << ", d_saliency "
                                       << overall.ds);
}

TEST_CASE_TEMPLATE("d_weights accumulates and either output may be skipped", Exec,
                   SSB_TEST_BACKENDS) {
  std::mt19937 rng(32);
  auto f = make_loss<Exec>(rng, test::smooth_saliency<double>(rng, 2, 7, 6), 3, 3, 4, Layout::nhwc);
  const auto w = test::weights_for(Exec{}, f.s, f.hr, f.wr);
  ssb::HostWeightsGrad<double> once(w), twice(w);
  test::Tensor<double> dx(f.x.n, f.x.h, f.x.w, f.x.c, f.x.layout), dx_alone = dx;
  ssb::sample_backward(Exec{}, w, f.x.cview(), f.a.cview(), dx.view(), once);
  ssb::sample_backward(Exec{}, w, f.x.cview(), f.a.cview(), ssb::FeatureMap<double>{}, twice);
  ssb::sample_backward(Exec{}, w, f.x.cview(), f.a.cview(), ssb::FeatureMap<double>{}, twice);
  ssb::sample_backward(Exec{}, w, ssb::FeatureMap<const double>{}, f.a.cview(), dx_alone.view(),
                       ssb::WeightsGrad<double>{});
  CHECK(test::bitwise_equal(dx.data, dx_alone.data));
  bool any_nonzero = false;
  for (std::size_t i = 0; i < once.values().size(); ++i) {
    CHECK(twice.values()[i] == 2.0 * once.values()[i]);
    any_nonzero = any_nonzero || once.values()[i] != 0.0;
  }
  CHECK(any_nonzero);
}

namespace {

// One backward verb called once for both outputs, and once for each alone: the same bits. For
// NHWC maps the call with both runs the data gradient and the pair dots pixel by pixel in one
// launch (backward_row_nhwc), the calls for one output each their own launch.
template <class Exec, class T>
void check_backward_parts(std::mt19937& rng, const test::Saliency<T>& s, int c, int hr, int wr) {
  const auto w = test::weights_for(Exec{}, s, hr, wr);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (const bool inverse : {false, true}) {
    CAPTURE(inverse);
    // primal on its grid, upstream on the other.
    const int ph = inverse ? hr : s.h, pw = inverse ? wr : s.w;
    const int uh = inverse ? s.h : hr, uw = inverse ? s.w : wr;
    const auto primal = test::random_tensor<T>(rng, s.n, ph, pw, c, Layout::nhwc);
    const auto upstream = test::random_tensor<T>(rng, s.n, uh, uw, c, Layout::nhwc);
    test::Tensor<T> d_both(s.n, ph, pw, c, Layout::nhwc, nan), d_alone = d_both;
    ssb::HostWeightsGrad<T> dw_both(w), dw_alone(w);
    const auto run = [&](ssb::FeatureMap<T> d, ssb::WeightsGrad<T> dw) {
      if (inverse) {
        ssb::sample_inverse_backward(Exec{}, w, primal.cview(), upstream.cview(), d, dw);
      } else {
        ssb::sample_backward(Exec{}, w, primal.cview(), upstream.cview(), d, dw);
      }
    };
    run(d_both.view(), dw_both);
    run(d_alone.view(), ssb::WeightsGrad<T>{});
    run(ssb::FeatureMap<T>{}, dw_alone);
    CHECK(std::none_of(d_both.data.begin(), d_both.data.end(), [](T v) { return std::isnan(v); }));
    CHECK(test::bitwise_equal(d_both.data, d_alone.data));
    CHECK(test::bitwise_equal(dw_both.values(), dw_alone.values()));
    CHECK(std::any_of(dw_both.values().begin(), dw_both.values().end(),
                      [](T v) { return v != T(0); }));
  }
}

}  // namespace

TEST_CASE_TEMPLATE("a backward verb gives the same bits for both outputs as for each alone", Exec,
                   SSB_TEST_BACKENDS) {
  // Channels below, at and above a register block and a group of dot lanes (gather_pixel_block,
  // gather_pixel_fixed, gather_dots_pixel_fixed and its channel tails of more than one register
  // block, the pair dots' lane tail); ranges of 1 x 1 to 2 x 2 segments, up to 3 x 3 and larger
  // (a hard zoom, and sampling up); zero rows and columns (empty ranges).
  std::mt19937 rng(34);
  struct Case {
    int n, h, w, c, hr, wr;
    int kind;  // 0 smooth, 1 spiky, 2 zero rows and columns
  };
  for (const Case& k :
       {Case{2, 7, 7, 70, 4, 4, 0}, Case{2, 14, 12, 37, 8, 7, 1}, Case{1, 9, 7, 100, 12, 10, 0},
        Case{2, 12, 30, 3, 10, 9, 1}, Case{2, 10, 11, 48, 6, 5, 2}, Case{1, 5, 5, 129, 3, 3, 0},
        Case{1, 8, 8, 117, 5, 5, 2}}) {
    CAPTURE(test::describe(k.n, k.h, k.w, k.c, k.hr, k.wr, Layout::nhwc));
    auto sf = k.kind == 1 ? test::spiky_saliency<float>(rng, k.n, k.h, k.w)
                          : test::smooth_saliency<float>(rng, k.n, k.h, k.w);
    if (k.kind == 2) {
      for (int i = 0; i < k.n; ++i) {
        for (int y = 0; y < k.h; ++y) {
          for (int x = 0; x < k.w; ++x) {
            if (y == 0 || y == 4 || y == k.h - 1 || x == 2 || x == k.w - 1) sf.at(i, y, x) = 0.0f;
          }
        }
      }
    }
    test::Saliency<double> sd(k.n, k.h, k.w);
    for (std::size_t i = 0; i < sf.data.size(); ++i) sd.data[i] = double(sf.data[i]);
    check_backward_parts<Exec, float>(rng, sf, k.c, k.hr, k.wr);
    check_backward_parts<Exec, double>(rng, sd, k.c, k.hr, k.wr);
  }
}

#if defined(SSB_VECTOR_EXTENSIONS)
// The NCHW pair dots of planes whose groups of dot_lanes channels fit tile_pair_dots' tiles
// (planar_dots.hpp) keep pair_dot's lanes, order and tree: NHWC's weight gradients, bit for bit.
// So do those of the packed body (float planes of 24 to 128 pixels on both grids together on
// AVX-512 targets: all cases below but the 3x3 one in the native test binary).
// Channels below, at and past one group, and past one tile (1500); zero rows and columns; both
// verbs; float and double. Both grids together have at most 128 pixels, so that one group fits a
// tile (dots_tile_bytes) with vectors of up to 64 bytes. The host bodies, through ssb::serial
// (the OpenMP backend gives its bits, test_determinism.cpp); the GPU backends' pair dots sum in
// their own order, and this file also runs in their test binaries.
TEST_CASE("NCHW weight gradients equal NHWC's bit for bit on planes that fit the dot tiles") {
  using Exec = ssb::serial;
  std::mt19937 rng(41);
  struct Case {
    int n, h, w, c, hr, wr;
  };
  const auto check = [&](auto zero, const Case& k) {
    using T = decltype(zero);
    CAPTURE(test::describe(k.n, k.h, k.w, k.c, k.hr, k.wr, Layout::nchw));
    auto s = test::smooth_saliency<T>(rng, k.n, k.h, k.w);
    for (int x = 0; x < k.w; ++x) s.at(0, k.h / 2, x) = T(0);
    for (int y = 0; y < k.h; ++y) s.at(k.n - 1, y, 0) = T(0);
    const auto w = test::weights_for(Exec{}, s, k.hr, k.wr);
    const auto x = test::random_tensor<T>(rng, k.n, k.h, k.w, k.c, Layout::nhwc);
    const auto y = test::random_tensor<T>(rng, k.n, k.hr, k.wr, k.c, Layout::nhwc);
    const auto d_xr = test::random_tensor<T>(rng, k.n, k.hr, k.wr, k.c, Layout::nhwc);
    const auto d_z = test::random_tensor<T>(rng, k.n, k.h, k.w, k.c, Layout::nhwc);
    const auto x_c = test::relayout(x, Layout::nchw), d_xr_c = test::relayout(d_xr, Layout::nchw);
    const auto y_c = test::relayout(y, Layout::nchw), d_z_c = test::relayout(d_z, Layout::nchw);
    const ssb::FeatureMap<T> none{};
    ssb::HostWeightsGrad<T> nhwc(w), nchw(w);
    ssb::sample_backward(Exec{}, w, x.cview(), d_xr.cview(), none, nhwc);
    ssb::sample_backward(Exec{}, w, x_c.cview(), d_xr_c.cview(), none, nchw);
    CHECK(test::bitwise_equal(nhwc.values(), nchw.values()));
    ssb::HostWeightsGrad<T> inverse_nhwc(w), inverse_nchw(w);
    ssb::sample_inverse_backward(Exec{}, w, y.cview(), d_z.cview(), none, inverse_nhwc);
    ssb::sample_inverse_backward(Exec{}, w, y_c.cview(), d_z_c.cview(), none, inverse_nchw);
    CHECK(test::bitwise_equal(inverse_nhwc.values(), inverse_nchw.values()));
  };
  for (const Case& k : {Case{2, 5, 5, 3, 3, 3}, Case{1, 7, 6, 64, 4, 5}, Case{2, 6, 9, 65, 3, 6},
                        Case{1, 9, 7, 200, 5, 4}, Case{2, 3, 4, 1500, 3, 4},
                        Case{1, 8, 7, 130, 9, 6}, Case{2, 3, 3, 70, 2, 2}}) {
    check(0.0f, k);
    check(0.0, k);
  }
}
#endif

TEST_CASE_TEMPLATE("float weight gradients of NCHW maps agree with NHWC's", Exec,
                   SSB_TEST_BACKENDS) {
  // The NCHW pair dots of larger planes have their own bodies (planar_dots.hpp), with their own
  // order of summation: they agree with the NHWC ones to float rounding (small planes: bit for bit,
  // the test above). Shapes: small planes, planes of 128 pixels
  // and more with rows up to 32 wide, rows wider than 32, a saliency band that zooms hard
  // (gathers in the lane bodies), rows wider than 32 with two hot rows, each of which many
  // y segments share, rows wider than 32 with 129 y segments (three chunks of the wide lane
  // body, dots_wide_chunk), and rows up to 32 wide on input planes of 1200 floats (channels in
  // groups of dots_group, the last one short).
  std::mt19937 rng(33);
  struct Case {
    int n, h, w, c, hr, wr;
    bool band, hot_rows;
  };
  for (const Case& k :
       {Case{2, 7, 6, 5, 3, 4, false, false}, Case{2, 14, 12, 37, 8, 7, false, false},
        Case{1, 20, 30, 9, 11, 29, false, false}, Case{2, 12, 90, 6, 10, 70, false, false},
        Case{2, 12, 90, 6, 10, 70, true, false}, Case{2, 12, 40, 5, 30, 33, false, true},
        Case{2, 70, 40, 3, 60, 36, false, false}, Case{2, 40, 30, 7, 24, 20, false, false}}) {
    CAPTURE(test::describe(k.n, k.h, k.w, k.c, k.hr, k.wr, Layout::nchw));
    auto s = test::smooth_saliency<float>(rng, k.n, k.h, k.w);
    if (k.band) {
      for (int i = 0; i < k.n; ++i)
        for (int y = 0; y < k.h; ++y)
          for (int x = 40; x < 50; ++x) s.at(i, y, x) = 50.0f;
    }
    if (k.hot_rows) {
      for (int i = 0; i < k.n; ++i)
        for (int x = 0; x < k.w; ++x) s.at(i, 4, x) = s.at(i, 9, x) = 20.0f;
    }
    const auto w = test::weights_for(Exec{}, s, k.hr, k.wr);
    const auto x = test::random_tensor<float>(rng, k.n, k.h, k.w, k.c, Layout::nhwc);
    const auto y = test::random_tensor<float>(rng, k.n, k.hr, k.wr, k.c, Layout::nhwc);
    const auto d_xr = test::random_tensor<float>(rng, k.n, k.hr, k.wr, k.c, Layout::nhwc);
    const auto d_z = test::random_tensor<float>(rng, k.n, k.h, k.w, k.c, Layout::nhwc);
    ssb::HostWeightsGrad<float> nhwc(w), nchw(w);
    ssb::sample_backward(Exec{}, w, x.cview(), d_xr.cview(), ssb::FeatureMap<float>{}, nhwc);
    ssb::sample_inverse_backward(Exec{}, w, y.cview(), d_z.cview(), ssb::FeatureMap<float>{}, nhwc);
    const auto x_c = test::relayout(x, Layout::nchw), d_xr_c = test::relayout(d_xr, Layout::nchw);
    const auto y_c = test::relayout(y, Layout::nchw), d_z_c = test::relayout(d_z, Layout::nchw);
    ssb::sample_backward(Exec{}, w, x_c.cview(), d_xr_c.cview(), ssb::FeatureMap<float>{}, nchw);
    ssb::sample_inverse_backward(Exec{}, w, y_c.cview(), d_z_c.cview(), ssb::FeatureMap<float>{},
                                 nchw);
    float largest = 0.0f, worst = 0.0f;
    for (std::size_t i = 0; i < nhwc.values().size(); ++i) {
      largest = std::max(largest, std::abs(nhwc.values()[i]));
      worst = std::max(worst, std::abs(nhwc.values()[i] - nchw.values()[i]));
    }
    CHECK(largest > 0.0f);
    CHECK(worst <= 1e-5f * largest);
  }
}
