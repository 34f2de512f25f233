// Samples a 2x8x8x3 batch to 4x4 and checks that a constant image stays constant.
#include <cmath>
#include <cstdio>
#include <vector>

#include <ssb/ssb.hpp>
#ifdef CONSUMER_OPENMP
#include <ssb/openmp.hpp>
#endif

int main() {
  const int n = 2, h = 8, w = 8, c = 3, hr = 4, wr = 4;
  std::vector<float> saliency(n * h * w), x(n * h * w * c, 2.5f), xr(n * hr * wr * c);
  for (std::size_t i = 0; i < saliency.size(); ++i) saliency[i] = 1.0f + float(i % 7);
#ifdef CONSUMER_OPENMP
  const ssb::openmp exec{2};
#else
  const ssb::serial exec{};
#endif
  ssb::HostWeights<float> weights(n, h, w, hr, wr);
  ssb::compute_weights(exec, ssb::SaliencyMap<const float>(saliency.data(), n, h, w), hr, wr,
                       weights);
  ssb::sample(exec, weights, ssb::FeatureMap<const float>(x.data(), n, h, w, c, ssb::Layout::nhwc),
              ssb::FeatureMap<float>(xr.data(), n, hr, wr, c, ssb::Layout::nhwc));
  for (float v : xr) {
    if (std::abs(v - 2.5f) > 1e-5f) {
      std::printf("consumer: wrong value %g\n", double(v));
      return 1;
    }
  }
  std::printf("consumer: ok\n");
  return 0;
}
