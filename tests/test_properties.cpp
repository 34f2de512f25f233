// The structural properties of MATH.md ("Facts that make good tests"), on every backend.
#include <utility>

#include "support.hpp"

using test::Layout;

namespace {

// sy[h] = (sum_w S[h,w]) / T and sx, straight from eqs. 1-2.
std::vector<double> marginal(const test::Saliency<double>& s, int n, bool along_y) {
  std::vector<double> m(std::size_t(along_y ? s.h : s.w), 0.0);
  double total = 0.0;
  for (int h = 0; h < s.h; ++h)
    for (int w = 0; w < s.w; ++w) {
      const double v = s.data[(std::size_t(n) * s.h + h) * s.w + w];
      m[std::size_t(along_y ? h : w)] += v;
      total += v;
    }
  for (auto& v : m) v /= total;
  return m;
}

// sample and sample_inverse of NCHW maps against NHWC ones, bit for bit (x on the input grid, y on
// the sampled one, both NHWC).
template <class Exec>
void check_nchw_equals_nhwc(const ssb::Weights<float>& w, const test::Tensor<float>& x,
                            const test::Tensor<float>& y) {
  CHECK(test::bitwise_equal(
      test::relayout(test::sampled(Exec{}, w, test::relayout(x, Layout::nchw)), Layout::nhwc).data,
      test::sampled(Exec{}, w, x).data));
  CHECK(test::bitwise_equal(
      test::relayout(test::inverse_sampled(Exec{}, w, test::relayout(y, Layout::nchw)),
                     Layout::nhwc)
          .data,
      test::inverse_sampled(Exec{}, w, y).data));
}

}  // namespace

TEST_CASE_TEMPLATE("segments: staircase, bound, offsets, row and column sums", Exec,
                   SSB_TEST_BACKENDS) {
  std::mt19937 rng(11);
  for (const auto& s : test::test_shapes(rng, 30)) {
    CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, Layout::nhwc));
    const auto saliency = test::smooth_saliency<double>(rng, s.n, s.h, s.w);
    const auto w = test::weights_for(Exec{}, saliency, s.hr, s.wr);
    for (int n = 0; n < s.n; ++n) {
      for (const bool along_y : {true, false}) {
        const auto a = (along_y ? w.y : w.x).image(n);
        const int in = a.in_size, out = a.out_size;
        const int count = a.count();
        CHECK(count <= in + out - 1);
        CHECK(count >= std::max(in, out));
        CHECK(a.out_begin[0] == 0);
        CHECK(a.in_begin[0] == 0);
        CHECK(a.in_begin[in] == count);
        for (int k = 1; k < count; ++k) {
          CHECK(a.out_index[k] >= a.out_index[k - 1]);
          CHECK(a.in_index[k] >= a.in_index[k - 1]);
          CHECK(a.out_index[k] + a.in_index[k] > a.out_index[k - 1] + a.in_index[k - 1]);
        }
        // Every segment lies in its output row's range and its input row's range.
        for (int i = 0; i < out; ++i)
          for (int k = a.out_begin[i]; k < a.out_begin[i + 1]; ++k) CHECK(a.out_index[k] == i);
        for (int j = 0; j < in; ++j)
          for (int k = a.in_begin[j]; k < a.in_begin[j + 1]; ++k) CHECK(a.in_index[k] == j);
        // Rows of G sum to 1/out, columns to the marginal.
        const auto m = marginal(saliency, n, along_y);
        for (int i = 0; i < out; ++i) {
          double sum = 0.0;
          for (int k = a.out_begin[i]; k < a.out_begin[i + 1]; ++k) sum += a.weight[k];
          CHECK(sum == doctest::Approx(1.0 / out).epsilon(1e-12));
        }
        for (int j = 0; j < in; ++j) {
          double sum = 0.0;
          for (int k = a.in_begin[j]; k < a.in_begin[j + 1]; ++k) sum += a.weight[k];
          CHECK(std::abs(sum - m[std::size_t(j)]) <= 1e-14);
        }
      }
    }
  }
}

