// The README's example: an SSB layer's two samplers on raw pointers, forward and backward.
#include <cstdio>
#include <vector>

#include <ssb/ssb.hpp>  // core + ssb::serial; <ssb/openmp.hpp> adds ssb::openmp

int main() {
  const int N = 2, H = 28, W = 28, C = 64, Hr = 16, Wr = 16;
  const auto nhwc = ssb::Layout::nhwc;
  std::vector<float> s(N * H * W, 1.0f), x(N * H * W * C, 1.0f), xr(N * Hr * Wr * C);
  s[5 * W + 7] = 50.0f;  // something salient in image 0 at (5, 7)
  ssb::SaliencyMap<const float> saliency(s.data(), N, H, W);
  ssb::HostWeights<float> weights(N, H, W, Hr, Wr);  // or ssb::weights_view over your workspace
  ssb::compute_weights(ssb::serial{}, saliency, Hr, Wr, weights);
  ssb::FeatureMap<const float> X(x.data(), N, H, W, C, nhwc);
  ssb::sample(ssb::serial{}, weights, X, ssb::FeatureMap<float>(xr.data(), N, Hr, Wr, C, nhwc));
  // ... the residual branch runs on xr; the gradient d_xr comes back:
  std::vector<float> d_xr(xr.size(), 1.0f), d_x(x.size()), d_s(s.size());
  ssb::HostWeightsGrad<float> d_weights(weights);  // zeroed; the backward verbs accumulate
  ssb::sample_backward(ssb::serial{}, weights, X,
                       ssb::FeatureMap<const float>(d_xr.data(), N, Hr, Wr, C, nhwc),
                       ssb::FeatureMap<float>(d_x.data(), N, H, W, C, nhwc), d_weights);
  ssb::compute_weights_backward(ssb::serial{}, saliency, weights, d_weights,
                                ssb::SaliencyMap<float>(d_s.data(), N, H, W));
  std::printf("xr[0] = %g (a constant input stays constant), d_x[0] = %g\n", xr[0], d_x[0]);
}
