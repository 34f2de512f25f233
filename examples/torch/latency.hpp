// Inference latency of SSB-ResNet-D-50 against ResNet-D-50 (or other depths): batch images of
// size x size, eval mode, no gradients, channels_last, the same thread count for libtorch and the
// samplers. Warm-up runs, then `runs` timed runs of each network, alternating between them (so
// that a change of machine load hits both alike); the medians are reported. During the SSB
// network's timed runs ssb_torch::SamplerClock measures the time inside the samplers (weights,
// sampling, inverse sampling), reported as its median share of each run.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "ssb_resnet.hpp"
#include "train.hpp"

namespace ssb_train {

struct LatencyResult {
  double baseline_ms = 0, ssb_ms = 0;
  double sampler_share = 0;  // median over the SSB runs of (time in the samplers) / (run time)
  ssb_torch::Cost baseline_cost, ssb_cost;
  std::vector<double> baseline_runs_ms, ssb_runs_ms;
  double flops_ratio_paper() const { return ssb_cost.paper() / baseline_cost.paper(); }
  double flops_ratio_banded() const { return ssb_cost.banded() / baseline_cost.paper(); }
  double latency_ratio() const { return ssb_ms / baseline_ms; }
};

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

inline LatencyResult measure_latency(int threads, int depth = 50, int64_t batch = 8,
                                     int64_t size = 224, int warmup = 2, int runs = 5) {
  torch::NoGradGuard no_grad;
  // libtorch's intra-op threads too (a process that never sets them ran the convolutions about
  // twice as slowly here), restored on return.
  const int torch_threads = at::get_num_threads();
  at::set_num_threads(threads);
  struct Restore {
    int threads;
    ~Restore() { at::set_num_threads(threads); }
  } restore{torch_threads};
  torch::manual_seed(0);
  auto baseline = ssb_torch::ssb_resnet_d(depth, ssb_torch::Sampling::none, 1000, threads);
  auto ssb = ssb_torch::ssb_resnet_d(depth, ssb_torch::Sampling::adaptive, 1000, threads);
  for (auto* net : {&baseline, &ssb}) {
    to_channels_last(**net);
    (*net)->eval();
  }
  {
    // A trained saliency layer is not constant: give the BN scales a value, so the samplers
    // see a generic map (a constant one has fewer segments and would flatter their time).
    for (auto& block : ssb->blocks) {
      if (block->saliency_bn) block->saliency_bn->weight.fill_(1.0);
    }
  }
  const at::Tensor x =
      torch::randn({batch, 3, size, size}).contiguous(at::MemoryFormat::ChannelsLast);
  const auto time_ms = [&](ssb_torch::SSBResNet& net) {
    const auto start = std::chrono::steady_clock::now();
    const at::Tensor y = net->forward(x);
    (void)y.sum().item<float>();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  };
  for (int i = 0; i < warmup; ++i) {
    time_ms(baseline);
    time_ms(ssb);
  }
  LatencyResult result;
  std::vector<double> shares;
  for (int i = 0; i < runs; ++i) {
    result.baseline_runs_ms.push_back(time_ms(baseline));
    ssb_torch::SamplerClock::reset();
    ssb_torch::SamplerClock::enabled() = true;
    const double ms = time_ms(ssb);
    ssb_torch::SamplerClock::enabled() = false;
    result.ssb_runs_ms.push_back(ms);
    shares.push_back(double(ssb_torch::SamplerClock::nanoseconds().load()) / 1e6 / ms);
  }
  result.baseline_ms = median(result.baseline_runs_ms);
  result.ssb_ms = median(result.ssb_runs_ms);
  result.sampler_share = median(shares);
  result.baseline_cost = baseline->cost(size, size);
  result.ssb_cost = ssb->cost(size, size);
  return result;
}

}  // namespace ssb_train
