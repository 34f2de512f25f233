// The device side of the CUDA tests (see cuda_mirror.hpp): host arguments copied to device memory,
// the ssb::cuda verbs, the results copied back.
#include <ssb/cuda.cuh>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_mirror.hpp"

namespace test {
namespace {

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA test support: ") + what + ": " +
                             cudaGetErrorString(e));
  }
}

std::size_t g_offset = 0;  // set_mirror_offset

// A device buffer holding a copy of host bytes, g_offset bytes past the allocation's start.
class Buffer {
 public:
  explicit Buffer(std::size_t bytes, const void* host = nullptr) : bytes_(bytes) {
    if (bytes_ == 0) return;
    ok(cudaMalloc(&base_, bytes_ + g_offset), "cudaMalloc");
    data_ = static_cast<unsigned char*>(base_) + g_offset;
    if (host != nullptr) ok(cudaMemcpy(data_, host, bytes_, cudaMemcpyHostToDevice), "upload");
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (base_ != nullptr) cudaFree(base_);
  }
  void download(void* host) const {
    if (bytes_ != 0) ok(cudaMemcpy(host, data_, bytes_, cudaMemcpyDeviceToHost), "download");
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  void* base_ = nullptr;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// A device copy of a host feature map (an empty view stays empty).
template <class T>
struct DeviceMap {
  Buffer buffer;
  ssb::FeatureMap<T> view;
  explicit DeviceMap(const ssb::FeatureMap<T>& host)
      : buffer(host.data == nullptr ? 0 : std::size_t(host.size()) * sizeof(T), host.data),
        view(host) {
    if (host.data != nullptr) view.data = buffer.as<std::remove_const_t<T>>();
  }
  void download(const ssb::FeatureMap<T>& host) const {
    if (host.data != nullptr) buffer.download(const_cast<std::remove_const_t<T>*>(host.data));
  }
};

template <class T>
struct DeviceSaliency {
  Buffer buffer;
  ssb::SaliencyMap<T> view;
  explicit DeviceSaliency(const ssb::SaliencyMap<T>& host)
      : buffer(std::size_t(host.size()) * sizeof(T), host.data), view(host) {
    view.data = buffer.as<std::remove_const_t<T>>();
  }
};

// A device copy of a host workspace, with a Weights view over it.
template <class T>
struct DeviceWeightsCopy {
  Buffer buffer;
  ssb::Weights<T> view;
  explicit DeviceWeightsCopy(const ssb::Weights<T>& host)
      : buffer(host.workspace_bytes, host.workspace),
        view(ssb::weights_view<T>(buffer.as<void>(), host.workspace_bytes, host.batch,
                                  host.in_height(), host.in_width(), host.out_height(),
                                  host.out_width())) {}
  void download(const ssb::Weights<T>& host) const { buffer.download(host.workspace); }
};

template <class T>
struct DeviceGrad {
  Buffer y, x;
  ssb::WeightsGrad<T> view;
  explicit DeviceGrad(const ssb::WeightsGrad<T>& host)
      : y(host.y == nullptr ? 0 : std::size_t(host.batch) * host.capacity_y * sizeof(T), host.y),
        x(host.x == nullptr ? 0 : std::size_t(host.batch) * host.capacity_x * sizeof(T), host.x),
        view(host) {
    if (host.y != nullptr) view.y = y.as<T>();
    if (host.x != nullptr) view.x = x.as<T>();
  }
  void download(const ssb::WeightsGrad<T>& host) const {
    if (host.y != nullptr) y.download(host.y);
    if (host.x != nullptr) x.download(host.x);
  }
};

void finish() {
  ok(cudaDeviceSynchronize(), "the kernels");
}

template <class T>
void compute_weights_impl(ssb::SaliencyMap<const T> s, int out_h, int out_w,
                          const ssb::Weights<T>& w) {
  DeviceSaliency<const T> ds(s);
  DeviceWeightsCopy<T> dw(w);
  ssb::compute_weights(ssb::cuda{}, ds.view, out_h, out_w, dw.view);
  ssb::check_weights_status(ssb::cuda{}, dw.view);  // throws the host backends' ssb::error
  finish();
  dw.download(w);
}

template <class T>
void gather_impl(const ssb::Weights<T>& w, ssb::FeatureMap<const T> in, ssb::FeatureMap<T> out,
                 bool inverse) {
  DeviceWeightsCopy<T> dw(w);
  DeviceMap<const T> din(in);
  DeviceMap<T> dout(out);
  if (inverse) {
    ssb::sample_inverse(ssb::cuda{}, dw.view, din.view, dout.view);
  } else {
    ssb::sample(ssb::cuda{}, dw.view, din.view, dout.view);
  }
  finish();
  dout.download(out);
}

template <class T>
void backward_impl(const ssb::Weights<T>& w, bool inverse, ssb::FeatureMap<const T> primal,
                   ssb::FeatureMap<const T> upstream, ssb::FeatureMap<T> d_primal,
                   ssb::WeightsGrad<T> d_weights) {
  DeviceWeightsCopy<T> dw(w);
  DeviceMap<const T> dp(primal), du(upstream);
  DeviceMap<T> dd(d_primal);
  DeviceGrad<T> dg(d_weights);
  if (inverse) {
    ssb::sample_inverse_backward(ssb::cuda{}, dw.view, dp.view, du.view, dd.view, dg.view);
  } else {
    ssb::sample_backward(ssb::cuda{}, dw.view, dp.view, du.view, dd.view, dg.view);
  }
  finish();
  dd.download(d_primal);
  dg.download(d_weights);
}

template <class T>
void compute_weights_backward_impl(ssb::SaliencyMap<const T> s, const ssb::Weights<T>& w,
                                   ssb::WeightsGrad<T> d_weights, ssb::SaliencyMap<T> d_s) {
  DeviceSaliency<const T> dsal(s);
  DeviceWeightsCopy<T> dw(w);
  DeviceGrad<T> dg(d_weights);
  DeviceSaliency<T> dout(d_s);
  ssb::compute_weights_backward(ssb::cuda{}, dsal.view, dw.view, dg.view, dout.view);
  finish();
  dout.buffer.download(d_s.data);
  dw.download(w);  // the gradient scratch, as the host backends leave it
}

}  // namespace

void set_mirror_offset(std::size_t bytes) {
  g_offset = bytes;
}

int cuda_device_count(std::string* why) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    if (why != nullptr) *why = cudaGetErrorString(e);
    (void)cudaGetLastError();
    return 0;
  }
  if (count == 0 && why != nullptr) *why = "cudaGetDeviceCount found none";
  return count;
}

