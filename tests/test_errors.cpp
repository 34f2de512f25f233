// Bad inputs: every verb and helper throws ssb::error (a std::invalid_argument) whose message names
// the verb and the argument, and writes nothing (MATH.md, "Edge cases"). Plus the documented
// non-errors: all-zero saliency maps and empty optional outputs.
#include <cfloat>
#include <climits>
#include <functional>
#include <type_traits>
#include <utility>

#include "support.hpp"

using test::Layout;

namespace {

static_assert(std::is_base_of<std::invalid_argument, ssb::error>::value,
              "ssb::error is a std::invalid_argument");

template <class T>
using FM = ssb::FeatureMap<T>;

// `call` must throw an ssb::error, caught here as std::invalid_argument, whose what() contains
// every string of `parts`.
void expect_error(const std::function<void()>& call, const std::vector<std::string>& parts) {
  std::string what;
  bool thrown = false, is_ssb = false;
  try {
    call();
  } catch (const std::invalid_argument& e) {
    thrown = true;
    is_ssb = dynamic_cast<const ssb::error*>(&e) != nullptr;
    what = e.what();
  } catch (const std::exception& e) {
    what = std::string("(not a std::invalid_argument) ") + e.what();
  }
  INFO("what(): " << what);
  CHECK_MESSAGE(thrown, "expected an ssb::error");
  if (!thrown) return;
  CHECK(is_ssb);
  for (const auto& part : parts) {
    INFO("expected in the message: " << part);
    CHECK(what.find(part) != std::string::npos);
  }
}

template <class T>
constexpr T sentinel = T(-777.25);

template <class T>
bool all_sentinel(const std::vector<T>& v) {
  for (const T& e : v) {
    if (std::memcmp(&e, &sentinel<T>, sizeof(T)) != 0) return false;
  }
  return true;
}

// Every argument of every verb, valid; tests break one thing at a time.
template <class T>
struct Args {
  ssb::Weights<T> w;
  FM<T> x, xr, y, z, d_xr, d_x, d_z, d_y;
  ssb::SaliencyMap<T> s, ds;
  ssb::WeightsGrad<T> dw;
  int out_h, out_w;
};

// A valid problem (batch 3 of 5x4x3 sampled to 3x2) with owning buffers: inputs random, outputs
// (xr, z, d_x, d_y, d_weights, d_saliency) filled with a sentinel. Every buffer has room for any
// view grown by one in one extent, so a missing check reads and writes in bounds.
template <class T>
struct Problem {
  static constexpr int N = 3, H = 5, W = 4, C = 3, HR = 3, WR = 2;
  Layout layout;
  std::vector<T> sal, x, y, d_xr, d_z, xr, z, d_x, d_y, dw, ds;
  ssb::HostWeights<T> w{N, H, W, HR, WR};
  ssb::WeightsGrad<T> d_w;

  explicit Problem(Layout l = Layout::nhwc) : layout(l) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    const std::size_t room = 2 * std::size_t(N) * H * W * (C + 1);
    for (auto* b : {&x, &y, &d_xr, &d_z, &sal}) {
      b->resize(room);
      for (auto& v : *b) v = T(u(rng));
    }
    for (auto& v : sal) v = T(1.5) + v;  // positive
    for (auto* b : {&xr, &z, &d_x, &d_y, &ds}) b->assign(room, sentinel<T>);
    ssb::compute_weights(ssb::serial{}, smap(sal), HR, WR, w);
    dw.assign(2 * ssb::weights_grad_size(w), sentinel<T>);
    d_w = ssb::weights_grad_view(w, dw.data(), dw.size());
  }

  FM<T> in(std::vector<T>& b) { return {b.data(), N, H, W, C, layout}; }
  FM<T> out(std::vector<T>& b) { return {b.data(), N, HR, WR, C, layout}; }
  ssb::SaliencyMap<T> smap(std::vector<T>& b) { return {b.data(), N, H, W}; }
  T& sal_at(int n, int h, int w_) { return sal[(std::size_t(n) * H + h) * W + w_]; }
  // Fills the whole workspace with a byte pattern (for compute_weights, which writes all of it).
  void poison() { std::memset(w.workspace(), 0xA5, w.bytes()); }

