// SSB-ResNet on libtorch (SSBNet paper, section 3 and Fig. 2): the SSB bottleneck block, the
// network builders, and a multiply-add and parameter counter.
//
//     auto net = ssb_torch::ssb_resnet_d(50);                                  // SSB-ResNet-D-50
//     auto base = ssb_torch::ssb_resnet_d(50, ssb_torch::Sampling::none);      // ResNet-D-50
//     auto small = ssb_torch::ssb_resnet_28(ssb_torch::Sampling::adaptive);     // 28x28 grey input
//     ssb_torch::Cost cost = net->cost(224, 224);
//
// SSB layer (Fig. 2, middle): the saliency map s = sigmoid(BN(conv1x1(x))) of the block input x
// (one filter, BN scale initialised to 0 so training starts from uniform sampling), the weights of
// s for Hr x Wr samples, xr = sample(x), the unchanged bottleneck branch (1x1, 3x3, 1x1) on xr,
// z = sample_inverse(branch(xr)), out = relu(z + x). Only blocks with an identity shortcut get
// samplers (never the first block of a group), only in the groups given a size.
// Sampling::uniform is the section 5.1 ablation: the same samplers on a constant saliency map.
#pragma once

#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ssb_torch.hpp"

namespace ssb_torch {

enum class Sampling {
  none,      // the baseline network: no samplers
  adaptive,  // SSB layers with learned saliency
  uniform    // SSB layers with a constant saliency map (section 5.1)
};

inline const char* to_string(Sampling sampling) {
  switch (sampling) {
    case Sampling::none:
      return "baseline";
    case Sampling::adaptive:
      return "adaptive";
    case Sampling::uniform:
      return "uniform";
  }
  return "?";
}

// Multiply-adds of one forward pass of one image. Counted: convolutions, the classifier and the
// samplers; not counted (as usual, and as the paper's totals imply): batch norm, activations,
// pooling, additions and the saliency normalisation.
struct Cost {
  double macs = 0;            // convolutions (saliency convolutions included) and the classifier
  double sampler_dense = 0;   // samplers as the paper counts them: two dense matmuls each
  double sampler_banded = 0;  // samplers as ssbnet's banded kernels run them
  double paper() const { return macs + sampler_dense; }
  double banded() const { return macs + sampler_banded; }
  Cost& operator+=(const Cost& other) {
    macs += other.macs;
    sampler_dense += other.sampler_dense;
    sampler_banded += other.sampler_banded;
    return *this;
  }
};

// Channels and spatial size of one image's feature map.
struct Shape {
  int64_t channels, height, width;
};

namespace detail {

// Output size of a convolution or pooling window along one axis (PyTorch's rule, ceil_mode
// included: the last window must start inside the input or its left padding).
inline int64_t window_output(int64_t in, int64_t kernel, int64_t stride, int64_t padding,
                             int64_t dilation = 1, bool ceil_mode = false) {
  const int64_t span = in + 2 * padding - dilation * (kernel - 1) - 1;
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + padding) --out;
  return out;
}

// `shape` after a pooling layer (MaxPool2dOptions or AvgPool2dOptions).
template <class Options>
Shape pooled(const Options& o, const Shape& shape) {
  const auto out = [&](int64_t in, int axis) {
    return window_output(in, (*o.kernel_size())[axis], (*o.stride())[axis], (*o.padding())[axis], 1,
                         o.ceil_mode());
  };
  return Shape{shape.channels, out(shape.height, 0), out(shape.width, 1)};
}

// Multiply-adds of `conv` on `shape`; `shape` becomes its output's.
inline double conv_macs(const torch::nn::Conv2dImpl& conv, Shape& shape) {
  const auto& o = conv.options;
  const auto* padding = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  TORCH_CHECK(padding != nullptr, "ssb_torch::Cost: only explicit convolution padding is counted");
  TORCH_CHECK(shape.channels == o.in_channels(), "ssb_torch::Cost: a convolution expects ",
              o.in_channels(), " channels, the map has ", shape.channels);
  const auto& kernel = *o.kernel_size();
  const auto out = [&](int64_t in, int axis) {
    return window_output(in, kernel[axis], (*o.stride())[axis], (**padding)[axis],
                         (*o.dilation())[axis]);
  };
  shape = Shape{o.out_channels(), out(shape.height, 0), out(shape.width, 1)};
  return double(o.out_channels()) * double(o.in_channels() / o.groups()) *
         double(kernel[0] * kernel[1]) * double(shape.height * shape.width);
}

// One sampling (in -> out) and its inverse, per channel. Dense, as the paper counts it (section
// 3.2: "two batch matrix multiplications", y axis first): sample = (Hr x H)(H x W) then
// (Hr x W)(W x Wr), inverse = (H x Hr)(Hr x Wr) then (H x Wr)(Wr x W). Banded, as the gathers of
// ssbnet's kernels.hpp run: a destination pixel with ny y segments and nx x segments costs
// nx*(ny + 1) + 1 (inner y sums, the x sum, the scale), which adds up to Ky*Kx + Hd*Kx + Hd*Wd
// over the Hd x Wd destination grid, with the segment bounds Ky = H+Hr-1, Kx = W+Wr-1 (reached
// by a generic learned map; fewer when breakpoints coincide).
inline void sampler_macs(Shape in, int64_t out_h, int64_t out_w, Cost& cost) {
  const double C = double(in.channels), H = double(in.height), W = double(in.width);
  const double Hr = double(out_h), Wr = double(out_w);
  cost.sampler_dense += C * (Hr * H * W + Hr * W * Wr) + C * (H * Hr * Wr + H * Wr * W);
  const double Ky = H + Hr - 1, Kx = W + Wr - 1;
  cost.sampler_banded += C * (Ky * Kx + Hr * Kx + Hr * Wr) + C * (Ky * Kx + H * Kx + H * W);
}

// Inference form of sigmoid(BN(conv1x1(x))) with one filter: the BN's running statistics are
// folded into the filter, a = gamma / sqrt(var + eps), and
// s[p] = sigmoid(sum_c a * w[c] * x[p, c] + beta - a * mean), one dot product per pixel p of a
// channels_last CPU map. In SSB-ResNet-D-50 inference (batch 8, 2 threads) its ten maps took
// 1.6 ms (2.0 ms without -march=native), against 4.1 ms through the convolution, the BN and the
// sigmoid.
inline at::Tensor folded_saliency(const at::Tensor& x, const at::Tensor& filter,
                                  const torch::nn::BatchNorm2dImpl& bn) {
  torch::NoGradGuard no_grad;  // the result is not differentiable: it is for inference only
  const int64_t channels = x.size(1), pixels = x.size(0) * x.size(2) * x.size(3);
  TORCH_CHECK(filter.numel() == channels, "ssb_torch: the saliency filter has ", filter.numel(),
              " weights for ", channels, " channels");
  const at::Tensor scale = bn.weight * (bn.running_var + bn.options.eps()).rsqrt();
  const at::Tensor w = (filter.reshape({channels}) * scale).contiguous();
  const double shift = (bn.bias - bn.running_mean * scale).item<double>();
  at::Tensor s = at::empty({x.size(0), 1, x.size(2), x.size(3)}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ssb_torch::folded_saliency", [&] {
    const scalar_t* in = x.data_ptr<scalar_t>();  // channels_last: pixel p's channels at p * C
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* out = s.data_ptr<scalar_t>();
    at::parallel_for(0, pixels, 16, [&](int64_t begin, int64_t end) {
      constexpr int lanes = 16;  // independent sums, which the compiler keeps in vector registers
      for (int64_t p = begin; p < end; ++p) {
        const scalar_t* row = in + p * channels;
        scalar_t part[lanes] = {};
        int64_t c = 0;
        for (; c + lanes <= channels; c += lanes) {
          for (int l = 0; l < lanes; ++l) part[l] += wp[c + l] * row[c + l];
        }
        scalar_t sum = scalar_t(shift);
        for (; c < channels; ++c) sum += wp[c] * row[c];
        for (int l = 0; l < lanes; ++l) sum += part[l];
        out[p] = scalar_t(1) / (scalar_t(1) + std::exp(-sum));
      }
    });
  });
  return s;
}

