// ssbnet CUDA benchmarks (target ssb_bench_cuda, SSB_ENABLE_CUDA): every verb of ssb::cuda on the
// paper's shapes at GPU batch sizes (ImageNet and ResNet-RS batch 128, COCO batch 8), float32 NHWC
// and NCHW plus half NHWC, saliency = sigmoid of N(0,1) noise; the dense form with cuBLAS (the
// paper's two batched matmuls); and two bandwidth references measured in the same binary.
//
// Timing: CUDA events around each iteration, reported as manual time (Google Benchmark's
// UseManualTime), so host launch overhead only counts where it delays the GPU. With
// --ssb_calls=N (default 1) an iteration is N calls back to back, timed together and divided by
// N: the launches then overlap the calls before them, as in a framework's busy stream, and the
// figure is the GPU's time per call. Counters:
//   bytes_per_second  from the bytes model of the CPU suite (bench/traffic.hpp, problem.hpp)
// and, in bench/cuda_summary.py's table,
//   pct_of_copy       that rate / the rate of cudaMemcpyDeviceToDevice of the shape's input
//   pct_of_peak       that rate / the device's theoretical DRAM bandwidth (context: gpu_peak_GBps)
// The dense form: Xr = Hr*Wr * Gy X Gx^T with materialised Gy (N x Hr x H) and Gx (N x Wr x W):
// NHWC as the paper writes it for TensorFlow, one strided-batched GEMM over images for Gy X
// (X_n as an H x (W*C) matrix), then one pointer-batched GEMM over (image, output row) for the
// Gx product (cublasSgemmStridedBatched + cublasSgemmBatched).
// The pointer checks of the verbs (cudaPointerGetAttributes, about a microsecond each on the
// host) are left out here, so that the event timings of the small shapes measure the kernels.
#define SSB_GPU_NO_POINTER_CHECKS 1

#include <benchmark/benchmark.h>
#include <cublas_v2.h>

#include <ssb/cuda.cuh>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "shapes.hpp"
#include "traffic.hpp"

namespace {

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
void ok(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(what) + ": cuBLAS status " + std::to_string(int(s)));
  }
}