namespace mirror {

void compute_weights(ssb::SaliencyMap<const float> s, int out_h, int out_w,
                     const ssb::Weights<float>& w) {
  compute_weights_impl(s, out_h, out_w, w);
}
void compute_weights(ssb::SaliencyMap<const double> s, int out_h, int out_w,
                     const ssb::Weights<double>& w) {
  compute_weights_impl(s, out_h, out_w, w);
}
void gather(const ssb::Weights<float>& w, ssb::FeatureMap<const float> in,
            ssb::FeatureMap<float> out, bool inverse) {
  gather_impl(w, in, out, inverse);
}
void gather(const ssb::Weights<double>& w, ssb::FeatureMap<const double> in,
            ssb::FeatureMap<double> out, bool inverse) {
  gather_impl(w, in, out, inverse);
}
void backward(const ssb::Weights<float>& w, bool inverse, ssb::FeatureMap<const float> primal,
              ssb::FeatureMap<const float> upstream, ssb::FeatureMap<float> d_primal,
              ssb::WeightsGrad<float> d_weights) {
  backward_impl(w, inverse, primal, upstream, d_primal, d_weights);
}
void backward(const ssb::Weights<double>& w, bool inverse, ssb::FeatureMap<const double> primal,
              ssb::FeatureMap<const double> upstream, ssb::FeatureMap<double> d_primal,
              ssb::WeightsGrad<double> d_weights) {
  backward_impl(w, inverse, primal, upstream, d_primal, d_weights);
}
void compute_weights_backward(ssb::SaliencyMap<const float> s, const ssb::Weights<float>& w,
                              ssb::WeightsGrad<float> d_weights, ssb::SaliencyMap<float> ds) {
  compute_weights_backward_impl(s, w, d_weights, ds);
}
void compute_weights_backward(ssb::SaliencyMap<const double> s, const ssb::Weights<double>& w,
                              ssb::WeightsGrad<double> d_weights, ssb::SaliencyMap<double> ds) {
  compute_weights_backward_impl(s, w, d_weights, ds);
}

}  // namespace mirror

