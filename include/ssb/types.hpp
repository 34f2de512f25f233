// ssbnet: views, errors and execution tags shared by every backend.
//
// Views are non-owning: a pointer, a shape and (for feature maps) a layout. Memory belongs to the
// caller's framework. Every element is addressed by 64-bit offsets, so batch*channels*H*W may
// exceed 2^31.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#if defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER)
#define SSB_RESTRICT __restrict
#else
#define SSB_RESTRICT
#endif

#if defined(__CUDACC__) || defined(__HIPCC__)
#define SSB_HOST_DEVICE __host__ __device__
#else
#define SSB_HOST_DEVICE
#endif

namespace ssb {

// Every error the library reports: bad shapes, null pointers, a workspace too small, bad saliency.
// Raised before anything is written.
class error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Memory order of a 4-D feature map (batch, height, width, channels).
enum class Layout { nhwc, nchw };

inline const char* to_string(Layout layout) {
  return layout == Layout::nhwc ? "NHWC" : "NCHW";
}

// A batch of feature maps. T may be const-qualified for inputs.
//   NHWC: element (n, h, w, c) at ((n*H + h)*W + w)*C + c
//   NCHW: element (n, h, w, c) at ((n*C + c)*H + h)*W + w
template <class T>
struct FeatureMap {
  T* data = nullptr;
  int batch = 0;
  int height = 0;
  int width = 0;
  int channels = 0;
  Layout layout = Layout::nhwc;

  FeatureMap() = default;
  SSB_HOST_DEVICE FeatureMap(T* data_, int batch_, int height_, int width_, int channels_,
                             Layout layout_)
      : data(data_),
        batch(batch_),
        height(height_),
        width(width_),
        channels(channels_),
        layout(layout_) {}
  // A mutable view converts to a read-only one.
  template <class U, class = std::enable_if_t<std::is_same<const U, T>::value>>
  SSB_HOST_DEVICE FeatureMap(const FeatureMap<U>& other)
      : FeatureMap(other.data, other.batch, other.height, other.width, other.channels,
                   other.layout) {}

  SSB_HOST_DEVICE std::int64_t size() const {
    return std::int64_t(batch) * height * width * channels;
  }
  // Offset of channel 0 of pixel (n, h, w).
  SSB_HOST_DEVICE std::int64_t pixel_offset(int n, int h, int w) const {
    return layout == Layout::nhwc
               ? ((std::int64_t(n) * height + h) * width + w) * channels
               : std::int64_t(n) * channels * height * width + std::int64_t(h) * width + w;
  }
  // Distance between consecutive channels of one pixel.
  SSB_HOST_DEVICE std::int64_t channel_stride() const {
    return layout == Layout::nhwc ? 1 : std::int64_t(height) * width;
  }
};

// A batch of saliency maps, one (height x width) map per image, row-major and contiguous:
// element (n, h, w) at (n*H + h)*W + w. This is also the memory of an (N, 1, H, W) tensor.
template <class T>
struct SaliencyMap {
  T* data = nullptr;
  int batch = 0;
  int height = 0;
  int width = 0;

  SaliencyMap() = default;
  SSB_HOST_DEVICE SaliencyMap(T* data_, int batch_, int height_, int width_)
      : data(data_), batch(batch_), height(height_), width(width_) {}
  template <class U, class = std::enable_if_t<std::is_same<const U, T>::value>>
  SSB_HOST_DEVICE SaliencyMap(const SaliencyMap<U>& other)
      : SaliencyMap(other.data, other.batch, other.height, other.width) {}

  SSB_HOST_DEVICE std::int64_t size() const { return std::int64_t(batch) * height * width; }
};

// Execution tag of the serial reference backend (ssb/serial.hpp).
struct serial {};

// Execution tag of the OpenMP backend (ssb/openmp.hpp, target ssbnet::openmp).
// num_threads <= 0 uses OpenMP's default (OMP_NUM_THREADS). A launch that touches fewer than
// min_parallel_work elements runs on the calling thread (same bits, no fork); < 0 takes the
// default SSB_OPENMP_MIN_WORK (32768), 0 always forks.
struct openmp {
  int num_threads = 0;
  std::int64_t min_parallel_work = -1;
};

}  // namespace ssb
