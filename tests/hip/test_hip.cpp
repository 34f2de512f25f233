// The HIP backend: every verb instantiated for float, double, __half and hip_bfloat16 storage
// (compiled by hipcc for SSB_HIP_ARCHITECTURES), and, on a machine with an AMD GPU, one SSB layer
// against the serial backend. Without a device it prints "skipped: no HIP device" and exits with
// 77, which ctest reports as skipped.
#include <ssb/hip.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

bool ok(hipError_t e, const char* what) {
  if (e != hipSuccess) std::printf("FAILED: %s: %s\n", what, hipGetErrorString(e));
  return e == hipSuccess;
}

// Instantiates every public overload (never called: the compile check).
template <class S, class T>
void instantiate(ssb::hip exec, const ssb::Weights<T>& w, ssb::SaliencyMap<const S> s,
                 ssb::FeatureMap<S> a, ssb::FeatureMap<S> b, ssb::WeightsGrad<T> g,
                 ssb::SaliencyMap<S> ds) {
  ssb::compute_weights(exec, s, 2, 2, w);
  ssb::sample(exec, w, ssb::FeatureMap<const S>(a), b);
  ssb::sample_inverse(exec, w, ssb::FeatureMap<const S>(b), a);
  ssb::sample_backward(exec, w, ssb::FeatureMap<const S>(a), ssb::FeatureMap<const S>(b), a, g);
  ssb::sample_inverse_backward(exec, w, ssb::FeatureMap<const S>(b), ssb::FeatureMap<const S>(a), b,
                               g);
  ssb::compute_weights_backward(exec, s, w, g, ds);
  ssb::check_weights_status(exec, w);
}
template void instantiate<float, float>(ssb::hip, const ssb::Weights<float>&,
                                        ssb::SaliencyMap<const float>, ssb::FeatureMap<float>,
                                        ssb::FeatureMap<float>, ssb::WeightsGrad<float>,
                                        ssb::SaliencyMap<float>);
template void instantiate<double, double>(ssb::hip, const ssb::Weights<double>&,
                                          ssb::SaliencyMap<const double>, ssb::FeatureMap<double>,
                                          ssb::FeatureMap<double>, ssb::WeightsGrad<double>,
                                          ssb::SaliencyMap<double>);
template void instantiate<ssb::gpu::half, float>(ssb::hip, const ssb::Weights<float>&,
                                                 ssb::SaliencyMap<const ssb::gpu::half>,
                                                 ssb::FeatureMap<ssb::gpu::half>,
                                                 ssb::FeatureMap<ssb::gpu::half>,
                                                 ssb::WeightsGrad<float>,
                                                 ssb::SaliencyMap<ssb::gpu::half>);
template void instantiate<ssb::gpu::bfloat16, float>(ssb::hip, const ssb::Weights<float>&,
                                                     ssb::SaliencyMap<const ssb::gpu::bfloat16>,
                                                     ssb::FeatureMap<ssb::gpu::bfloat16>,
                                                     ssb::FeatureMap<ssb::gpu::bfloat16>,
                                                     ssb::WeightsGrad<float>,
                                                     ssb::SaliencyMap<ssb::gpu::bfloat16>);

}  // namespace

int main() {
  int devices = 0;
  if (hipGetDeviceCount(&devices) != hipSuccess || devices == 0) {
    std::printf("skipped: no HIP device\n");
    return 77;
  }
  // One layer, float NHWC, against the serial backend.
  const int n = 3, h = 13, w = 11, c = 19, hr = 6, wr = 5;
  std::vector<float> sal(std::size_t(n) * h * w), x(std::size_t(n) * h * w * c);
  for (std::size_t i = 0; i < sal.size(); ++i) sal[i] = 0.2f + float((i * 37) % 11) / 11.0f;
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float((i * 53) % 17) / 17.0f - 0.5f;
  ssb::HostWeights<float> host_w(n, h, w, hr, wr);
  ssb::compute_weights(ssb::serial{}, ssb::SaliencyMap<const float>(sal.data(), n, h, w), hr, wr,
                       host_w);
  std::vector<float> ref(std::size_t(n) * hr * wr * c), got(ref.size());
  ssb::sample(ssb::serial{}, host_w,
              ssb::FeatureMap<const float>(x.data(), n, h, w, c, ssb::Layout::nhwc),
              ssb::FeatureMap<float>(ref.data(), n, hr, wr, c, ssb::Layout::nhwc));
  float *d_sal = nullptr, *d_x = nullptr, *d_xr = nullptr;
  if (!ok(hipMalloc(&d_sal, sal.size() * 4), "hipMalloc") ||
      !ok(hipMalloc(&d_x, x.size() * 4), "hipMalloc") ||
      !ok(hipMalloc(&d_xr, ref.size() * 4), "hipMalloc") ||
      !ok(hipMemcpy(d_sal, sal.data(), sal.size() * 4, hipMemcpyHostToDevice), "upload") ||
      !ok(hipMemcpy(d_x, x.data(), x.size() * 4, hipMemcpyHostToDevice), "upload")) {
    return 1;
  }
  ssb::DeviceWeights<float> dw(n, h, w, hr, wr);
  ssb::compute_weights(ssb::hip{}, ssb::SaliencyMap<const float>(d_sal, n, h, w), hr, wr, dw);
  ssb::sample(ssb::hip{}, dw, ssb::FeatureMap<const float>(d_x, n, h, w, c, ssb::Layout::nhwc),
              ssb::FeatureMap<float>(d_xr, n, hr, wr, c, ssb::Layout::nhwc));
  if (!ok(hipMemcpy(got.data(), d_xr, got.size() * 4, hipMemcpyDeviceToHost), "download")) return 1;
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    worst =
        std::fmax(worst, std::fabs(double(got[i]) - ref[i]) / std::fmax(std::fabs(ref[i]), 1.0));
  }
  (void)hipFree(d_sal), (void)hipFree(d_x), (void)hipFree(d_xr);
  std::printf("HIP sample vs serial: worst relative error %.3g\n", worst);
  return worst <= 64 * 1.1920929e-7 ? 0 : 1;
}
