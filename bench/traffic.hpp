// ssbnet benchmarks: the verbs and the bytes model of one call (the table in problem.hpp), shared
// by ssb_bench and ssb_bench_cuda.
#pragma once

#include "shapes.hpp"

namespace ssb_bench {

enum class Verb {
  compute_weights,
  sample,
  sample_inverse,
  sample_backward,          // d_x and d_weights
  sample_backward_dx,       // d_x only
  sample_backward_dw,       // d_weights only
  sample_inverse_backward,  // d_y and d_weights
  compute_weights_backward,
  round_trip  // one SSB layer's sampler, forward and backward
};
const char* to_string(Verb verb);

// Bytes one call moves, booked to the reduce and the expand reference (problem.hpp's file
// comment).
struct Traffic {
  double reduce = 0.0, expand = 0.0;
  double total() const { return reduce + expand; }
  Traffic& operator+=(const Traffic& o) {
    reduce += o.reduce;
    expand += o.expand;
    return *this;
  }
};
// `map_bytes` is the size of one element of the feature and saliency maps (4 for float32, 2 for
// half storage); weights and their gradients stay float32.
Traffic traffic(Verb verb, const Shape& shape, double map_bytes = 4);

}  // namespace ssb_bench