std::string cuda_host_pointer_message() {
  const int n = 2, h = 6, w = 5, c = 3, hr = 3, wr = 2;
  std::vector<float> saliency(std::size_t(n) * h * w, 1.0f), x(std::size_t(n) * h * w * c, 1.0f);
  ssb::DeviceWeights<float> weights(n, h, w, hr, wr);
  DeviceSaliency<const float> ds(ssb::SaliencyMap<const float>(saliency.data(), n, h, w));
  ssb::compute_weights(ssb::cuda{}, ds.view, hr, wr, weights);
  Buffer xr(std::size_t(n) * hr * wr * c * sizeof(float));
  try {
    ssb::sample(ssb::cuda{}, weights,
                ssb::FeatureMap<const float>(x.data(), n, h, w, c, ssb::Layout::nhwc),
                ssb::FeatureMap<float>(xr.as<float>(), n, hr, wr, c, ssb::Layout::nhwc));
  } catch (const ssb::error& e) {
    finish();
    return e.what();
  }
  finish();
  return "";
}

BadSaliencyResult cuda_bad_saliency(float bad) {
  const int n = 3, h = 5, w = 6, hr = 3, wr = 4;
  // Good weights first, then a batch of other maps with one bad value in image 1: no image's
  // segments may change (every map differs between the two batches, so any write would show).
  std::vector<float> saliency(std::size_t(n) * h * w);
  for (std::size_t i = 0; i < saliency.size(); ++i) saliency[i] = 0.1f + float((i * 7919) % 23);
  ssb::DeviceWeights<float> weights(n, h, w, hr, wr);
  DeviceSaliency<const float> good(ssb::SaliencyMap<const float>(saliency.data(), n, h, w));
  ssb::compute_weights(ssb::cuda{}, good.view, hr, wr, weights);
  finish();
  std::vector<unsigned char> before(weights.workspace_bytes), after(weights.workspace_bytes);
  ok(cudaMemcpy(before.data(), weights.workspace, before.size(), cudaMemcpyDeviceToHost), "copy");
  for (std::size_t i = 0; i < saliency.size(); ++i) saliency[i] = 0.1f + float((i * 104729) % 31);
  saliency[(std::size_t(1) * h + 2) * w + 3] = bad;
  DeviceSaliency<const float> broken(ssb::SaliencyMap<const float>(saliency.data(), n, h, w));
  ssb::compute_weights(ssb::cuda{}, broken.view, hr, wr, weights);
  BadSaliencyResult result;
  try {
    ssb::check_weights_status(ssb::cuda{}, weights);
  } catch (const ssb::error& e) {
    result.message = e.what();
  }
  ok(cudaMemcpy(after.data(), weights.workspace, after.size(), cudaMemcpyDeviceToHost), "copy");
  // The segment arrays: from the y weights up to (not including) the y masses, and the same for x.
  const auto offset = [&](const void* p) {
    return std::size_t(static_cast<const unsigned char*>(p) -
                       static_cast<const unsigned char*>(weights.workspace));
  };
  const std::size_t ranges[2][2] = {{offset(weights.y.weight), offset(weights.y.mass)},
                                    {offset(weights.x.weight), offset(weights.x.mass)}};
  result.segments_untouched = true;
  for (const auto& r : ranges) {
    result.segments_untouched =
        result.segments_untouched &&
        std::memcmp(before.data() + r[0], after.data() + r[0], r[1] - r[0]) == 0;
  }
  return result;
}

