// ssbnet: the CUDA backend (target ssbnet::cuda; compile with nvcc).
//     cudaStream_t stream = ...;                           // or 0, the default stream
//     ssb::DeviceWeights<float> w(batch, H, W, Hr, Wr);     // device workspace
//     ssb::compute_weights(ssb::cuda{stream}, saliency, Hr, Wr, w);
//     ssb::sample(ssb::cuda{stream}, w, x, xr);             // x, xr: device memory
// The six verbs of the host backends, enqueued on the stream: nothing synchronises, nothing
// round-trips through the host, no atomics (bitwise reproducible run to run). float and double,
// and __half / __nv_bfloat16 maps (ssb::gpu::half, ssb::gpu::bfloat16) with float weights and
// float accumulation. NHWC and NCHW. See ssb/detail/gpu_verbs.hpp for the kernels and for how bad
// saliency values are reported (check_weights_status).
#pragma once

#if !defined(__CUDACC__)
#error "ssb/cuda.cuh is CUDA code: compile it with nvcc (link ssbnet::cuda)"
#endif

#include "detail/gpu_runtime.hpp"

namespace ssb {

// Execution tag of the CUDA backend: the stream every kernel is enqueued on.
struct cuda {
  cudaStream_t stream = nullptr;
};

}  // namespace ssb

#define SSB_GPU_TAG ::ssb::cuda
#include "detail/gpu_verbs.hpp"
#undef SSB_GPU_TAG