  Args<T> args() {
    return {w,       in(x),    out(xr),   out(y),   in(z), out(d_xr), in(d_x),
            in(d_z), out(d_y), smap(sal), smap(ds), d_w,   HR,        WR};
  }
  // Every byte the verbs could write: all buffers and the workspace.
  std::vector<unsigned char> snapshot() {
    std::vector<unsigned char> bytes;
    const auto add = [&bytes](const void* p, std::size_t size) {
      const auto* c = static_cast<const unsigned char*>(p);
      bytes.insert(bytes.end(), c, c + size);
    };
    for (auto* b : {&sal, &x, &y, &d_xr, &d_z, &xr, &z, &d_x, &d_y, &dw, &ds}) {
      add(b->data(), b->size() * sizeof(T));
    }
    add(w.workspace(), w.bytes());
    return bytes;
  }
  // expect_error, and nothing written.
  void expect_untouched(const std::function<void()>& call, const std::vector<std::string>& parts) {
    const auto before = snapshot();
    expect_error(call, parts);
    CHECK_MESSAGE(snapshot() == before, "a buffer or the workspace was written before the error");
  }
};

template <class T>
struct ViewArg {
  FM<T> Args<T>::*member;
  const char* name;
  bool on_input_grid;  // (H, W) rather than (Hr, Wr)
};
template <class T>
struct MapArg {
  ssb::SaliencyMap<T> Args<T>::*member;
  const char* name;
};
template <class T>
struct Verb {
  std::string name;
  std::function<void(const Args<T>&)> run;
  std::vector<ViewArg<T>> views;
  std::vector<MapArg<T>> maps;
  bool takes_weights_grad;
};

template <class Exec, class T>
std::vector<Verb<T>> all_verbs() {
  using A = Args<T>;
  const Exec e{};
  return {
      {"ssb::compute_weights",
       [e](const A& a) { ssb::compute_weights(e, a.s, a.out_h, a.out_w, a.w); },
       {},
       {{&A::s, "saliency"}},
       false},
      {"ssb::sample",
       [e](const A& a) { ssb::sample(e, a.w, a.x, a.xr); },
       {{&A::x, "x", true}, {&A::xr, "xr", false}},
       {},
       false},
      {"ssb::sample_inverse",
       [e](const A& a) { ssb::sample_inverse(e, a.w, a.y, a.z); },
       {{&A::y, "y", false}, {&A::z, "z", true}},
       {},
       false},
      {"ssb::sample_backward",
       [e](const A& a) { ssb::sample_backward(e, a.w, a.x, a.d_xr, a.d_x, a.dw); },
       {{&A::d_xr, "d_xr", false}, {&A::d_x, "d_x", true}, {&A::x, "x", true}},
       {},
       true},
      {"ssb::sample_inverse_backward",
       [e](const A& a) { ssb::sample_inverse_backward(e, a.w, a.y, a.d_z, a.d_y, a.dw); },
       {{&A::d_z, "d_z", true}, {&A::d_y, "d_y", false}, {&A::y, "y", false}},
       {},
       true},
      {"ssb::compute_weights_backward",
       [e](const A& a) { ssb::compute_weights_backward(e, a.s, a.w, a.dw, a.ds); },
       {},
       {{&A::s, "saliency"}, {&A::ds, "d_saliency"}},
       true},
  };
}

// Runs `break_it` on valid arguments of `verb`, then the verb on a fresh problem (the workspace
// poisoned for compute_weights), and expects the verb name and `parts` in the error.
template <class T>
void expect_verb_error(const Verb<T>& verb, Layout layout,
                       const std::function<void(Args<T>&)>& break_it,
                       std::vector<std::string> parts) {
  Problem<T> p(layout);
  if (verb.name == "ssb::compute_weights") p.poison();
  Args<T> a = p.args();
  break_it(a);
  parts.push_back(verb.name + ": ");
  p.expect_untouched([&] { verb.run(a); }, parts);
}

