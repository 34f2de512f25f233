// ssbnet benchmarks: the six verbs and one SSB-layer sampler round trip, on every built backend.
//   <verb>/<backend>/<NHWC|NCHW>/<sigmoid|uniform>/<shape>
// Weights are computed once per shape outside the timing (compute_weights has its own benchmark),
// as they are in a network, where one compute_weights serves sample and sample_inverse. The
// weight gradients accumulate across iterations (the verbs add into d_weights); the round trip
// zeroes them once per call, as a training step does.
#include <exception>

#include "problem.hpp"

namespace ssb_bench {
namespace {

template <class Backend>
void run_verb(benchmark::State& state, const Backend& backend, const Shape& shape, Verb verb,
              ssb::Layout layout, Saliency sal) {
  Problem& p = problem(shape);
  const auto exec = backend.exec();
  ssb::HostWeights<float>& w = *p.weights[int(sal)];
  ssb::HostWeightsGrad<float>& g = *p.grad[int(sal)];
  const ssb::SaliencyMap<float> s = p.saliency_map(sal);
  const ssb::SaliencyMap<float> d_s{p.d_saliency.data(), shape.batch, shape.height, shape.width};
  const ssb::FeatureMap<float> x = p.on_input(p.input, layout);      // X, and dZ
  const ssb::FeatureMap<float> y = p.on_sampled(p.sampled, layout);  // Y, and dXr
  const ssb::FeatureMap<float> z = p.on_input(p.input_out, layout);  // Z, and dX
  const ssb::FeatureMap<float> z2 = p.on_input(p.input_out2, layout);
  const ssb::FeatureMap<float> xr = p.on_sampled(p.sampled_out, layout);  // Xr, and dY
  const ssb::FeatureMap<float> xr2 = p.on_sampled(p.sampled_out2, layout);
  const ssb::FeatureMap<float> none{};
  const ssb::WeightsGrad<float> no_grad{};
  const int out_h = shape.out_h, out_w = shape.out_w;

  const auto call = [&] {
    switch (verb) {
      case Verb::compute_weights:
        ssb::compute_weights(exec, s, out_h, out_w, w);
        break;
      case Verb::sample:
        ssb::sample(exec, w, x, xr);
        break;
      case Verb::sample_inverse:
        ssb::sample_inverse(exec, w, y, z);
        break;
      case Verb::sample_backward:
        ssb::sample_backward(exec, w, x, y, z, g);
        break;
      case Verb::sample_backward_dx:
        ssb::sample_backward(exec, w, x, y, z, no_grad);
        break;
      case Verb::sample_backward_dw:
        ssb::sample_backward(exec, w, x, y, none, g);
        break;
      case Verb::sample_inverse_backward:
        ssb::sample_inverse_backward(exec, w, y, x, xr, g);
        break;
      case Verb::compute_weights_backward:
        ssb::compute_weights_backward(exec, s, w, g, d_s);
        break;
      case Verb::round_trip:
        ssb::compute_weights(exec, s, out_h, out_w, w);
        ssb::sample(exec, w, x, xr);          // Xr = sample(X)
        ssb::sample_inverse(exec, w, xr, z);  // Z = inverse(Xr): identity inside
        g.zero();
        ssb::sample_inverse_backward(exec, w, xr, x, xr2, g);  // dZ -> dY, d_weights
        ssb::sample_backward(exec, w, x, xr2, z2, g);          // dXr = dY -> dX, d_weights
        ssb::compute_weights_backward(exec, s, w, g, d_s);     // -> d_saliency
        break;
    }
    backend.sync();
  };

  try {
    call();  // warm-up, and any ssb::error is reported before the timing
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  const Stopwatch stopwatch;
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
  set_counters(state, traffic(verb, shape), p, backend.threads(), stopwatch.seconds());
}

constexpr Verb all_verbs[] = {Verb::compute_weights,
                              Verb::sample,
                              Verb::sample_inverse,
                              Verb::sample_backward,
                              Verb::sample_backward_dx,
                              Verb::sample_backward_dw,
                              Verb::sample_inverse_backward,
                              Verb::compute_weights_backward,
                              Verb::round_trip};

// The default set (about 30 benchmarks per shape); --ssb_full registers every combination.
bool in_default_set(bool primary, Verb verb, ssb::Layout layout, Saliency sal) {
  const bool nhwc = layout == ssb::Layout::nhwc;
  const bool split = verb == Verb::sample_backward_dx || verb == Verb::sample_backward_dw;
  if (primary) {
    if (sal == Saliency::sigmoid) return nhwc || !split;
    return nhwc &&
           (verb == Verb::sample || verb == Verb::sample_inverse || verb == Verb::sample_backward);
  }
  return sal == Saliency::sigmoid && nhwc &&
         (verb == Verb::sample || verb == Verb::sample_inverse || verb == Verb::sample_backward ||
          verb == Verb::round_trip);
}

}  // namespace

void register_verbs(const Options& options, const Shape& shape) {
  for_each_backend(options, [&](const auto& backend) {
    const bool primary = backend.name() == options.primary;
    for (const Saliency sal : {Saliency::sigmoid, Saliency::uniform}) {
      for (const ssb::Layout layout : {ssb::Layout::nhwc, ssb::Layout::nchw}) {
        for (const Verb verb : all_verbs) {
          if (!options.full && !in_default_set(primary, verb, layout, sal)) continue;
          const std::string name = bench_name(to_string(verb), backend.name(),
                                              ssb::to_string(layout), to_string(sal), shape);
          benchmark::RegisterBenchmark(name.c_str(),
                                       [backend, shape, verb, layout, sal](benchmark::State& st) {
                                         run_verb(st, backend, shape, verb, layout, sal);
                                       })
              ->UseRealTime()
              ->Unit(benchmark::kMillisecond);
        }
      }
    }
  });
}

}  // namespace ssb_bench