namespace {

template <class S>
S round_to(float v);
template <>
ssb::gpu::half round_to<ssb::gpu::half>(float v) {
  return __float2half_rn(v);
}
template <>
ssb::gpu::bfloat16 round_to<ssb::gpu::bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

template <class S>
std::vector<S> rounded(const std::vector<float>& values, std::vector<float>& widened) {
  std::vector<S> out(values.size());
  widened.resize(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    out[i] = round_to<S>(values[i]);
    widened[i] = ssb::gpu::widen(out[i]);
  }
  return out;
}

template <class S>
std::vector<float> widened(const Buffer& b, std::size_t count) {
  std::vector<S> raw(count);
  b.download(raw.data());
  std::vector<float> out(count);
  for (std::size_t i = 0; i < count; ++i) out[i] = ssb::gpu::widen(raw[i]);
  return out;
}

template <class S>
ReducedRun reduced_run(const ReducedInputs& in, ssb::Layout layout) {
  ReducedRun run;
  run.rounded = in;
  const auto sal = rounded<S>(in.saliency, run.rounded.saliency);
  const auto x = rounded<S>(in.x, run.rounded.x);
  const auto y = rounded<S>(in.y, run.rounded.y);
  const auto d_xr = rounded<S>(in.d_xr, run.rounded.d_xr);
  const auto d_z = rounded<S>(in.d_z, run.rounded.d_z);
  const std::size_t big = std::size_t(in.n) * in.h * in.w * in.c;
  const std::size_t small = std::size_t(in.n) * in.hr * in.wr * in.c;
  Buffer b_sal(sal.size() * sizeof(S), sal.data()), b_x(big * sizeof(S), x.data()),
      b_y(small * sizeof(S), y.data()), b_dxr(small * sizeof(S), d_xr.data()),
      b_dz(big * sizeof(S), d_z.data()), b_xr(small * sizeof(S)), b_z(big * sizeof(S)),
      b_dx(big * sizeof(S)), b_dy(small * sizeof(S)), b_ds(sal.size() * sizeof(S));
  const auto map = [&](const Buffer& b, bool on_input) {
    return ssb::FeatureMap<S>(b.as<S>(), in.n, on_input ? in.h : in.hr, on_input ? in.w : in.wr,
                              in.c, layout);
  };
  ssb::DeviceWeights<float> w(in.n, in.h, in.w, in.hr, in.wr);
  const std::size_t grads = ssb::weights_grad_size(w);
  Buffer b_dw(grads * sizeof(float));
  ok(cudaMemset(b_dw.as<void>(), 0, grads * sizeof(float)), "cudaMemset");
  const auto dw = ssb::weights_grad_view(w, b_dw.as<float>(), grads);
  const ssb::cuda exec{};
  ssb::compute_weights(exec, ssb::SaliencyMap<const S>(b_sal.as<S>(), in.n, in.h, in.w), in.hr,
                       in.wr, w);
  ssb::sample(exec, w, ssb::FeatureMap<const S>(map(b_x, true)), map(b_xr, false));
  ssb::sample_inverse(exec, w, ssb::FeatureMap<const S>(map(b_y, false)), map(b_z, true));
  ssb::sample_backward(exec, w, ssb::FeatureMap<const S>(map(b_x, true)),
                       ssb::FeatureMap<const S>(map(b_dxr, false)), map(b_dx, true), dw);
  ssb::sample_inverse_backward(exec, w, ssb::FeatureMap<const S>(map(b_y, false)),
                               ssb::FeatureMap<const S>(map(b_dz, true)), map(b_dy, false), dw);
  ssb::compute_weights_backward(exec, ssb::SaliencyMap<const S>(b_sal.as<S>(), in.n, in.h, in.w), w,
                                dw, ssb::SaliencyMap<S>(b_ds.as<S>(), in.n, in.h, in.w));
  ssb::check_weights_status(exec, w);
  finish();
  run.xr = widened<S>(b_xr, small);
  run.z = widened<S>(b_z, big);
  run.d_x = widened<S>(b_dx, big);
  run.d_y = widened<S>(b_dy, small);
  run.d_saliency = widened<S>(b_ds, sal.size());
  run.d_weights.resize(grads);
  b_dw.download(run.d_weights.data());
  return run;
}

}  // namespace