// Null data, sizes 0 and -1, a grid or channel count that differs, an invalid layout: for every
// feature map and saliency map argument of every verb.
template <class Exec, class T>
void check_bad_views(Layout layout) {
  const std::pair<int FM<T>::*, const char*> fields[] = {{&FM<T>::batch, "batch"},
                                                         {&FM<T>::height, "height"},
                                                         {&FM<T>::width, "width"},
                                                         {&FM<T>::channels, "channels"}};
  const std::pair<int ssb::SaliencyMap<T>::*, const char*> map_fields[] = {
      {&ssb::SaliencyMap<T>::batch, "batch"},
      {&ssb::SaliencyMap<T>::height, "height"},
      {&ssb::SaliencyMap<T>::width, "width"}};
  for (const auto& verb : all_verbs<Exec, T>()) {
    CAPTURE(verb.name);
    for (const auto& v : verb.views) {
      const std::string name = v.name;
      CAPTURE(name);
      const auto m = v.member;
      expect_verb_error<T>(verb, layout, [m](Args<T>& a) { (a.*m).data = nullptr; },
                           {name + ".data is null"});
      for (const auto& [field, field_name] : fields) {
        for (int bad : {0, -1}) {
          expect_verb_error<T>(
              verb, layout, [m, f = field, bad](Args<T>& a) { (a.*m).*f = bad; },
              {name + "." + field_name + " must be > 0, got " + std::to_string(bad)});
        }
        if (field == &FM<T>::channels) continue;
        expect_verb_error<T>(
            verb, layout, [m, f = field](Args<T>& a) { (a.*m).*f += 1; },
            {name + " is ", v.on_input_grid ? "the weights' input grid is 3x5x4"
                                            : "the weights' sampled grid is 3x3x2"});
      }
      expect_verb_error<T>(verb, layout, [m](Args<T>& a) { (a.*m).channels += 1; },
                           {name + ".channels (4)", ".channels (3)"});
      expect_verb_error<T>(verb, layout, [m](Args<T>& a) { (a.*m).layout = Layout(7); },
                           {name + ".layout is invalid"});
    }
    for (const auto& s : verb.maps) {
      const std::string name = s.name;
      CAPTURE(name);
      const auto m = s.member;
      expect_verb_error<T>(verb, layout, [m](Args<T>& a) { (a.*m).data = nullptr; },
                           {name + ".data is null"});
      for (const auto& [field, field_name] : map_fields) {
        for (int bad : {0, -2}) {
          expect_verb_error<T>(
              verb, layout, [m, f = field, bad](Args<T>& a) { (a.*m).*f = bad; },
              {name + "." + field_name + " must be > 0, got " + std::to_string(bad)});
        }
        expect_verb_error<T>(verb, layout, [m, f = field](Args<T>& a) { (a.*m).*f += 1; },
                             {name + " is ", "the weights' input grid is 3x5x4"});
      }
    }
  }
}

}  // namespace

TEST_CASE_TEMPLATE("workspace_size, weights_view and weights_grad_view reject bad arguments", Exec,
                   SSB_TEST_BACKENDS) {
  using P = Problem<double>;
  const char* names[] = {"batch", "input height", "input width", "out_h", "out_w"};
  for (int which = 0; which < 5; ++which) {
    for (int bad : {0, -3}) {
      int s[5] = {P::N, P::H, P::W, P::HR, P::WR};
      s[which] = bad;
      const std::string why =
          std::string(names[which]) + " must be > 0, got " + std::to_string(bad);
      expect_error([&] { ssb::workspace_size<double>(s[0], s[1], s[2], s[3], s[4]); },
                   {"ssb::workspace_size: ", why});
      expect_error([&] { ssb::HostWeights<float> w(s[0], s[1], s[2], s[3], s[4]); },
                   {"ssb::workspace_size: ", why});
      std::vector<unsigned char> buf(1 << 16, 0x5A);
      expect_error(
          [&] { ssb::weights_view<double>(buf.data(), buf.size(), s[0], s[1], s[2], s[3], s[4]); },
          {"ssb::weights_view: ", why});
      CHECK(std::count(buf.begin(), buf.end(), 0x5A) == long(buf.size()));
    }
  }
  expect_error([] { ssb::workspace_size<double>(1, 1 << 30, 4, 2, 2); },
               {"ssb::workspace_size: ", "spatial sizes must be <="});
  constexpr int big = (1 << 30) - 1;  // the largest extent: the byte count must not wrap around
  expect_error([] { ssb::workspace_size<double>(INT_MAX, big, big, big, big); },
               {"ssb::workspace_size: ", "overflows std::size_t"});
  expect_error([] { ssb::HostWeights<float> w(INT_MAX, 1 << 29, 1, 1, 1); },
               {"ssb::workspace_size: ", "overflows std::size_t"});

  const std::size_t bytes = ssb::workspace_size<double>(P::N, P::H, P::W, P::HR, P::WR);
  std::vector<double> ws(bytes / sizeof(double) + 2);  // 8-byte aligned
  expect_error([&] { ssb::weights_view<double>(nullptr, bytes, P::N, P::H, P::W, P::HR, P::WR); },
               {"ssb::weights_view: ", "workspace is null"});
  expect_error(
      [&] {
        ssb::weights_view<double>(reinterpret_cast<char*>(ws.data()) + 1, bytes, P::N, P::H, P::W,
                                  P::HR, P::WR);
      },
      {"ssb::weights_view: ", "8-byte aligned"});
  expect_error(
      [&] { ssb::weights_view<double>(ws.data(), bytes - 1, P::N, P::H, P::W, P::HR, P::WR); },
      {"ssb::weights_view: ", "workspace too small", std::to_string(bytes - 1) + " bytes given",
       std::to_string(bytes) + " needed"});
  // Exactly enough bytes at an address that is 8- but not 64-byte aligned is fine.
  CHECK_NOTHROW(ssb::weights_view<double>(ws.data() + 1, bytes, P::N, P::H, P::W, P::HR, P::WR));

  P p;
  const std::size_t need = ssb::weights_grad_size<double>(p.w);
  expect_error([&] { ssb::weights_grad_view<double>(p.w, nullptr, need); },
               {"ssb::weights_grad_view: ", "data is null"});
  expect_error([&] { ssb::weights_grad_view<double>(p.w, p.dw.data(), need - 1); },
               {"ssb::weights_grad_view: ", "buffer too small", std::to_string(need - 1)});
  expect_error([&] { ssb::weights_grad_view(ssb::Weights<double>{}, p.dw.data(), need); },
               {"ssb::weights_grad_view: ", "weights is empty"});
  CHECK(all_sentinel(p.dw));
}

