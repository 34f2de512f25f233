// Prints the paper's Table 1 (top left) as ssb_resnet.hpp counts it: parameters and multiply-adds
// of (SSB-)ResNet-D-50/101/152 at 224 x 224, the samplers counted as the paper does (two dense
// matmuls each) and as ssbnet's banded kernels run them; then the 28 x 28 networks.
#include <cstdio>
#include <string>

#include "ssb_resnet.hpp"

namespace {

struct Paper {
  double params_m, gmacs;  // 0: not in the paper
};

std::string paper_value(double value, const char* unit) {
  if (value <= 0) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, unit);
  return text;
}

void row(const std::string& name, const ssb_torch::SSBResNet& net, int64_t size, Paper paper) {
  const ssb_torch::Cost c = net->cost(size, size);
  std::printf("| %-18s | %3lld | %6.2f M | %6s | %6.3f G | %6s | %7.4f G | %7.4f G | %6.3f G |\n",
              name.c_str(), static_cast<long long>(size), double(net->parameter_count()) / 1e6,
              paper_value(paper.params_m, "M").c_str(), c.paper() / 1e9,
              paper_value(paper.gmacs, "G").c_str(), c.sampler_dense / 1e9, c.sampler_banded / 1e9,
              c.banded() / 1e9);
}

}  // namespace

int main() {
  using ssb_torch::Sampling;
  std::printf(
      "| model | input | params | paper | MACs, paper's count | paper | of which samplers, dense "
      "| samplers, banded | MACs, banded |\n|---|---|---|---|---|---|---|---|---|\n");
  const int depths[] = {50, 101, 152};
  const Paper resnet_d[] = {{25.6, 4.3}, {44.6, 8.0}, {60.2, 11.8}};
  const Paper ssb_resnet_d[] = {{25.6, 3.0}, {44.6, 4.3}, {60.3, 5.6}};
  for (int i = 0; i < 3; ++i) {
    const std::string depth = std::to_string(depths[i]);
    row("ResNet-D-" + depth, ssb_torch::ssb_resnet_d(depths[i], Sampling::none), 224, resnet_d[i]);
    row("SSB-ResNet-D-" + depth, ssb_torch::ssb_resnet_d(depths[i]), 224, ssb_resnet_d[i]);
  }
  for (const Sampling s : {Sampling::none, Sampling::uniform, Sampling::adaptive}) {
    row(std::string("28x28 ") + ssb_torch::to_string(s), ssb_torch::ssb_resnet_28(s), 28, {0, 0});
  }
}