template <class T>
struct DeviceArray {
  T* data = nullptr;
  std::size_t count = 0;
  explicit DeviceArray(std::size_t n) : count(n) {
    ok(cudaMalloc(&data, n * sizeof(T)), "cudaMalloc");
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { cudaFree(data); }
  void upload(const std::vector<T>& host) {
    ok(cudaMemcpy(data, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
};

// The GPU batch of a bench shape: 128 for ImageNet and ResNet-RS, 8 for COCO.
ssb_bench::Shape gpu_shape(ssb_bench::Shape s) {
  s.batch = s.network.rfind("coco", 0) == 0 ? 8 : 128;
  return s;
}

// The data of one shape, made once and kept while its benchmarks run.
struct Problem {
  ssb_bench::Shape shape;
  std::vector<float> host_saliency;
  DeviceArray<float> saliency, x, xr, y, z, d_x, d_y, d_saliency, d_weights_buffer, ones;
  DeviceArray<ssb::gpu::half> xh, xrh, yh, zh;
  ssb::DeviceWeights<float> weights;
  ssb::WeightsGrad<float> d_weights;

  explicit Problem(const ssb_bench::Shape& s)
      : shape(s),
        host_saliency(std::size_t(s.batch) * s.height * s.width),
        saliency(host_saliency.size()),
        x(std::size_t(s.input_elements())),
        xr(std::size_t(s.sampled_elements())),
        y(std::size_t(s.sampled_elements())),
        z(std::size_t(s.input_elements())),
        d_x(std::size_t(s.input_elements())),
        d_y(std::size_t(s.sampled_elements())),
        d_saliency(host_saliency.size()),
        d_weights_buffer(std::size_t(s.batch) * (s.height + s.out_h - 1 + s.width + s.out_w - 1)),
        ones(1),
        xh(std::size_t(s.input_elements())),
        xrh(std::size_t(s.sampled_elements())),
        yh(std::size_t(s.sampled_elements())),
        zh(std::size_t(s.input_elements())),
        weights(s.batch, s.height, s.width, s.out_h, s.out_w) {
    std::mt19937_64 rng(20221023);
    std::normal_distribution<double> normal(0.0, 1.0);
    for (auto& v : host_saliency) v = float(1.0 / (1.0 + std::exp(-normal(rng))));
    saliency.upload(host_saliency);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> values(x.count);
    for (auto& v : values) v = u(rng);
    x.upload(values);
    z.upload(values);
    values.resize(y.count);
    for (auto& v : values) v = u(rng);
    y.upload(values);
    xr.upload(values);
    std::vector<ssb::gpu::half> half_values(x.count);
    for (std::size_t i = 0; i < half_values.size(); ++i)
      half_values[i] = __float2half_rn(float(i % 7) / 7);
    ok(cudaMemcpy(xh.data, half_values.data(), xh.count * 2, cudaMemcpyHostToDevice), "upload");
    ok(cudaMemcpy(yh.data, half_values.data(), yh.count * 2, cudaMemcpyHostToDevice), "upload");
    d_weights = ssb::weights_grad_view(weights, d_weights_buffer.data, d_weights_buffer.count);
    ok(cudaMemset(d_weights_buffer.data, 0, d_weights_buffer.count * sizeof(float)), "memset");
    ssb::compute_weights(ssb::cuda{}, sal(), s.out_h, s.out_w, weights);
    ssb::check_weights_status(ssb::cuda{}, weights);
  }
  ssb::SaliencyMap<const float> sal() const {
    return {saliency.data, shape.batch, shape.height, shape.width};
  }
  template <class T>
  ssb::FeatureMap<T> on_input(T* data, ssb::Layout layout) const {
    return {data, shape.batch, shape.height, shape.width, shape.channels, layout};
  }
  template <class T>
  ssb::FeatureMap<T> on_sampled(T* data, ssb::Layout layout) const {
    return {data, shape.batch, shape.out_h, shape.out_w, shape.channels, layout};
  }
};

Problem& problem_for(const ssb_bench::Shape& s) {
  static std::unique_ptr<Problem> current;
  if (!current || current->shape.name() != s.name()) {
    current.reset();
    current = std::make_unique<Problem>(s);
  }
  return *current;
}

int g_calls = 1;  // calls per timed iteration (--ssb_calls)

// Times `body` with CUDA events per iteration of g_calls calls.
template <class F>
void time_gpu(benchmark::State& state, F&& body) {
  cudaEvent_t start, stop;
  ok(cudaEventCreate(&start), "event");
  ok(cudaEventCreate(&stop), "event");
  body();  // warm-up
  ok(cudaDeviceSynchronize(), "warm-up");
  for (auto _ : state) {
    ok(cudaEventRecord(start), "event");
    for (int call = 0; call < g_calls; ++call) body();
    ok(cudaEventRecord(stop), "event");
    ok(cudaEventSynchronize(stop), "event");
    float ms = 0;
    ok(cudaEventElapsedTime(&ms, start, stop), "event");
    state.SetIterationTime(double(ms) / 1e3 / g_calls);
  }
  ok(cudaEventDestroy(start), "event");
  ok(cudaEventDestroy(stop), "event");
}

double g_peak_bytes_per_s = 0;  // theoretical DRAM bandwidth of device 0 (0: unknown)

// pct_of_copy and pct_of_peak are computed by bench/cuda_summary.py from bytes_per_second and the
// bw_copy row of the same shape (or the context's gpu_peak_GBps).
void set_rate(benchmark::State& state, double bytes) {
  state.counters["bytes_per_second"] =
      benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["MB_per_call"] = bytes / 1e6;
}

// What a benchmark times: an ssb verb on float maps (bytes: ssb_bench::traffic, the CPU suite's
// model), on half maps (the same model with 2-byte elements), the device-to-device copy of the
// shape's input, or the cuBLAS dense form.
enum class Kind { verb, half, copy, dense, empty };
struct Run {
  Kind kind;
  ssb_bench::Verb verb;  // for Kind::verb and Kind::half
  ssb::Layout layout;
};
std::string family(const Run& run) {
  switch (run.kind) {
    case Kind::copy:
      return "bw_copy";
    case Kind::empty:
      return "empty_kernel";
    case Kind::dense:
      return "dense_cublas_sample";
    case Kind::half:
      return std::string(ssb_bench::to_string(run.verb)) + "_half";
    case Kind::verb:
      break;
  }
  return ssb_bench::to_string(run.verb);
}

__global__ void empty_kernel() {}

// The paper's dense form with cuBLAS, NHWC (file comment).
struct DenseCublas {
  cublasHandle_t handle = nullptr;
  DeviceArray<float> gy, gx, t;
  DeviceArray<const float*> a2;
  DeviceArray<const float*> b2;
  DeviceArray<float*> c2;
  DenseCublas(const Problem& p)
      : gy(std::size_t(p.shape.batch) * p.shape.out_h * p.shape.height),
        gx(std::size_t(p.shape.batch) * p.shape.out_w * p.shape.width),
        t(std::size_t(p.shape.batch) * p.shape.out_h * p.shape.width * p.shape.channels),
        a2(std::size_t(p.shape.batch) * p.shape.out_h),
        b2(std::size_t(p.shape.batch) * p.shape.out_h),
        c2(std::size_t(p.shape.batch) * p.shape.out_h) {
    const auto& s = p.shape;
    ok(cublasCreate(&handle), "cublasCreate");
    const auto d = ssb::dense::weights(
        ssb::SaliencyMap<const float>(p.host_saliency.data(), s.batch, s.height, s.width), s.out_h,
        s.out_w);
    gy.upload(std::vector<float>(d.gy.begin(), d.gy.end()));
    gx.upload(std::vector<float>(d.gx.begin(), d.gx.end()));
    std::vector<const float*> a(a2.count), b(b2.count);
    std::vector<float*> c(c2.count);
    for (int n = 0; n < s.batch; ++n) {
      for (int i = 0; i < s.out_h; ++i) {
        const std::size_t at = std::size_t(n) * s.out_h + i;
        a[at] = t.data + at * std::size_t(s.width) * s.channels;
        b[at] = gx.data + std::size_t(n) * s.out_w * s.width;
        c[at] = p.xr.data + at * std::size_t(s.out_w) * s.channels;
      }
    }
    ok(cudaMemcpy(a2.data, a.data(), a.size() * sizeof(a[0]), cudaMemcpyHostToDevice), "upload");
    ok(cudaMemcpy(b2.data, b.data(), b.size() * sizeof(b[0]), cudaMemcpyHostToDevice), "upload");
    ok(cudaMemcpy(c2.data, c.data(), c.size() * sizeof(c[0]), cudaMemcpyHostToDevice), "upload");
  }
  ~DenseCublas() { cublasDestroy(handle); }
  void run(const Problem& p) {
    const auto& s = p.shape;
    const float scale = float(s.out_h) * float(s.out_w), zero = 0.0f, one = 1.0f;
    const int wc = s.width * s.channels;
    // T_n^T (WC x Hr) = X_n^T (WC x H) * Gy_n^T (H x Hr), column-major views of row-major data.
    ok(cublasSgemmStridedBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, wc, s.out_h, s.height, &scale,
                                 p.x.data, wc, std::int64_t(s.height) * wc, gy.data, s.height,
                                 std::int64_t(s.out_h) * s.height, &zero, t.data, wc,
                                 std::int64_t(s.out_h) * wc, s.batch),
       "GEMM 1");
    // Xr[n,i]^T (C x Wr) = T[n,i]^T (C x W) * Gx_n^T (W x Wr).
    ok(cublasSgemmBatched(handle, CUBLAS_OP_N, CUBLAS_OP_N, s.channels, s.out_w, s.width, &one,
                          a2.data, s.channels, b2.data, s.width, &zero, c2.data, s.channels,
                          s.batch * s.out_h),
       "GEMM 2");
  }
};

void run_benchmark(benchmark::State& state, const ssb_bench::Shape& shape, const Run& run) {
  using ssb_bench::Verb;
  Problem& p = problem_for(shape);
  const auto& s = p.shape;
  const ssb::cuda exec{};
  const ssb::Layout layout = run.layout;
  const double E = double(s.input_elements()), Er = double(s.sampled_elements());
  double bytes = 0;
  if (run.kind == Kind::empty) {
    // The floor of every timing here: one launch of a kernel that does nothing, event-timed the
    // same way (host launch cost included where it delays the GPU).
    time_gpu(state, [&] {
      empty_kernel<<<1, 32>>>();
      ok(cudaGetLastError(), "empty kernel");
    });
  } else if (run.kind == Kind::copy) {
    bytes = 2 * 4 * E;
    time_gpu(state, [&] {
      ok(cudaMemcpyAsync(p.z.data, p.x.data, std::size_t(E) * 4, cudaMemcpyDeviceToDevice), "copy");
    });
  } else if (run.kind == Kind::dense) {
    DenseCublas dense(p);
    bytes = 4 * (E + Er);
    time_gpu(state, [&] { dense.run(p); });
  } else if (run.kind == Kind::half) {
    bytes = ssb_bench::traffic(run.verb, s, 2).total();
    if (run.verb == Verb::sample) {
      time_gpu(state, [&] {
        ssb::sample(exec, p.weights, p.on_input<const ssb::gpu::half>(p.xh.data, layout),
                    p.on_sampled(p.xrh.data, layout));
      });
    } else {
      time_gpu(state, [&] {
        ssb::sample_inverse(exec, p.weights, p.on_sampled<const ssb::gpu::half>(p.yh.data, layout),
                            p.on_input(p.zh.data, layout));
      });
    }
  } else {
    bytes = ssb_bench::traffic(run.verb, s).total();
    switch (run.verb) {
      case Verb::compute_weights:
        time_gpu(state, [&] { ssb::compute_weights(exec, p.sal(), s.out_h, s.out_w, p.weights); });
        break;
      case Verb::sample:
        time_gpu(state, [&] {
          ssb::sample(exec, p.weights, p.on_input<const float>(p.x.data, layout),
                      p.on_sampled(p.xr.data, layout));
        });
        break;
      case Verb::sample_inverse:
        time_gpu(state, [&] {
          ssb::sample_inverse(exec, p.weights, p.on_sampled<const float>(p.y.data, layout),
                              p.on_input(p.z.data, layout));
        });
        break;
      case Verb::sample_backward:
        time_gpu(state, [&] {
          ssb::sample_backward(exec, p.weights, p.on_input<const float>(p.x.data, layout),
                               p.on_sampled<const float>(p.xr.data, layout),
                               p.on_input(p.d_x.data, layout), p.d_weights);
        });
        break;
      case Verb::sample_inverse_backward:
        time_gpu(state, [&] {
          ssb::sample_inverse_backward(exec, p.weights, p.on_sampled<const float>(p.y.data, layout),
                                       p.on_input<const float>(p.z.data, layout),
                                       p.on_sampled(p.d_y.data, layout), p.d_weights);
        });
        break;
      case Verb::compute_weights_backward:
        time_gpu(state, [&] {
          ssb::compute_weights_backward(
              exec, p.sal(), p.weights, p.d_weights,
              ssb::SaliencyMap<float>(p.d_saliency.data, s.batch, s.height, s.width));
        });
        break;
      default:
        throw std::logic_error(std::string("ssb_bench_cuda: no GPU benchmark of ") +
                               ssb_bench::to_string(run.verb));
    }
  }
  set_rate(state, bytes);
}

void register_all() {
  using ssb_bench::Verb;
  const auto nhwc = ssb::Layout::nhwc, nchw = ssb::Layout::nchw;
  const std::vector<Run> runs = {{Kind::empty, Verb::sample, nhwc},
                                 {Kind::copy, Verb::sample, nhwc},
                                 {Kind::verb, Verb::compute_weights, nhwc},
                                 {Kind::verb, Verb::sample, nhwc},
                                 {Kind::verb, Verb::sample_inverse, nhwc},
                                 {Kind::verb, Verb::sample_backward, nhwc},
                                 {Kind::verb, Verb::sample_inverse_backward, nhwc},
                                 {Kind::verb, Verb::compute_weights_backward, nhwc},
                                 {Kind::verb, Verb::sample, nchw},
                                 {Kind::verb, Verb::sample_inverse, nchw},
                                 {Kind::verb, Verb::sample_backward, nchw},
                                 {Kind::half, Verb::sample, nhwc},
                                 {Kind::half, Verb::sample_inverse, nhwc},
                                 {Kind::dense, Verb::sample, nhwc}};
  for (const auto& base : ssb_bench::shapes()) {
    const ssb_bench::Shape shape = gpu_shape(base);
    for (const auto& run : runs) {
      const std::string name =
          family(run) + "/cuda/" + ssb::to_string(run.layout) + "/sigmoid/" + shape.name();
      benchmark::RegisterBenchmark(
          name.c_str(), [shape, run](benchmark::State& state) { run_benchmark(state, shape, run); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // --ssb_calls=N, taken out before Google Benchmark reads the rest.
  int kept = 1;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg.rfind("--ssb_calls=", 0) == 0) {
      g_calls = std::atoi(arg.c_str() + 12);
      if (g_calls < 1) {
        std::fprintf(stderr, "ssb_bench_cuda: --ssb_calls wants a count >= 1\n");
        return 2;
      }
    } else {
      argv[kept++] = argv[a];
    }
  }
  argc = kept;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("skipped: no CUDA device\n");
    return 77;
  }
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  int clock_khz = 0, bus_bits = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, 0) == cudaSuccess &&
      cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0) == cudaSuccess) {
    g_peak_bytes_per_s = 2.0 * double(clock_khz) * 1e3 * double(bus_bits) / 8.0;
  }
  (void)cudaGetLastError();
  // Keep the stream-ordered pool's memory between calls (as a framework's caching allocator
  // does), so that the weight gradients' temporary is not returned to the driver at every sync.
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, 0) == cudaSuccess) {
    std::uint64_t keep = ~std::uint64_t(0);
    (void)cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
  }
  (void)cudaGetLastError();
  benchmark::AddCustomContext("gpu", prop.name);
  benchmark::AddCustomContext("gpu_peak_GBps", std::to_string(g_peak_bytes_per_s / 1e9));
  benchmark::AddCustomContext("cuda_runtime", std::to_string(CUDART_VERSION));
  benchmark::AddCustomContext("calls_per_timing", std::to_string(g_calls));
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