TEST_CASE_TEMPLATE("every verb rejects null data, non-positive sizes and mismatched shapes", Exec,
                   SSB_TEST_BACKENDS) {
  SUBCASE("double NHWC") {
    check_bad_views<Exec, double>(Layout::nhwc);
  }
  SUBCASE("float NCHW") {
    check_bad_views<Exec, float>(Layout::nchw);
  }
}

TEST_CASE_TEMPLATE("every verb rejects empty weights and bad weight gradients", Exec,
                   SSB_TEST_BACKENDS) {
  using T = double;
  ssb::HostWeights<T> taller(3, 5, 4, 4, 2), smaller_batch(2, 5, 4, 3, 2);
  const ssb::HostWeightsGrad<T> for_taller(taller), for_smaller_batch(smaller_batch);
  for (const auto& verb : all_verbs<Exec, T>()) {
    CAPTURE(verb.name);
    const std::string empty = "weights is empty; make it with ssb::weights_view";
    expect_verb_error<T>(verb, Layout::nhwc, [](Args<T>& a) { a.w = ssb::Weights<T>{}; }, {empty});
    expect_verb_error<T>(verb, Layout::nhwc, [](Args<T>& a) { a.w.total = nullptr; }, {empty});
    expect_verb_error<T>(verb, Layout::nhwc, [](Args<T>& a) { a.w.y.weight = nullptr; }, {empty});
    expect_verb_error<T>(verb, Layout::nhwc, [](Args<T>& a) { a.w.x.out_size = 0; }, {empty});
    if (!verb.takes_weights_grad) continue;
    const std::string null = "d_weights has a null pointer";
    expect_verb_error<T>(verb, Layout::nhwc, [](Args<T>& a) { a.dw.y = nullptr; }, {null});
    expect_verb_error<T>(verb, Layout::nhwc, [](Args<T>& a) { a.dw.x = nullptr; }, {null});
    const std::string other = "d_weights does not match the weights";
    expect_verb_error<T>(verb, Layout::nhwc, [&](Args<T>& a) { a.dw = for_taller; }, {other});
    expect_verb_error<T>(verb, Layout::nhwc, [&](Args<T>& a) { a.dw = for_smaller_batch; },
                         {other, "batch 2 vs 3"});
    expect_verb_error<T>(verb, Layout::nhwc, [](Args<T>& a) { a.dw.capacity_x -= 1; }, {other});
  }
  // d_weights is not optional for compute_weights_backward.
  Problem<T> p;
  p.expect_untouched(
      [&] {
        ssb::compute_weights_backward(Exec{}, p.smap(p.sal), p.w, ssb::WeightsGrad<T>{},
                                      p.smap(p.ds));
      },
      {"ssb::compute_weights_backward: ", "d_weights has a null pointer"});
}

TEST_CASE_TEMPLATE("compute_weights rejects output sizes that are not positive or not the weights'",
                   Exec, SSB_TEST_BACKENDS) {
  Problem<double> p;
  p.poison();
  const auto call = [&](int out_h, int out_w) {
    return [&p, out_h, out_w] { ssb::compute_weights(Exec{}, p.smap(p.sal), out_h, out_w, p.w); };
  };
  for (int bad : {0, -1}) {
    p.expect_untouched(call(bad, 2),
                       {"ssb::compute_weights: ", "out_h must be > 0, got " + std::to_string(bad)});
    p.expect_untouched(call(3, bad),
                       {"ssb::compute_weights: ", "out_w must be > 0, got " + std::to_string(bad)});
  }
  p.expect_untouched(call(4, 2), {"ssb::compute_weights: ", "out_h x out_w is 4x2",
                                  "the weights were made for 3x2"});
  p.expect_untouched(call(3, 1), {"ssb::compute_weights: ", "out_h x out_w is 3x1"});
}

