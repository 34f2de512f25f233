// The CUDA backend under the shared test bodies. test::cuda_mirror is an execution tag whose verbs
// copy their host arguments into device memory, run the ssb::cuda verb on the default stream,
// wait, and copy the outputs back, so that every test body written for host memory (test_dense,
// test_properties, test_gradients) checks the CUDA kernels against the serial reference.
// The mirror functions live in mirror.cu (nvcc); this header is plain C++.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <ssb/ssb.hpp>

namespace test {

struct cuda_mirror {};

// CUDA devices visible to this process (0 when there is no driver or no device), and why not.
int cuda_device_count(std::string* why);

// From now on the device copies of maps, saliency and outputs (of the mirror and of
// cuda_reduced_run) start `bytes` past a 256-byte aligned allocation: 8 moves them off 16-byte
// boundaries, so that the GPU backend takes its per-element path instead of its 16-byte packs.
void set_mirror_offset(std::size_t bytes);

namespace mirror {

void compute_weights(ssb::SaliencyMap<const float> s, int out_h, int out_w,
                     const ssb::Weights<float>& w);
void compute_weights(ssb::SaliencyMap<const double> s, int out_h, int out_w,
                     const ssb::Weights<double>& w);
void gather(const ssb::Weights<float>& w, ssb::FeatureMap<const float> in,
            ssb::FeatureMap<float> out, bool inverse);
void gather(const ssb::Weights<double>& w, ssb::FeatureMap<const double> in,
            ssb::FeatureMap<double> out, bool inverse);
void backward(const ssb::Weights<float>& w, bool inverse, ssb::FeatureMap<const float> primal,
              ssb::FeatureMap<const float> upstream, ssb::FeatureMap<float> d_primal,
              ssb::WeightsGrad<float> d_weights);
void backward(const ssb::Weights<double>& w, bool inverse, ssb::FeatureMap<const double> primal,
              ssb::FeatureMap<const double> upstream, ssb::FeatureMap<double> d_primal,
              ssb::WeightsGrad<double> d_weights);
void compute_weights_backward(ssb::SaliencyMap<const float> s, const ssb::Weights<float>& w,
                              ssb::WeightsGrad<float> d_weights, ssb::SaliencyMap<float> ds);
void compute_weights_backward(ssb::SaliencyMap<const double> s, const ssb::Weights<double>& w,
                              ssb::WeightsGrad<double> d_weights, ssb::SaliencyMap<double> ds);

}  // namespace mirror

// Device-only checks (mirror.cu): each runs on device memory and reports what it saw.

// The message of ssb::sample given a host pointer for x (empty if nothing was thrown).
std::string cuda_host_pointer_message();

// compute_weights on a batch of 3 maps of 5x6 with saliency[n=1, h=2, w=3] = `bad`: the message of
// check_weights_status, and whether the segment arrays of the workspace kept their old bytes.
struct BadSaliencyResult {
  std::string message;
  bool segments_untouched = false;
};
BadSaliencyResult cuda_bad_saliency(float bad);

// Storage types of the reduced-precision runs.
enum class Storage { half, bfloat16 };
// One SSB layer (compute_weights, sample, sample_inverse, both backwards, compute_weights_backward)
// on maps stored as `storage` (NHWC unless `layout` says otherwise), with float weights. The inputs
// are given in float and rounded to the storage type on the host; `rounded` returns them as rounded
// (widened back to float), so that a float reference can be run on exactly the values the device
// saw.
struct ReducedInputs {
  int n = 0, h = 0, w = 0, c = 0, hr = 0, wr = 0;
  std::vector<float> saliency, x, y, d_xr, d_z;
};
struct ReducedRun {
  ReducedInputs rounded;
  std::vector<float> xr, z, d_x, d_y, d_saliency;
  std::vector<float> d_weights;  // the y slots then the x slots
};
ReducedRun cuda_reduced_run(Storage storage, const ReducedInputs& inputs,
                            ssb::Layout layout = ssb::Layout::nhwc);

// The whole pipeline of one layer in float on the device, twice, from the same inputs: every
// output of both runs (bitwise determinism) and the workspace bytes (compared with the serial
// backend's weights).
struct PipelineRun {
  std::vector<unsigned char> workspace;
  std::vector<float> xr, z, d_x, d_y, d_weights, d_saliency;
};
std::vector<PipelineRun> cuda_pipeline_twice(const ReducedInputs& inputs, ssb::Layout layout);

}  // namespace test

// The six verbs on test::cuda_mirror (more specialised than the generic host templates).
namespace ssb {

template <class S, class T>
void compute_weights(const test::cuda_mirror&, SaliencyMap<S> saliency, int out_h, int out_w,
                     const Weights<T>& weights) {
  test::mirror::compute_weights(SaliencyMap<const T>(saliency), out_h, out_w, weights);
}
template <class T, class X>
void sample(const test::cuda_mirror&, const Weights<T>& w, FeatureMap<X> x, FeatureMap<T> xr) {
  test::mirror::gather(w, FeatureMap<const T>(x), xr, false);
}
template <class T, class Y>
void sample_inverse(const test::cuda_mirror&, const Weights<T>& w, FeatureMap<Y> y,
                    FeatureMap<T> z) {
  test::mirror::gather(w, FeatureMap<const T>(y), z, true);
}
template <class T, class X, class DXr>
void sample_backward(const test::cuda_mirror&, const Weights<T>& w, FeatureMap<X> x,
                     FeatureMap<DXr> d_xr, FeatureMap<T> d_x, WeightsGrad<T> d_weights) {
  test::mirror::backward(w, false, FeatureMap<const T>(x), FeatureMap<const T>(d_xr), d_x,
                         d_weights);
}
template <class T, class Y, class DZ>
void sample_inverse_backward(const test::cuda_mirror&, const Weights<T>& w, FeatureMap<Y> y,
                             FeatureMap<DZ> d_z, FeatureMap<T> d_y, WeightsGrad<T> d_weights) {
  test::mirror::backward(w, true, FeatureMap<const T>(y), FeatureMap<const T>(d_z), d_y, d_weights);
}
template <class S, class T, class DS>
void compute_weights_backward(const test::cuda_mirror&, SaliencyMap<S> saliency,
                              const Weights<T>& weights, WeightsGrad<T> d_weights,
                              SaliencyMap<DS> d_saliency) {
  test::mirror::compute_weights_backward(SaliencyMap<const T>(saliency), weights, d_weights,
                                         d_saliency);
}

}  // namespace ssb