ReducedRun cuda_reduced_run(Storage storage, const ReducedInputs& inputs, ssb::Layout layout) {
  return storage == Storage::half ? reduced_run<ssb::gpu::half>(inputs, layout)
                                  : reduced_run<ssb::gpu::bfloat16>(inputs, layout);
}

std::vector<PipelineRun> cuda_pipeline_twice(const ReducedInputs& in, ssb::Layout layout) {
  std::vector<PipelineRun> runs;
  for (int repeat = 0; repeat < 2; ++repeat) {
    const std::size_t big = std::size_t(in.n) * in.h * in.w * in.c;
    const std::size_t small = std::size_t(in.n) * in.hr * in.wr * in.c;
    Buffer b_sal(in.saliency.size() * sizeof(float), in.saliency.data()),
        b_x(big * sizeof(float), in.x.data()), b_y(small * sizeof(float), in.y.data()),
        b_dxr(small * sizeof(float), in.d_xr.data()), b_dz(big * sizeof(float), in.d_z.data()),
        b_xr(small * sizeof(float)), b_z(big * sizeof(float)), b_dx(big * sizeof(float)),
        b_dy(small * sizeof(float)), b_ds(in.saliency.size() * sizeof(float));
    const auto map = [&](const Buffer& b, bool on_input) {
      return ssb::FeatureMap<float>(b.as<float>(), in.n, on_input ? in.h : in.hr,
                                    on_input ? in.w : in.wr, in.c, layout);
    };
    ssb::DeviceWeights<float> w(in.n, in.h, in.w, in.hr, in.wr);
    const std::size_t grads = ssb::weights_grad_size(w);
    Buffer b_dw(grads * sizeof(float));
    cudaStream_t stream = nullptr;
    ok(cudaStreamCreate(&stream), "cudaStreamCreate");
    ok(cudaMemsetAsync(b_dw.as<void>(), 0, grads * sizeof(float), stream), "cudaMemset");
    const auto dw = ssb::weights_grad_view(w, b_dw.as<float>(), grads);
    const ssb::cuda exec{stream};
    const ssb::SaliencyMap<const float> sal(b_sal.as<float>(), in.n, in.h, in.w);
    ssb::compute_weights(exec, sal, in.hr, in.wr, w);
    ssb::sample(exec, w, ssb::FeatureMap<const float>(map(b_x, true)), map(b_xr, false));
    ssb::sample_inverse(exec, w, ssb::FeatureMap<const float>(map(b_y, false)), map(b_z, true));
    ssb::sample_backward(exec, w, ssb::FeatureMap<const float>(map(b_x, true)),
                         ssb::FeatureMap<const float>(map(b_dxr, false)), map(b_dx, true), dw);
    ssb::sample_inverse_backward(exec, w, ssb::FeatureMap<const float>(map(b_y, false)),
                                 ssb::FeatureMap<const float>(map(b_dz, true)), map(b_dy, false),
                                 dw);
    ssb::compute_weights_backward(exec, sal, w, dw,
                                  ssb::SaliencyMap<float>(b_ds.as<float>(), in.n, in.h, in.w));
    ok(cudaStreamSynchronize(stream), "the pipeline");
    ok(cudaStreamDestroy(stream), "cudaStreamDestroy");
    PipelineRun run;
    run.workspace.resize(w.workspace_bytes);
    ok(cudaMemcpy(run.workspace.data(), w.workspace, w.workspace_bytes, cudaMemcpyDeviceToHost),
       "copy");
    const auto get = [](const Buffer& b, std::size_t count) {
      std::vector<float> v(count);
      b.download(v.data());
      return v;
    };
    run.xr = get(b_xr, small);
    run.z = get(b_z, big);
    run.d_x = get(b_dx, big);
    run.d_y = get(b_dy, small);
    run.d_weights = get(b_dw, grads);
    run.d_saliency = get(b_ds, in.saliency.size());
    runs.push_back(std::move(run));
  }
  return runs;
}

}  // namespace test