TEST_CASE_TEMPLATE("outputs that overlap an input are rejected; adjacent buffers are fine", Exec,
                   SSB_TEST_BACKENDS) {
  using T = double;
  Problem<T> p;
  const Exec e{};
  const std::size_t in_size = std::size_t(p.in(p.x).size()),
                    out_size = std::size_t(p.out(p.y).size());
  FM<T> inside_x = p.out(p.x);  // xr aliasing x
  p.expect_untouched([&] { ssb::sample(e, p.w, p.in(p.x), inside_x); },
                     {"ssb::sample: ", "xr overlaps x"});
  FM<T> tail_of_x = p.out(p.x);
  tail_of_x.data += in_size - 1;  // shares x's last element
  p.expect_untouched([&] { ssb::sample(e, p.w, p.in(p.x), tail_of_x); },
                     {"ssb::sample: ", "xr overlaps x"});
  FM<T> over_y = p.in(p.y);
  over_y.data += out_size - 1;
  p.expect_untouched([&] { ssb::sample_inverse(e, p.w, p.out(p.y), over_y); },
                     {"ssb::sample_inverse: ", "z overlaps y"});
  p.expect_untouched(
      [&] { ssb::sample_backward(e, p.w, p.in(p.x), p.out(p.d_xr), p.in(p.d_xr), p.d_w); },
      {"ssb::sample_backward: ", "d_x overlaps d_xr"});
  FM<T> in_dz = p.out(p.d_z);
  in_dz.data += 5;
  p.expect_untouched(
      [&] { ssb::sample_inverse_backward(e, p.w, p.out(p.y), p.in(p.d_z), in_dz, p.d_w); },
      {"ssb::sample_inverse_backward: ", "d_y overlaps d_z"});

  // With d_weights requested, x (y) is read too: d_x (d_y) must not overlap it.
  p.expect_untouched(
      [&] { ssb::sample_backward(e, p.w, p.in(p.x), p.out(p.d_xr), p.in(p.x), p.d_w); },
      {"ssb::sample_backward: ", "d_x overlaps x"});
  p.expect_untouched(
      [&] { ssb::sample_inverse_backward(e, p.w, p.out(p.y), p.in(p.d_z), p.out(p.y), p.d_w); },
      {"ssb::sample_inverse_backward: ", "d_y overlaps y"});
  // d_weights (accumulated) inside any map the backward verbs read or write.
  for (const auto& verb : all_verbs<Exec, T>()) {
    if (!verb.takes_weights_grad) continue;
    for (const auto& v : verb.views) {
      CAPTURE(verb.name);
      const auto m = v.member;
      expect_verb_error<T>(verb, Layout::nhwc,
                           [m](Args<T>& a) {
                             a.dw = ssb::weights_grad_view<T>(a.w, (a.*m).data,
                                                              ssb::weights_grad_size(a.w));
                           },
                           {std::string("d_weights overlaps ") + v.name});
    }
  }
  ssb::SaliencyMap<T> over_dw(p.dw.data(), Problem<T>::N, Problem<T>::H, Problem<T>::W);
  REQUIRE(p.dw.size() >= std::size_t(over_dw.size()));
  p.expect_untouched([&] { ssb::compute_weights_backward(e, p.smap(p.sal), p.w, p.d_w, over_dw); },
                     {"ssb::compute_weights_backward: ", "d_saliency overlaps d_weights"});

  // xr right after x in one buffer: no overlap, and the same result as a separate buffer.
  FM<T> after_x = p.out(p.x);
  after_x.data += in_size;
  CHECK_NOTHROW(ssb::sample(e, p.w, p.in(p.x), after_x));
  ssb::sample(e, p.w, p.in(p.x), p.out(p.xr));
  CHECK(std::memcmp(after_x.data, p.xr.data(), out_size * sizeof(T)) == 0);
}