TEST_CASE_TEMPLATE("a constant map samples to the same constant, both ways", Exec,
                   SSB_TEST_BACKENDS) {
  std::mt19937 rng(12);
  for (const auto& s : test::test_shapes(rng, 10)) {
    for (Layout layout : {Layout::nhwc, Layout::nchw}) {
      CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, layout));
      const auto w =
          test::weights_for(Exec{}, test::spiky_saliency<double>(rng, s.n, s.h, s.w), s.hr, s.wr);
      test::Tensor<double> x(s.n, s.h, s.w, s.c, layout), y(s.n, s.hr, s.wr, s.c, layout);
      for (int c = 0; c < s.c; ++c) {
        for (int n = 0; n < s.n; ++n) {
          for (int h = 0; h < s.h; ++h)
            for (int v = 0; v < s.w; ++v) x.at(n, h, v, c) = 0.5 + c;
          for (int h = 0; h < s.hr; ++h)
            for (int v = 0; v < s.wr; ++v) y.at(n, h, v, c) = 0.5 + c;
        }
      }
      // Inverse sampling of a constant: H*W * sum_i Gy[i,h] sum_q Gx[q,w] = H*W * sy[h] * sx[w],
      // constant only for a uniform map, so use the uniform weights for that direction.
      test::check_close(test::sampled(Exec{}, w, x).data, y.data, 64, "sample of a constant");
      const auto uniform =
          test::weights_for(Exec{}, test::Saliency<double>(s.n, s.h, s.w, 3.0), s.hr, s.wr);
      test::check_close(test::inverse_sampled(Exec{}, uniform, y).data, x.data, 64,
                        "inverse of a constant, uniform map");
    }
  }
}

TEST_CASE_TEMPLATE("uniform map, divisible sizes: sample is average pooling", Exec,
                   SSB_TEST_BACKENDS) {
  std::mt19937 rng(13);
  for (const auto& s : std::vector<test::Shape>{
           {2, 8, 12, 5, 4, 3}, {1, 28, 28, 16, 14, 7}, {3, 9, 9, 2, 3, 1}, {1, 6, 4, 3, 6, 2}}) {
    for (Layout layout : {Layout::nhwc, Layout::nchw}) {
      CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, layout));
      const auto w =
          test::weights_for(Exec{}, test::Saliency<double>(s.n, s.h, s.w, 0.25), s.hr, s.wr);
      const auto x = test::random_tensor<double>(rng, s.n, s.h, s.w, s.c, layout);
      const int fh = s.h / s.hr, fw = s.w / s.wr;
      test::Tensor<double> pooled(s.n, s.hr, s.wr, s.c, layout);
      for (int n = 0; n < s.n; ++n)
        for (int i = 0; i < s.hr; ++i)
          for (int q = 0; q < s.wr; ++q)
            for (int c = 0; c < s.c; ++c) {
              double sum = 0.0;
              for (int dh = 0; dh < fh; ++dh)
                for (int dw = 0; dw < fw; ++dw) sum += x.at(n, i * fh + dh, q * fw + dw, c);
              pooled.at(n, i, q, c) = sum / (fh * fw);
            }
      test::check_close(test::sampled(Exec{}, w, x).data, pooled.data, 64, "average pooling");
    }
  }
}

TEST_CASE_TEMPLATE("uniform map, same size: both samplers are the identity", Exec,
                   SSB_TEST_BACKENDS) {
  std::mt19937 rng(14);
  for (const auto& s :
       std::vector<test::Shape>{{2, 7, 5, 3, 7, 5}, {1, 1, 1, 4, 1, 1}, {1, 33, 17, 2, 33, 17}}) {
    CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, Layout::nhwc));
    const auto w = test::weights_for(Exec{}, test::Saliency<double>(s.n, s.h, s.w, 2.0), s.h, s.w);
    const auto x = test::random_tensor<double>(rng, s.n, s.h, s.w, s.c, Layout::nhwc);
    test::check_close(test::sampled(Exec{}, w, x).data, x.data, 64, "sample");
    test::check_close(test::inverse_sampled(Exec{}, w, x).data, x.data, 64, "inverse");
  }
}

TEST_CASE_TEMPLATE("adjoint identity: <sample(X), Y> HW == <X, inverse(Y)> HrWr", Exec,
                   SSB_TEST_BACKENDS) {
  std::mt19937 rng(15);
  for (const auto& s : test::test_shapes(rng, 20)) {
    for (Layout layout : {Layout::nhwc, Layout::nchw}) {
      CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, layout));
      const auto w =
          test::weights_for(Exec{}, test::smooth_saliency<double>(rng, s.n, s.h, s.w), s.hr, s.wr);
      const auto x = test::random_tensor<double>(rng, s.n, s.h, s.w, s.c, layout);
      const auto y = test::random_tensor<double>(rng, s.n, s.hr, s.wr, s.c, layout);
      const double lhs = test::dot(test::sampled(Exec{}, w, x), y) * s.h * s.w;
      const double rhs = test::dot(x, test::inverse_sampled(Exec{}, w, y)) * s.hr * s.wr;
      CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
    }
  }
}