inline torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

}  // namespace detail

struct BottleneckOptions {
  int64_t in_channels = 64;
  int64_t mid_channels = 64;  // the 3x3 conv's width; the block outputs mid * expansion
  int64_t expansion = 4;
  int64_t stride = 1;       // on the 3x3 conv (ResNet-D)
  int64_t sample_size = 0;  // Hr = Wr of the samplers; 0: none
  Sampling sampling = Sampling::adaptive;
  int threads = 0;  // OpenMP threads of the samplers; 0: at::get_num_threads()
};

// A ResNet-D bottleneck block; with samplers, the SSB layer of the file comment.
class BottleneckImpl : public torch::nn::Module {
 public:
  explicit BottleneckImpl(const BottleneckOptions& options) : options_(options) {
    const int64_t in = options.in_channels, mid = options.mid_channels,
                  out = options.mid_channels * options.expansion;
    conv1 = register_module("conv1", detail::conv(in, mid, 1));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(mid));
    conv2 = register_module("conv2", detail::conv(mid, mid, 3, options.stride));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(mid));
    conv3 = register_module("conv3", detail::conv(mid, out, 1));
    bn3 = register_module("bn3", torch::nn::BatchNorm2d(out));
    if (options.stride != 1 || in != out) {
      // ResNet-D's shortcut: average pooling does the striding, so the 1x1 conv sees every pixel.
      if (options.stride != 1) {
        shortcut_pool = register_module(
            "shortcut_pool", torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(options.stride)
                                                      .stride(options.stride)
                                                      .ceil_mode(true)
                                                      .count_include_pad(false)));
      }
      shortcut_conv = register_module("shortcut_conv", detail::conv(in, out, 1));
      shortcut_bn = register_module("shortcut_bn", torch::nn::BatchNorm2d(out));
    }
    TORCH_CHECK(!sampled() || !shortcut_conv,
                "ssb_torch::Bottleneck: samplers need an identity shortcut (stride 1, "
                "in_channels == mid_channels * expansion)");
    if (sampled() && options.sampling == Sampling::adaptive) {
      saliency_conv = register_module("saliency_conv", detail::conv(in, 1, 1));
      saliency_bn = register_module("saliency_bn", torch::nn::BatchNorm2d(1));
      // Section 3.2: the BN scale starts at 0, so every map starts constant (uniform sampling).
      torch::NoGradGuard no_grad;
      saliency_bn->weight.zero_();
    }
  }

  bool sampled() const { return options_.sample_size > 0 && options_.sampling != Sampling::none; }
  const BottleneckOptions& options() const { return options_; }

  // The saliency map of the block input x (N x 1 x H x W): sigmoid(BN(conv1x1(x))), or ones for
  // Sampling::uniform. Only for sampled blocks. For inference (eval mode, no gradient wanted, x
  // channels_last) the BN's running statistics are folded into the filter and the map is one dot
  // product per pixel (detail::folded_saliency): the same function, rounded differently.
  at::Tensor saliency(const at::Tensor& x) {
    TORCH_CHECK(sampled(), "ssb_torch::Bottleneck::saliency: this block has no samplers");
    if (options_.sampling == Sampling::uniform) {
      return at::ones({x.size(0), 1, x.size(2), x.size(3)}, x.options());
    }
    const bool wants_grad =
        torch::GradMode::is_enabled() &&
        (x.requires_grad() || saliency_conv->weight.requires_grad() ||
         saliency_bn->weight.requires_grad() || saliency_bn->bias.requires_grad());
    if (!is_training() && !wants_grad && saliency_bn->options.track_running_stats() &&
        x.device().is_cpu() && x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
        x.scalar_type() == saliency_conv->weight.scalar_type()) {
      return detail::folded_saliency(x, saliency_conv->weight, *saliency_bn);
    }
    return torch::sigmoid(saliency_bn(saliency_conv(x)));
  }

  at::Tensor forward(const at::Tensor& x) {
    if (sampled()) {
      const SamplerWeights w = compute_weights(saliency(x), options_.sample_size,
                                               options_.sample_size, options_.threads);
      // The shortcut add and the ReLU in place on the fresh inverse-sampled map (as torchvision's
      // `out += identity`): no new full-size tensors. Neither backward needs the overwritten map.
      return sample_inverse(w, branch(sample(w, x))).add_(x).relu_();
    }
    at::Tensor shortcut = x;
    if (shortcut_pool) shortcut = shortcut_pool(shortcut);
    if (shortcut_conv) shortcut = shortcut_bn(shortcut_conv(shortcut));
    return branch(x).add_(shortcut).relu_();
  }

  // The residual branch: 1x1, 3x3, 1x1 with BN, ReLU between.
  at::Tensor branch(const at::Tensor& x) {
    at::Tensor h = torch::relu(bn1(conv1(x)));
    h = torch::relu(bn2(conv2(h)));
    return bn3(conv3(h));
  }

  // Multiply-adds on an input of `shape`, which becomes the output's.
  Cost cost(Shape& shape) const {
    Cost cost;
    const Shape in = shape;
    if (sampled()) {
      if (saliency_conv) {
        Shape s = in;
        cost.macs += detail::conv_macs(*saliency_conv, s);
      }
      detail::sampler_macs(in, options_.sample_size, options_.sample_size, cost);
      shape = {in.channels, options_.sample_size, options_.sample_size};
    }
    cost.macs += detail::conv_macs(*conv1, shape);
    cost.macs += detail::conv_macs(*conv2, shape);
    cost.macs += detail::conv_macs(*conv3, shape);
    if (shortcut_conv) {
      Shape s = in;
      if (shortcut_pool) s = detail::pooled(shortcut_pool->options, s);
      cost.macs += detail::conv_macs(*shortcut_conv, s);
    }
    if (sampled()) shape = {shape.channels, in.height, in.width};
    return cost;
  }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::AvgPool2d shortcut_pool{nullptr};
  torch::nn::Conv2d shortcut_conv{nullptr};
  torch::nn::BatchNorm2d shortcut_bn{nullptr};
  torch::nn::Conv2d saliency_conv{nullptr};
  torch::nn::BatchNorm2d saliency_bn{nullptr};

 private:
  BottleneckOptions options_;
};
TORCH_MODULE(Bottleneck);

