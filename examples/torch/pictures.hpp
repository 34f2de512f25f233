// Pictures like the SSBNet paper's Fig. 3: for a few images and every SSB layer of a trained 28x28
// (SSB-)ResNet, one PNG per layer with one row per image and three panels:
//   [the image resized (area average) to the layer's input size | the layer's saliency map |
//    the resized image sampled with the layer's weights (Hr x Wr)],
// every panel scaled (nearest) to `panel` pixels. Images and samples are grey (0 black, 1 white);
// the saliency map is coloured black-red-yellow-white from its own minimum to its maximum over
// the rows of the picture (the range is returned, as a learned map is often nearly flat).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "png_io.hpp"
#include "ssb_resnet.hpp"
#include "train.hpp"

namespace ssb_train {

struct PictureInfo {
  std::string path;
  int64_t block = 0;  // index in net->blocks
  int64_t in_size = 0, out_size = 0;
  double saliency_min = 0, saliency_max = 0;
};

namespace detail {

// Black -> red -> yellow -> white for t in [0, 1].
inline void heat(double t, uint8_t* rgb) {
  t = std::min(1.0, std::max(0.0, t));
  const double r = std::min(1.0, 3 * t), g = std::min(1.0, std::max(0.0, 3 * t - 1)),
               b = std::max(0.0, 3 * t - 2);
  rgb[0] = uint8_t(255 * r + 0.5);
  rgb[1] = uint8_t(255 * g + 0.5);
  rgb[2] = uint8_t(255 * b + 0.5);
}

// Draws the h x w map `m` (row-major) into `image` at (top, left), scaled to panel x panel.
template <class Colour>
void draw(zoom::Image& image, int top, int left, int panel, const float* m, int64_t h, int64_t w,
          Colour colour) {
  for (int y = 0; y < panel; ++y) {
    for (int x = 0; x < panel; ++x) {
      const int64_t sy = int64_t(y) * h / panel, sx = int64_t(x) * w / panel;
      colour(m[sy * w + sx], image.at(top + y, left + x));
    }
  }
}

}  // namespace detail

// Writes `out_dir`/fig3_layerK.png for every sampled block K of `net` and the images `index` of
// `data`. Returns what it wrote; nothing for a network without samplers.
inline std::vector<PictureInfo> write_pictures(ssb_torch::SSBResNet& net, const Dataset& data,
                                               const std::vector<int64_t>& index,
                                               const std::string& out_dir, bool channels_last,
                                               int panel = 112) {
  torch::NoGradGuard no_grad;
  net->eval();
  const int64_t n = int64_t(index.size());
  at::Tensor x = make_batch(data, index.data(), n, nullptr);
  const at::Tensor raw = x * kStd + kMean;  // the images in [0, 1]
  if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  std::vector<PictureInfo> written;
  at::Tensor h = net->stem->forward(x);
  for (size_t k = 0; k < net->blocks.size(); ++k) {
    auto& block = net->blocks[k];
    if (block->sampled()) {
      const int64_t H = h.size(2), W = h.size(3), S = block->options().sample_size;
      const at::Tensor s = block->saliency(h).contiguous();  // n x 1 x H x W
      const at::Tensor resized = torch::adaptive_avg_pool2d(raw, {H, W}).contiguous();
      const auto w = ssb_torch::compute_weights(s, S, S, block->options().threads);
      const at::Tensor sampled = ssb_torch::sample(w, resized).contiguous();
      PictureInfo info;
      info.block = int64_t(k);
      info.in_size = H;
      info.out_size = S;
      info.saliency_min = s.min().item<double>();
      info.saliency_max = s.max().item<double>();
      const double range = info.saliency_max - info.saliency_min;
      const int gap = 4;
      zoom::Image image(3 * panel + 2 * gap, int(n) * panel + int(n - 1) * gap, 3, 255);
      const auto grey = [](float v, uint8_t* rgb) {
        const uint8_t g = uint8_t(std::min(1.0f, std::max(0.0f, v)) * 255.0f + 0.5f);
        rgb[0] = rgb[1] = rgb[2] = g;
      };
      const auto colour = [&](float v, uint8_t* rgb) {
        detail::heat(range > 0 ? (double(v) - info.saliency_min) / range : 0.5, rgb);
      };
      for (int64_t i = 0; i < n; ++i) {
        const int top = int(i) * (panel + gap);
        detail::draw(image, top, 0, panel, resized[i].data_ptr<float>(), H, W, grey);
        detail::draw(image, top, panel + gap, panel, s[i].data_ptr<float>(), H, W, colour);
        detail::draw(image, top, 2 * (panel + gap), panel, sampled[i].data_ptr<float>(), S, S,
                     grey);
      }
      info.path = out_dir + "/fig3_layer" + std::to_string(k + 1) + ".png";
      zoom::write_png(info.path, image);
      written.push_back(info);
    }
    h = block->forward(h);
  }
  net->train();
  return written;
}

}  // namespace ssb_train