TEST_CASE_TEMPLATE("NHWC and NCHW give the same values, bit for bit", Exec, SSB_TEST_BACKENDS) {
  std::mt19937 rng(16);
  auto shapes = test::test_shapes(rng, 10);
  shapes.push_back({1, 48, 50, 35, 20, 21});  // planes too large for channel tiles (planar.hpp)
  shapes.push_back({2, 9, 60, 3, 70, 13});    // the same, zooming in along y
  shapes.push_back({3, 30, 90, 4, 12, 70});   // rows over 32 wide both ways (the lane body)
  // Source rows over 128 wide both ways: the lane body's y sums by a block of 8 registers, then
  // 2 (forward) and 1 (inverse) more.
  shapes.push_back({1, 5, 150, 3, 4, 139});
  // The lane body with several planes per task: source rows in registers (20 and 13 wide) and in
  // scratch (40 and 36 wide), destination rows that end inside a register.
  shapes.push_back({2, 20, 20, 7, 12, 13});
  shapes.push_back({1, 17, 40, 9, 9, 36});
  // 14x14 planes, the smallest that take the lane body both ways (SSB_NCHW_LANES_MIN_PIXELS and
  // SSB_NCHW_LANES_MIN_PIXELS_INVERSE).
  shapes.push_back({2, 14, 14, 5, 8, 8});
  // Rows of at most 16 floats (planar.hpp's packed body): several R rows per register (7, 5, 4
  // and 3 wide), destination vectors of 1 to 5 rows, 16-wide rows, planes of one row, and
  // channel counts that end a task inside a register.
  shapes.push_back({2, 7, 7, 33, 4, 4});
  shapes.push_back({2, 5, 5, 17, 3, 3});
  shapes.push_back({3, 12, 12, 6, 7, 7});
  shapes.push_back({1, 9, 13, 40, 5, 8});
  shapes.push_back({2, 16, 16, 3, 9, 9});
  shapes.push_back({2, 6, 11, 5, 13, 3});
  shapes.push_back({1, 1, 7, 4, 1, 3});
  shapes.push_back({2, 10, 2, 7, 6, 16});
  // Registers and vectors of the packed body with 1 to 4 slots or terms (held in registers for a
  // block of planes) and with more (read per plane): rows that read 3 to 7 source rows, by a
  // window (4 wide) or by terms (8 and 9 wide).
  shapes.push_back({2, 16, 4, 5, 3, 2});
  shapes.push_back({2, 16, 8, 5, 3, 5});
  shapes.push_back({1, 12, 9, 4, 4, 3});
  for (const auto& s : shapes) {
    CAPTURE(test::describe(s.n, s.h, s.w, s.c, s.hr, s.wr, Layout::nhwc));
    const auto w =
        test::weights_for(Exec{}, test::smooth_saliency<float>(rng, s.n, s.h, s.w), s.hr, s.wr);
    const auto x = test::random_tensor<float>(rng, s.n, s.h, s.w, s.c, Layout::nhwc);
    const auto y = test::random_tensor<float>(rng, s.n, s.hr, s.wr, s.c, Layout::nhwc);
    check_nchw_equals_nhwc<Exec>(w, x, y);
    // Mixed layouts (NHWC in, NCHW out) are accepted too.
    test::Tensor<float> xr_mixed(s.n, s.hr, s.wr, s.c, Layout::nchw,
                                 std::numeric_limits<float>::quiet_NaN());
    ssb::sample(Exec{}, w, x.cview(), xr_mixed.view());
    CHECK(test::bitwise_equal(test::relayout(xr_mixed, Layout::nhwc).data,
                              test::sampled(Exec{}, w, x).data));
  }
}

TEST_CASE_TEMPLATE("NHWC and NCHW agree bit for bit where the saliency zooms hard", Exec,
                   SSB_TEST_BACKENDS) {
  // A band of columns 50x more salient than the rest: 16 neighbouring output columns then read
  // sources 32 or more columns apart, both ways (the gathers of planar.hpp's lane body).
  std::mt19937 rng(17);
  const int n = 2, h = 12, w = 90, c = 6, hr = 10, wr = 70;
  test::Saliency<float> saliency(n, h, w, 1.0f);
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 40 + 5 * i; x < 50 + 5 * i; ++x) saliency.at(i, y, x) = 50.0f;
  const auto weights = test::weights_for(Exec{}, saliency, hr, wr);
  const auto x = test::random_tensor<float>(rng, n, h, w, c, Layout::nhwc);
  const auto y = test::random_tensor<float>(rng, n, hr, wr, c, Layout::nhwc);
  check_nchw_equals_nhwc<Exec>(weights, x, y);
}

