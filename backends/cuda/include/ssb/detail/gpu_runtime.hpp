// ssbnet: the thin portability layer under the GPU backends. The kernels of gpu_verbs.hpp are
// written once against these names; CUDA (nvcc, ssb/cuda.cuh) and HIP (hipcc, ssb/hip.hpp) fill
// them in. Reduced-precision storage: ssb::gpu::half and ssb::gpu::bfloat16, widened to float for
// arithmetic (widen) and rounded to nearest even on store (narrow).
#pragma once

#include <cstddef>

#if defined(SSB_GPU_USE_HIP)
#include <hip/hip_bfloat16.h>
#include <hip/hip_fp16.h>
#include <hip/hip_runtime.h>
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

namespace ssb {
namespace gpu {

#if defined(SSB_GPU_USE_HIP)
using stream_t = hipStream_t;
using error_t = hipError_t;
using event_t = hipEvent_t;
using half = __half;
using bfloat16 = hip_bfloat16;
constexpr error_t success = hipSuccess;
constexpr const char* platform = "HIP";
inline const char* error_string(error_t e) {
  return hipGetErrorString(e);
}
inline error_t last_error() {
  return hipGetLastError();
}
inline error_t malloc_async(void** p, std::size_t bytes, stream_t s) {
  return hipMallocAsync(p, bytes, s);
}
inline error_t free_async(void* p, stream_t s) {
  return hipFreeAsync(p, s);
}
inline error_t malloc_device(void** p, std::size_t bytes) {
  return hipMalloc(p, bytes);
}
inline error_t free_device(void* p) {
  return hipFree(p);
}
inline error_t memset_device(void* p, int value, std::size_t bytes) {
  return hipMemset(p, value, bytes);
}
inline error_t copy_to_host(void* dst, const void* src, std::size_t bytes, stream_t s) {
  const error_t e = hipMemcpyAsync(dst, src, bytes, hipMemcpyDeviceToHost, s);
  return e != hipSuccess ? e : hipStreamSynchronize(s);
}
inline error_t synchronize(stream_t s) {
  return hipStreamSynchronize(s);
}
inline error_t device_count(int* count) {
  return hipGetDeviceCount(count);
}
// Whether a kernel can dereference p: device, managed or registered (pinned) host memory.
inline bool device_accessible(const void* p) {
  hipPointerAttribute_t attributes{};
  if (hipPointerGetAttributes(&attributes, p) != hipSuccess) {
    (void)hipGetLastError();  // plain host memory is an error here, not a sticky one
    return false;
  }
  return attributes.devicePointer != nullptr;
}
__host__ __device__ inline float widen(bfloat16 v) {
  return float(v);
}
__host__ __device__ inline void narrow(bfloat16* p, float v) {
  *p = bfloat16(v);
}
// Lane u of each group of 32 lanes gets lane u + delta's value (its own past the group's end).
template <class V>
__device__ inline V shfl_down32(V v, unsigned delta) {
  return __shfl_down(v, delta, 32);
}
#else
using stream_t = cudaStream_t;
using error_t = cudaError_t;
using event_t = cudaEvent_t;
using half = __half;
using bfloat16 = __nv_bfloat16;
constexpr error_t success = cudaSuccess;
constexpr const char* platform = "CUDA";
inline const char* error_string(error_t e) {
  return cudaGetErrorString(e);
}
inline error_t last_error() {
  return cudaGetLastError();
}
inline error_t malloc_async(void** p, std::size_t bytes, stream_t s) {
  return cudaMallocAsync(p, bytes, s);
}
inline error_t free_async(void* p, stream_t s) {
  return cudaFreeAsync(p, s);
}
inline error_t malloc_device(void** p, std::size_t bytes) {
  return cudaMalloc(p, bytes);
}
inline error_t free_device(void* p) {
  return cudaFree(p);
}
inline error_t memset_device(void* p, int value, std::size_t bytes) {
  return cudaMemset(p, value, bytes);
}
inline error_t copy_to_host(void* dst, const void* src, std::size_t bytes, stream_t s) {
  const error_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s);
  return e != cudaSuccess ? e : cudaStreamSynchronize(s);
}
inline error_t synchronize(stream_t s) {
  return cudaStreamSynchronize(s);
}
inline error_t device_count(int* count) {
  return cudaGetDeviceCount(count);
}
inline bool device_accessible(const void* p) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attributes.devicePointer != nullptr;
}
__host__ __device__ inline float widen(bfloat16 v) {
  return __bfloat162float(v);
}
__host__ __device__ inline void narrow(bfloat16* p, float v) {
  *p = __float2bfloat16_rn(v);
}
template <class V>
__device__ inline V shfl_down32(V v, unsigned delta) {
  return __shfl_down_sync(0xffffffffu, v, delta, 32);
}
#endif

// The arithmetic of the gathers and dots, spelled out: a product rounded on its own and a fused
// multiply-add, which no compiler may contract or split. (Left to the compiler, a*b + c becomes a
// fused multiply-add in one kernel and not in another, and two kernels that sum in the same order
// no longer give the same bits.)
#if defined(SSB_GPU_USE_HIP)
// HIP's __fmul_rn / __dmul_rn are plain products where its device library lacks rounded
// operations (OCML_BASIC_ROUNDED_OPERATIONS), and clang contracts plain products under HIP's
// default -ffp-contract=fast-honor-pragmas: the pragma keeps these rounded on their own.
__device__ inline float mul_rn(float a, float b) {
#pragma clang fp contract(off)
  return a * b;
}
__device__ inline double mul_rn(double a, double b) {
#pragma clang fp contract(off)
  return a * b;
}
#else
__device__ inline float mul_rn(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ inline double mul_rn(double a, double b) {
  return __dmul_rn(a, b);
}
#endif
__device__ inline float fma_rn(float a, float b, float c) {
  return __fmaf_rn(a, b, c);
}
__device__ inline double fma_rn(double a, double b, double c) {
  return __fma_rn(a, b, c);
}

__host__ __device__ inline float widen(float v) {
  return v;
}
__host__ __device__ inline double widen(double v) {
  return v;
}
__host__ __device__ inline float widen(half v) {
  return __half2float(v);
}
__host__ __device__ inline void narrow(float* p, float v) {
  *p = v;
}
__host__ __device__ inline void narrow(float* p, double v) {
  *p = float(v);
}
__host__ __device__ inline void narrow(double* p, double v) {
  *p = v;
}
__host__ __device__ inline void narrow(half* p, float v) {
  *p = __float2half_rn(v);
}
__host__ __device__ inline void narrow(half* p, double v) {
  *p = __float2half_rn(float(v));
}
__host__ __device__ inline void narrow(bfloat16* p, double v) {
  narrow(p, float(v));
}

}  // namespace gpu
}  // namespace ssb