namespace {

template <class Exec, class T>
void check_bad_saliency_values() {
  using P = Problem<T>;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  for (const T bad : {T(-1), T(-1e-30), -inf, nan, inf}) {
    CAPTURE(bad);
    P p;
    p.poison();  // image 0's slots too: nothing may be written before the check of image 1
    p.sal_at(1, 2, 3) = bad;
    p.expect_untouched(
        [&] { ssb::compute_weights(Exec{}, p.smap(p.sal), P::HR, P::WR, p.w); },
        {"ssb::compute_weights: ", "saliency[n=1, h=2, w=3]", "must be finite and >= 0"});
  }
  // The first bad value is reported: lowest image, then row-major order.
  P p;
  p.poison();
  p.sal_at(2, 0, 0) = T(-5);
  p.sal_at(1, 3, 1) = nan;
  p.sal_at(1, 2, 3) = T(-1);
  p.expect_untouched([&] { ssb::compute_weights(Exec{}, p.smap(p.sal), P::HR, P::WR, p.w); },
                     {"saliency[n=1, h=2, w=3] is -1"});
}

}  // namespace

TEST_CASE_TEMPLATE("negative, NaN and infinite saliency name the image and position", Exec,
                   SSB_TEST_BACKENDS) {
  SUBCASE("double") {
    check_bad_saliency_values<Exec, double>();
  }
  SUBCASE("float") {
    check_bad_saliency_values<Exec, float>();
  }
}

TEST_CASE_TEMPLATE("a saliency map whose sum overflows double is rejected, naming the image", Exec,
                   SSB_TEST_BACKENDS) {
  using P = Problem<double>;
  P p;
  p.poison();
  for (int h = 0; h < P::H; ++h)
    for (int w = 0; w < P::W; ++w) p.sal_at(1, h, w) = 1e308;
  p.expect_untouched([&] { ssb::compute_weights(Exec{}, p.smap(p.sal), P::HR, P::WR, p.w); },
                     {"ssb::compute_weights: ", "image n=1", "infinity"});
  // Exactly, DBL_MAX + 3 * 2^969 rounds to infinity. Summed element by element each 2^969 is
  // absorbed (a quarter ulp) and the sum stays finite; the row sums add 2^970 (half an ulp).
  const double q = std::ldexp(1.0, 969);
  const std::vector<double> s = {DBL_MAX, q, q, q};
  ssb::HostWeights<double> w1(1, 2, 2, 2, 2);
  std::memset(w1.workspace(), 0xA5, w1.bytes());
  const std::vector<unsigned char> poisoned(w1.bytes(), 0xA5);
  expect_error(
      [&] {
        ssb::compute_weights(Exec{}, ssb::SaliencyMap<const double>(s.data(), 1, 2, 2), 2, 2, w1);
      },
      {"ssb::compute_weights: ", "image n=0", "infinity"});
  CHECK(std::memcmp(w1.workspace(), poisoned.data(), w1.bytes()) == 0);
  // float maps are summed in double: even FLT_MAX everywhere is fine.
  Problem<float> f;
  std::fill(f.sal.begin(), f.sal.end(), FLT_MAX);
  CHECK_NOTHROW(ssb::compute_weights(Exec{}, f.smap(f.sal), P::HR, P::WR, f.w));
}

