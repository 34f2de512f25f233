// ssbnet: the HIP backend (target ssbnet::hip; compile with hipcc), for AMD GPUs.
//     ssb::sample(ssb::hip{stream}, weights, x, xr);
// The kernels of the CUDA backend (ssb/detail/gpu_verbs.hpp, shipped with ssbnet::hip) through
// the portability names of ssb/detail/gpu_runtime.hpp: hipStream_t, hipMallocAsync, __half and
// hip_bfloat16 storage (ssb::gpu::half, ssb::gpu::bfloat16) with float weights.
#pragma once

#if !defined(__HIPCC__)
#error "ssb/hip.hpp is HIP code: compile it with hipcc (link ssbnet::hip)"
#endif

#define SSB_GPU_USE_HIP 1
#include <ssb/detail/gpu_runtime.hpp>

namespace ssb {

// Execution tag of the HIP backend: the stream every kernel is enqueued on.
struct hip {
  hipStream_t stream = nullptr;
};

}  // namespace ssb

#define SSB_GPU_TAG ::ssb::hip
#include <ssb/detail/gpu_verbs.hpp>
#undef SSB_GPU_TAG