TEST_CASE_TEMPLATE("NHWC and NCHW agree bit for bit where rows and columns have no saliency", Exec,
                   SSB_TEST_BACKENDS) {
  // Zero rows and columns, inside and at the ends; trailing ones make empty segment ranges on the
  // input grid, where the inverse gathers write zeros (row by row in the NCHW bodies). Planes of
  // 20x24 and 20x40 (the lane body, rows in registers and in scratch) and 12x12 (the packed body),
  // 9 channels, both ways.
  std::mt19937 rng(19);
  for (const auto& [h, w] : {std::pair<int, int>{20, 24}, {20, 40}, {12, 12}}) {
    const int n = 2, c = 9, hr = 11, wr = 13;
    CAPTURE(test::describe(n, h, w, c, hr, wr, Layout::nhwc));
    test::Saliency<float> saliency = test::smooth_saliency<float>(rng, n, h, w);
    for (int i = 0; i < n; ++i) {
      for (const int zero_row : {0, 5, 6, 7 + i, h - 1}) {
        for (int x = 0; x < w; ++x) saliency.at(i, zero_row, x) = 0.0f;
      }
      for (const int zero_column : {1, 2, 9 + i, w - 2, w - 1}) {
        for (int y = 0; y < h; ++y) saliency.at(i, y, zero_column) = 0.0f;
      }
    }
    const auto weights = test::weights_for(Exec{}, saliency, hr, wr);
    const auto x = test::random_tensor<float>(rng, n, h, w, c, Layout::nhwc);
    const auto y = test::random_tensor<float>(rng, n, hr, wr, c, Layout::nhwc);
    check_nchw_equals_nhwc<Exec>(weights, x, y);
    const auto z = test::inverse_sampled(Exec{}, weights, y);
    // The test reaches empty ranges (the trailing zero row and columns: the walk of MATH.md
    // ends before them), which the inverse image has as zeros.
    const auto ay = weights.y.image(0), ax = weights.x.image(0);
    CHECK(ay.in_begin[h - 1] == ay.in_begin[h]);
    CHECK(ax.in_begin[w - 1] == ax.in_begin[w]);
    CHECK(z.data[z.index(0, h - 1, 3, 0)] == 0.0f);
    CHECK(z.data[z.index(0, 3, w - 1, 0)] == 0.0f);
  }
}

TEST_CASE_TEMPLATE("an all-zero map falls back to uniform weights", Exec, SSB_TEST_BACKENDS) {
  const test::Saliency<double> zero(2, 6, 5, 0.0), ones(2, 6, 5, 1.0);
  const auto wz = test::weights_for(Exec{}, zero, 4, 3);
  const auto wo = test::weights_for(Exec{}, ones, 4, 3);
  CHECK(test::bitwise_equal(ssb::dense::to_dense(wz).gy, ssb::dense::to_dense(wo).gy));
  CHECK(test::bitwise_equal(ssb::dense::to_dense(wz).gx, ssb::dense::to_dense(wo).gx));
}

