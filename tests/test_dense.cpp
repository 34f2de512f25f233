// Every backend against the paper's dense form (ssb::dense), in double, on random sizes.
#include "support.hpp"

using test::Layout;

TEST_CASE_TEMPLATE("weights and both samplers agree with the dense form", Exec, SSB_TEST_BACKENDS) {
  std::mt19937 rng(20221023);
  int cases = 0;
  for (const auto& s : test::test_shapes(rng, 40)) {
    for (Layout layout : {Layout::nhwc, Layout::nchw}) {
      CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, layout));
      const auto saliency = test::smooth_saliency<double>(rng, s.n, s.h, s.w);
      const auto w = test::weights_for(Exec{}, saliency, s.hr, s.wr);
      const auto d = ssb::dense::weights(saliency.view(), s.hr, s.wr);
      const auto expanded = ssb::dense::to_dense(w);
      test::check_close(expanded.gy, d.gy, 8, "Gy");
      test::check_close(expanded.gx, d.gx, 8, "Gx");

      const auto x = test::random_tensor<double>(rng, s.n, s.h, s.w, s.c, layout);
      test::Tensor<double> xr_ref(s.n, s.hr, s.wr, s.c, layout);
      ssb::dense::sample(d, x.cview(), xr_ref.view());
      // Each output sums at most (H + Hr) (W + Wr) terms of weight <= 1/(Hr Wr), scaled by Hr Wr.
      const double k = 4.0 * (s.h + s.hr) * (s.w + s.wr);
      test::check_close(test::sampled(Exec{}, w, x).data, xr_ref.data, k, "sample");

      const auto y = test::random_tensor<double>(rng, s.n, s.hr, s.wr, s.c, layout);
      test::Tensor<double> z_ref(s.n, s.h, s.w, s.c, layout);
      ssb::dense::sample_inverse(d, y.cview(), z_ref.view());
      test::check_close(test::inverse_sampled(Exec{}, w, y).data, z_ref.data, k, "sample_inverse");
      ++cases;
    }
  }
  CHECK(cases == 2 * (9 + 40));
}

TEST_CASE_TEMPLATE("spiky maps and zooming in (Hr > H) agree with the dense form", Exec,
                   SSB_TEST_BACKENDS) {
  std::mt19937 rng(7);
  for (const auto& s : std::vector<test::Shape>{{3, 12, 9, 4, 5, 4},
                                                {2, 4, 6, 3, 11, 13},
                                                {1, 30, 30, 2, 7, 7},
                                                {1, 40, 36, 3, 17, 9},
                                                {1, 12, 70, 2, 40, 9}}) {
    CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, Layout::nhwc));
    const auto saliency = test::spiky_saliency<double>(rng, s.n, s.h, s.w);
    const auto w = test::weights_for(Exec{}, saliency, s.hr, s.wr);
    const auto d = ssb::dense::weights(saliency.view(), s.hr, s.wr);
    test::check_close(ssb::dense::to_dense(w).gy, d.gy, 8, "Gy");
    test::check_close(ssb::dense::to_dense(w).gx, d.gx, 8, "Gx");
    const auto x = test::random_tensor<double>(rng, s.n, s.h, s.w, s.c, Layout::nhwc);
    test::Tensor<double> xr_ref(s.n, s.hr, s.wr, s.c, Layout::nhwc);
    ssb::dense::sample(d, x.cview(), xr_ref.view());
    test::check_close(test::sampled(Exec{}, w, x).data, xr_ref.data,
                      4.0 * (s.h + s.hr) * (s.w + s.wr), "sample");
  }
}