enum class Stem {
  deep,  // ResNet-D: 3x3 convs 32, 32, 64 (the first at stride 2), 3x3 max pool at stride 2
  small  // one 3x3 conv at stride 1 (CIFAR-style, for small inputs)
};

struct ResNetOptions {
  std::vector<int64_t> blocks;        // blocks per group
  std::vector<int64_t> widths;        // mid channels per group; groups output widths * expansion
  std::vector<int64_t> sample_sizes;  // per group, 0 for none; sampled: every block but the first
  int64_t expansion = 4;
  Stem stem = Stem::deep;
  int64_t stem_width = 64;  // channels out of the stem
  int64_t in_channels = 3;
  int64_t classes = 1000;
  Sampling sampling = Sampling::adaptive;
  int threads = 0;  // OpenMP threads of the samplers; 0: at::get_num_threads()
};

// (SSB-)ResNet with bottleneck blocks: stem, groups (the first at stride 1, the others at stride
// 2), global average pooling, linear classifier.
class SSBResNetImpl : public torch::nn::Module {
 public:
  explicit SSBResNetImpl(const ResNetOptions& options) : options_(options) {
    TORCH_CHECK(options.blocks.size() == options.widths.size() &&
                    options.blocks.size() == options.sample_sizes.size(),
                "ssb_torch::SSBResNet: blocks, widths and sample_sizes need one entry per group");
    const int64_t stem_width = options.stem_width;
    if (options.stem == Stem::deep) {
      const int64_t half = stem_width / 2;
      stem = register_module(
          "stem", torch::nn::Sequential(
                      detail::conv(options.in_channels, half, 3, 2), torch::nn::BatchNorm2d(half),
                      torch::nn::ReLU(), detail::conv(half, half, 3), torch::nn::BatchNorm2d(half),
                      torch::nn::ReLU(), detail::conv(half, stem_width, 3),
                      torch::nn::BatchNorm2d(stem_width), torch::nn::ReLU(),
                      torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1))));
    } else {
      stem = register_module(
          "stem", torch::nn::Sequential(detail::conv(options.in_channels, stem_width, 3),
                                        torch::nn::BatchNorm2d(stem_width), torch::nn::ReLU()));
    }
    int64_t channels = stem_width;
    for (size_t g = 0; g < options.blocks.size(); ++g) {
      for (int64_t b = 0; b < options.blocks[g]; ++b) {
        BottleneckOptions o;
        o.in_channels = channels;
        o.mid_channels = options.widths[g];
        o.expansion = options.expansion;
        o.stride = b == 0 && g > 0 ? 2 : 1;
        o.sample_size = b == 0 ? 0 : options.sample_sizes[g];
        o.sampling = options.sampling;
        o.threads = options.threads;
        blocks.push_back(register_module(
            "group" + std::to_string(g + 1) + "_block" + std::to_string(b + 1), Bottleneck(o)));
        channels = o.mid_channels * o.expansion;
      }
    }
    fc = register_module("fc", torch::nn::Linear(channels, options.classes));
    for (auto& m : modules(/*include_self=*/false)) {
      if (auto* c = m->as<torch::nn::Conv2dImpl>()) {
        torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
      }
    }
  }

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = stem->forward(x);
    for (auto& block : blocks) h = block->forward(h);
    return fc(torch::flatten(torch::adaptive_avg_pool2d(h, {1, 1}), 1));
  }

  // Multiply-adds of one image of height x width.
  Cost cost(int64_t height, int64_t width) const {
    Cost cost;
    Shape shape{options_.in_channels, height, width};
    for (const auto& m : stem->children()) {
      if (const auto* c = m->as<torch::nn::Conv2dImpl>()) cost.macs += detail::conv_macs(*c, shape);
      if (const auto* p = m->as<torch::nn::MaxPool2dImpl>()) {
        shape = detail::pooled(p->options, shape);
      }
    }
    for (const auto& block : blocks) cost += block->cost(shape);
    TORCH_CHECK(shape.channels == fc->options.in_features(),
                "ssb_torch::Cost: the classifier "
                "expects ",
                fc->options.in_features(), " features, the map has ", shape.channels);
    cost.macs += double(fc->options.in_features()) * double(fc->options.out_features());
    return cost;
  }

  int64_t parameter_count() const {
    int64_t count = 0;
    for (const auto& p : parameters()) count += p.numel();
    return count;
  }

  const ResNetOptions& options() const { return options_; }

  torch::nn::Sequential stem{nullptr};
  std::vector<Bottleneck> blocks;
  torch::nn::Linear fc{nullptr};

 private:
  ResNetOptions options_;
};
TORCH_MODULE(SSBResNet);

