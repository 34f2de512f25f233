// Compile check of ssb_torch.hpp's CUDA path (SSB_TORCH_WITH_CUDA): nvcc compiles the autograd
// functions with ssb::cuda next to ssb::openmp, for float and double. Built as an object library
// only: Debian's libtorch has no CUDA libraries to link (see CMakeLists.txt).
#include "ssb_torch.hpp"

at::Tensor ssb_torch_cuda_compile_check(const at::Tensor& saliency, const at::Tensor& x) {
  const auto weights = ssb_torch::compute_weights(saliency, 4, 4);
  return ssb_torch::sample_inverse(weights, ssb_torch::sample(weights, x));
}
