// ssbnet benchmarks: the bytes model of every verb (see problem.hpp's table).
#include "traffic.hpp"

#include <ssb/weights.hpp>

namespace ssb_bench {

const char* to_string(Verb verb) {
  switch (verb) {
    case Verb::compute_weights:
      return "compute_weights";
    case Verb::sample:
      return "sample";
    case Verb::sample_inverse:
      return "sample_inverse";
    case Verb::sample_backward:
      return "sample_backward";
    case Verb::sample_backward_dx:
      return "sample_backward_dx";
    case Verb::sample_backward_dw:
      return "sample_backward_dw";
    case Verb::sample_inverse_backward:
      return "sample_inverse_backward";
    case Verb::compute_weights_backward:
      return "compute_weights_backward";
    case Verb::round_trip:
      return "round_trip";
  }
  return "?";
}

Traffic traffic(Verb verb, const Shape& s, double map_bytes) {
  const double f = map_bytes, wf = sizeof(float);  // a map element, a weight (gradient)
  const double n = s.batch, e = double(s.input_elements()), er = double(s.sampled_elements());
  const double k = n * ((s.height + s.out_h - 1) + (s.width + s.out_w - 1));
  const double seg_fwd = k * 8 + n * (s.out_h + 1 + s.out_w + 1) * 4;
  const double seg_inv = k * 8 + n * (s.height + 1 + s.width + 1) * 4;
  const double maps = n * s.height * s.width;
  Traffic t;
  switch (verb) {
    case Verb::compute_weights:
      t.reduce = maps * f +
                 double(ssb::workspace_size<float>(s.batch, s.height, s.width, s.out_h, s.out_w));
      break;
    case Verb::sample:
      t.reduce = f * e + f * er + seg_fwd;
      break;
    case Verb::sample_inverse:
      t.expand = f * er + f * e + seg_inv;
      break;
    case Verb::sample_backward:
      t.expand = f * er + f * e + seg_inv;
      t.reduce = f * e + 2 * wf * k;
      break;
    case Verb::sample_backward_dx:
      t.expand = f * er + f * e + seg_inv;
      break;
    case Verb::sample_backward_dw:
      t.reduce = f * e + f * er + 2 * wf * k + seg_fwd;
      break;
    case Verb::sample_inverse_backward:
      t.reduce = f * e + 2 * f * er + 2 * wf * k + seg_fwd;
      break;
    case Verb::compute_weights_backward:
      t.expand = wf * k + 5 * k + n * (s.height + s.width) * 8 + n * (s.height + s.width + 2) * 8 +
                 maps * f;
      break;
    case Verb::round_trip:
      for (const Verb v :
           {Verb::compute_weights, Verb::sample, Verb::sample_inverse,
            Verb::sample_inverse_backward, Verb::sample_backward, Verb::compute_weights_backward}) {
        t += traffic(v, s, map_bytes);
      }
      t.expand += wf * k;  // zeroing d_weights
      break;
  }
  return t;
}

}  // namespace ssb_bench
