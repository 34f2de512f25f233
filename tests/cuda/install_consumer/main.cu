// Samples a constant map on the GPU through the installed <ssb/cuda.cuh>: the result must stay
// constant. Exits 77 (skipped) without a CUDA device.
#include <ssb/cuda.cuh>

#include <cstdio>
#include <vector>

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("consumer: built; skipped: no CUDA device\n");
    return 77;
  }
  const int n = 2, h = 9, w = 7, c = 5, hr = 4, wr = 3;
  std::vector<float> s(std::size_t(n) * h * w, 1.0f), x(std::size_t(n) * h * w * c, 2.5f);
  std::vector<float> xr(std::size_t(n) * hr * wr * c);
  float *ds = nullptr, *dx = nullptr, *dxr = nullptr;
  cudaMalloc(&ds, s.size() * 4);
  cudaMalloc(&dx, x.size() * 4);
  cudaMalloc(&dxr, xr.size() * 4);
  cudaMemcpy(ds, s.data(), s.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  ssb::DeviceWeights<float> weights(n, h, w, hr, wr);
  ssb::compute_weights(ssb::cuda{}, ssb::SaliencyMap<const float>(ds, n, h, w), hr, wr, weights);
  ssb::sample(ssb::cuda{}, weights, ssb::FeatureMap<const float>(dx, n, h, w, c, ssb::Layout::nhwc),
              ssb::FeatureMap<float>(dxr, n, hr, wr, c, ssb::Layout::nhwc));
  cudaMemcpy(xr.data(), dxr, xr.size() * 4, cudaMemcpyDeviceToHost);
  for (float v : xr) {
    if (v < 2.4999f || v > 2.5001f) {
      std::printf("consumer: sample of a constant gave %g\n", double(v));
      return 1;
    }
  }
  std::printf("consumer: ok\n");
  return 0;
}