// The row-by-row forms of the GPU kernels against the serial ones, byte for byte: the walk's
// merge (detail::merge_row, merge_row_segments, merge_out_begin) against detail::segment_walk,
// and the saliency gradient's dCS rows (detail::marginal_dcs, then marginal_suffix_chain)
// against detail::marginal_suffix. Masses with zero rows (inside and trailing), ties
// of CS with CU (integer masses, sizes with common factors), the uniform fallback, and totals a
// few ulps below the prefix sum (CS rounds above 1 before CS[in], as on the x axis).
TEST_CASE("the row-by-row segment merge and dCS rows equal the serial forms, byte for byte") {
  std::mt19937 rng(5);
  int problems = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    const int in = 1 + int(rng() % 40), out = 1 + int(rng() % 40);
    std::vector<double> mass(static_cast<std::size_t>(in));
    const int kind = int(rng() % 4);
    for (auto& m : mass) {
      const int r = int(rng() % 6);
      if (kind == 0)
        m = 1.0;  // the uniform fallback's masses
      else if (r == 0)
        m = 0.0;
      else if (kind == 1)
        m = double(rng() % 4);
      else
        m = std::uniform_real_distribution<double>(0.0, 2.0)(rng);
    }
    if (rng() % 5 == 0) {
      for (int h = in - 1 - int(rng() % 3); h < in; ++h) mass[std::size_t(std::max(h, 0))] = 0.0;
    }
    if (std::all_of(mass.begin(), mass.end(), [](double m) { return m == 0.0; })) mass[0] = 1.0;
    double sum = 0.0;
    for (double m : mass) sum += m;
    double total = sum;
    if (kind == 3) total = std::nextafter(std::nextafter(sum, 0.0), 0.0);
    const std::size_t cap = std::size_t(in) + std::size_t(out) - 1;
    std::vector<float> w1(cap), w2(cap);
    std::vector<std::int32_t> o1(cap), o2(cap), i1(cap), i2(cap), ob1(std::size_t(out) + 1),
        ob2(std::size_t(out) + 1), ib1(std::size_t(in) + 1), ib2(std::size_t(in) + 1);
    std::vector<std::uint8_t> f1(cap), f2(cap);
    ssb::detail::segment_walk(mass.data(), total, in, out, w1.data(), o1.data(), i1.data(),
                              f1.data(), ob1.data(), ib1.data());
    // The GPU walk's breakpoints: prefix sums in order, each divided once.
    std::vector<double> cs(std::size_t(in) + 1, 0.0);
    double prefix = 0.0;
    for (int j = 0; j < in; ++j) {
      prefix += mass[std::size_t(j)];
      cs[std::size_t(j) + 1] = ssb::detail::breakpoint_after(prefix, total, j, in);
    }
    const auto cs_of = [&](int j) { return cs[std::size_t(j)]; };
    const auto cu_of = [&](int i) { return ssb::detail::output_breakpoint(i, out); };
    int k = 0;
    for (int j = 0; j < in; ++j) {  // rows in reverse would do as well: each writes its own
      const ssb::detail::MergeRow row = ssb::detail::merge_row(cs_of, cu_of, out, j);
      ib2[std::size_t(j)] = k;
      ssb::detail::merge_row_segments(cs_of, cu_of, j, row, k, w2.data(), o2.data(), i2.data(),
                                      f2.data());
      k += row.count();
    }
    ib2[std::size_t(in)] = k;
    for (int s = k; s >= 0; --s) ssb::detail::merge_out_begin(o2.data(), k, out, s, ob2.data());
    CAPTURE(in);
    CAPTURE(out);
    CAPTURE(kind);
    REQUIRE(k == ib1[std::size_t(in)]);
    const auto same = [](const auto& a, const auto& b, std::size_t n) {
      return std::memcmp(a.data(), b.data(), n * sizeof(a[0])) == 0;
    };
    CHECK(same(w1, w2, std::size_t(k)));
    CHECK(same(o1, o2, std::size_t(k)));
    CHECK(same(i1, i2, std::size_t(k)));
    CHECK(same(f1, f2, std::size_t(k)));
    CHECK(same(ob1, ob2, ob1.size()));
    CHECK(same(ib1, ib2, ib1.size()));
    // The saliency gradient of these segments: marginal_suffix against marginal_dcs row by row
    // and then marginal_suffix_chain, with random segment gradients (some exactly 0).
    const ssb::AxisImage<float> a{w1.data(),  o1.data(),  i1.data(), f1.data(),
                                  ob1.data(), ib1.data(), in,        out};
    std::vector<float> d_weight(std::size_t(k) + 1);
    for (auto& d : d_weight) {
      d = rng() % 7 == 0 ? 0.0f : std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    }
    const auto sy = [&](int h) { return mass[std::size_t(h)] / total; };
    std::vector<double> serial(std::size_t(in) + 1, -1.0), rows(std::size_t(in) + 1, -2.0);
    const double weighted = ssb::detail::marginal_suffix(a, d_weight.data(), sy, serial.data());
    for (int j = in; j >= 0; --j)
      rows[std::size_t(j)] = ssb::detail::marginal_dcs(a, d_weight.data(), j);
    const double chained = ssb::detail::marginal_suffix_chain(in, sy, rows.data());
    CHECK(same(serial, rows, serial.size()));
    CHECK(std::memcmp(&weighted, &chained, sizeof(double)) == 0);
    ++problems;
  }
  CHECK(problems == 4000);
}