// ResNet-D-50/101/152 (Sampling::none) or SSB-ResNet-D (the paper's Table 1) for 224 x 224
// input: samplers of sizes (16, 8, 4) on the last three groups (28, 14 and 7 pixel maps).
inline SSBResNet ssb_resnet_d(int depth, Sampling sampling = Sampling::adaptive,
                              int64_t classes = 1000, int threads = 0) {
  ResNetOptions o;
  switch (depth) {
    case 50:
      o.blocks = {3, 4, 6, 3};
      break;
    case 101:
      o.blocks = {3, 4, 23, 3};
      break;
    case 152:
      o.blocks = {3, 8, 36, 3};
      break;
    default:
      TORCH_CHECK(false, "ssb_torch::ssb_resnet_d: depth must be 50, 101 or 152, got ", depth);
  }
  o.widths = {64, 128, 256, 512};
  o.sample_sizes = {0, 16, 8, 4};
  o.classes = classes;
  o.sampling = sampling;
  o.threads = threads;
  return SSBResNet(o);
}

// A CIFAR-style bottleneck (SSB-)ResNet for 28 x 28 input (Fashion-MNIST): a 3x3 stem of 16
// channels at full size, groups of mid widths 16, 32, 64 (outputs 64, 128, 256; or `widths`) at
// 28, 14 and 7 pixels, samplers (16, 8, 4) (the paper's sizes for the same 28, 14, 7 pixel maps;
// or `sample_sizes`) on every block but the first of each group.
inline SSBResNet ssb_resnet_28(Sampling sampling = Sampling::adaptive, int64_t blocks_per_group = 3,
                               int64_t in_channels = 1, int64_t classes = 10, int threads = 0,
                               std::vector<int64_t> sample_sizes = {16, 8, 4},
                               std::vector<int64_t> widths = {16, 32, 64}) {
  ResNetOptions o;
  o.blocks = {blocks_per_group, blocks_per_group, blocks_per_group};
  o.widths = std::move(widths);
  o.sample_sizes = std::move(sample_sizes);
  o.stem = Stem::small;
  o.stem_width = 16;
  o.in_channels = in_channels;
  o.classes = classes;
  o.sampling = sampling;
  o.threads = threads;
  return SSBResNet(o);
}

}  // namespace ssb_torch