TEST_CASE_TEMPLATE("an all-zero saliency map gives the uniform weights and a zero d_saliency", Exec,
                   SSB_TEST_BACKENDS) {
  using T = double;
  using P = Problem<T>;
  const Exec e{};
  P zero, ones;
  for (int h = 0; h < P::H; ++h)
    for (int w = 0; w < P::W; ++w) zero.sal_at(1, h, w) = T(0), ones.sal_at(1, h, w) = T(1);
  zero.sal_at(1, 4, 3) = -T(0);  // -0 is >= 0
  zero.poison(), ones.poison();
  REQUIRE_NOTHROW(ssb::compute_weights(e, zero.smap(zero.sal), P::HR, P::WR, zero.w));
  REQUIRE_NOTHROW(ssb::compute_weights(e, ones.smap(ones.sal), P::HR, P::WR, ones.w));
  const auto dz = ssb::dense::to_dense(zero.w), d1 = ssb::dense::to_dense(ones.w);
  CHECK(test::bitwise_equal(dz.gy, d1.gy));
  CHECK(test::bitwise_equal(dz.gx, d1.gx));
  for (const auto& [az, a1] : {std::pair{zero.w.y.image(1), ones.w.y.image(1)},
                               std::pair{zero.w.x.image(1), ones.w.x.image(1)}}) {
    REQUIRE(az.count() == a1.count());
    const std::size_t k = std::size_t(az.count());
    CHECK(std::memcmp(az.weight, a1.weight, k * sizeof(T)) == 0);
    CHECK(std::memcmp(az.out_index, a1.out_index, k * sizeof(std::int32_t)) == 0);
    CHECK(std::memcmp(az.in_index, a1.in_index, k * sizeof(std::int32_t)) == 0);
    CHECK(std::memcmp(az.flags, a1.flags, k) == 0);
    CHECK(std::memcmp(az.out_begin, a1.out_begin, (az.out_size + 1) * sizeof(std::int32_t)) == 0);
    CHECK(std::memcmp(az.in_begin, a1.in_begin, (az.in_size + 1) * sizeof(std::int32_t)) == 0);
  }
  // Samplers agree too.
  ssb::sample(e, zero.w, zero.in(zero.x), zero.out(zero.xr));
  ssb::sample(e, ones.w, ones.in(ones.x), ones.out(ones.xr));
  CHECK(test::bitwise_equal(zero.xr, ones.xr));

  // The uniform fallback does not depend on the map: d_saliency of image 1 is exactly 0.
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (auto& v : zero.dw) v = T(u(rng));
  REQUIRE_NOTHROW(
      ssb::compute_weights_backward(e, zero.smap(zero.sal), zero.w, zero.d_w, zero.smap(zero.ds)));
  const std::size_t image = std::size_t(P::H) * P::W;
  int nonzero_elsewhere = 0;
  for (std::size_t i = 0; i < 3 * image; ++i) {
    if (i / image == 1) {
      CHECK(zero.ds[i] == T(0));
    } else {
      nonzero_elsewhere += zero.ds[i] != T(0) && std::isfinite(zero.ds[i]);
    }
  }
  CHECK(nonzero_elsewhere > 0);
}

namespace {

// With an empty d_x (or d_y) only d_weights is written, and the same as with both requested; with
// an empty d_weights only d_x is written (and x, read only for d_weights, may be empty too).
template <class Exec, class T>
void check_optional_outputs(Layout layout) {
  Problem<T> p(layout);
  const Exec e{};
  const auto run = [&](bool inverse, bool want_data, bool want_weights) {
    std::vector<T>& data = inverse ? p.d_y : p.d_x;
    const FM<T> d_data = want_data ? (inverse ? p.out(data) : p.in(data)) : FM<T>{};
    const ssb::WeightsGrad<T> d_w = want_weights ? p.d_w : ssb::WeightsGrad<T>{};
    std::fill(data.begin(), data.end(), sentinel<T>);
    std::fill(p.dw.begin(), p.dw.end(), want_weights ? T(0) : sentinel<T>);
    if (inverse) {
      const FM<T> y = want_weights ? p.out(p.y) : FM<T>{};
      REQUIRE_NOTHROW(ssb::sample_inverse_backward(e, p.w, y, p.in(p.d_z), d_data, d_w));
    } else {
      const FM<T> x = want_weights ? p.in(p.x) : FM<T>{};
      REQUIRE_NOTHROW(ssb::sample_backward(e, p.w, x, p.out(p.d_xr), d_data, d_w));
    }
    return std::pair{data, p.dw};
  };
  for (bool inverse : {false, true}) {
    CAPTURE(inverse);
    const auto both = run(inverse, true, true);
    CHECK(!all_sentinel(both.first));
    const auto only_weights = run(inverse, false, true);
    CHECK(all_sentinel(only_weights.first));
    CHECK(test::bitwise_equal(only_weights.second, both.second));
    const auto only_data = run(inverse, true, false);
    CHECK(test::bitwise_equal(only_data.first, both.first));
    CHECK(all_sentinel(only_data.second));
    for (auto* b : {&p.d_x, &p.d_y, &p.dw}) std::fill(b->begin(), b->end(), sentinel<T>);
    const auto before = p.snapshot();
    run(inverse, false, false);  // neither output: nothing written
    CHECK(p.snapshot() == before);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("empty optional outputs are accepted and skipped", Exec, SSB_TEST_BACKENDS) {
  SUBCASE("double NHWC") {
    check_optional_outputs<Exec, double>(Layout::nhwc);
  }
  SUBCASE("float NCHW") {
    check_optional_outputs<Exec, float>(Layout::nchw);
  }
}

TEST_CASE_TEMPLATE("maps inside the weights' workspace and half-made weights are rejected", Exec,
                   SSB_TEST_BACKENDS) {
  using T = double;
  const Exec e{};
  Problem<T> p;
  // A view over the workspace's first bytes, shaped like each argument.
  T* inside = static_cast<T*>(p.w.workspace());
  const ssb::SaliencyMap<T> sal_inside(inside, Problem<T>::N, Problem<T>::H, Problem<T>::W);
  const FM<T> out_inside(inside, Problem<T>::N, Problem<T>::HR, Problem<T>::WR, Problem<T>::C,
                         Layout::nhwc);
  const FM<T> in_inside(inside, Problem<T>::N, Problem<T>::H, Problem<T>::W, Problem<T>::C,
                        Layout::nhwc);
  const auto in_ws = {"the weights' workspace"};
  p.expect_untouched([&] { ssb::compute_weights(e, sal_inside, 3, 2, p.w); },
                     {"ssb::compute_weights: ", "saliency overlaps", *in_ws.begin()});
  p.expect_untouched([&] { ssb::sample(e, p.w, p.in(p.x), out_inside); },
                     {"ssb::sample: ", "xr overlaps", *in_ws.begin()});
  p.expect_untouched([&] { ssb::sample_inverse(e, p.w, p.out(p.y), in_inside); },
                     {"ssb::sample_inverse: ", "z overlaps", *in_ws.begin()});
  p.expect_untouched(
      [&] {
        ssb::sample_backward(e, p.w, p.in(p.x), p.out(p.d_xr), in_inside, ssb::WeightsGrad<T>{});
      },
      {"ssb::sample_backward: ", "d_x overlaps", *in_ws.begin()});
  p.expect_untouched(
      [&] {
        ssb::sample_inverse_backward(e, p.w, p.out(p.y), p.in(p.d_z), out_inside,
                                     ssb::WeightsGrad<T>{});
      },
      {"ssb::sample_inverse_backward: ", "d_y overlaps", *in_ws.begin()});
  p.expect_untouched(
      [&] { ssb::compute_weights_backward(e, p.smap(p.sal), p.w, p.d_w, sal_inside); },
      {"ssb::compute_weights_backward: ", "d_saliency overlaps", *in_ws.begin()});
  std::vector<T> grad(ssb::weights_grad_size(p.w));
  const ssb::Weights<T> view = p.w;
  // d_weights placed in the workspace (a second view of the same memory).
  ssb::WeightsGrad<T> dw_inside{inside, inside, Problem<T>::N, view.y.capacity(),
                                view.x.capacity()};
  p.expect_untouched(
      [&] { ssb::sample_backward(e, p.w, p.in(p.x), p.out(p.d_xr), FM<T>{}, dw_inside); },
      {"ssb::sample_backward: ", "d_weights overlaps", *in_ws.begin()});

  // Weights with one array missing, as a hand-made view would be.
  for (int which = 0; which < 5; ++which) {
    ssb::Weights<T> broken = p.w;
    if (which == 0) broken.y.out_begin = nullptr;
    if (which == 1) broken.x.in_index = nullptr;
    if (which == 2) broken.gradient_scratch = nullptr;
    if (which == 3) broken.y.mass = nullptr;
    if (which == 4) broken.status = nullptr;
    CAPTURE(which);
    p.expect_untouched([&] { ssb::sample(e, broken, p.in(p.x), p.out(p.xr)); },
                       {"ssb::sample: ", "weights is empty"});
    p.expect_untouched(
        [&] { ssb::compute_weights_backward(e, p.smap(p.sal), broken, p.d_w, p.smap(p.ds)); },
        {"ssb::compute_weights_backward: ", "weights is empty"});
    expect_error([&] { ssb::weights_grad_view(broken, grad.data(), grad.size()); },
                 {"ssb::weights_grad_view: ", "weights is empty"});
  }
}

TEST_CASE_TEMPLATE("error messages print small saliency values and mismatched capacities", Exec,
                   SSB_TEST_BACKENDS) {
  using T = double;
  const Exec e{};
  Problem<T> p;
  p.sal_at(2, 1, 0) = -1e-30;
  p.expect_untouched([&] { ssb::compute_weights(e, p.smap(p.sal), 3, 2, p.w); },
                     {"saliency[n=2, h=1, w=0] is -1.0000000000000001e-30"});
  p.sal_at(2, 1, 0) = 1.0;
  ssb::HostWeights<T> other(Problem<T>::N, Problem<T>::H, Problem<T>::W, 4, 2);
  ssb::HostWeightsGrad<T> other_grad(other);
  p.expect_untouched(
      [&] { ssb::sample_backward(e, p.w, p.in(p.x), p.out(p.d_xr), FM<T>{}, other_grad); },
      {"d_weights does not match the weights", "capacity_y 8 vs 7", "capacity_x 5 vs 5"});
}
