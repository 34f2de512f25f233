// ssbnet benchmarks: the shapes of the paper's networks (SSBNet, ECCV 2022), float32.
//   ImageNet 224, SSB-ResNet-50 groups 2-4, batch 32
//   ResNet-RS at inputs 160 / 192 / 256 (paper Table 1), groups 2-4, batch 32
//   COCO Mask R-CNN at 1024, groups 2-4, batch 2
// Names read "<network>_<group>_<H>x<W>x<C>_to<Hr>_n<batch>" (square maps: Wr = Hr), e.g.
// imagenet224_g2_28x28x512_to16_n32, so --benchmark_filter can pick a network, group or size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ssb_bench {

struct Shape {
  std::string network;  // imagenet224, rs160, rs192, rs256, coco1024
  std::string group;    // g2, g3, g4
  int batch, height, width, channels, out_h, out_w;

  std::string name() const {
    return network + "_" + group + "_" + std::to_string(height) + "x" + std::to_string(width) +
           "x" + std::to_string(channels) + "_to" + std::to_string(out_h) +
           (out_w == out_h ? "" : "x" + std::to_string(out_w)) + "_n" + std::to_string(batch);
  }
  std::int64_t input_elements() const { return std::int64_t(batch) * height * width * channels; }
  std::int64_t sampled_elements() const { return std::int64_t(batch) * out_h * out_w * channels; }
  // The naive dense loop runs on one image only (it is O(Hr*H*W*C) scalar work per image).
  bool naive_dense() const { return network.rfind("coco", 0) != 0; }
};

inline const std::vector<Shape>& shapes() {
  static const std::vector<Shape> table = [] {
    std::vector<Shape> t;
    const auto square = [&t](const char* net, const char* group, int batch, int hw, int c, int r) {
      t.push_back(Shape{net, group, batch, hw, hw, c, r, r});
    };
    square("imagenet224", "g2", 32, 28, 512, 16);
    square("imagenet224", "g3", 32, 14, 1024, 8);
    square("imagenet224", "g4", 32, 7, 2048, 4);
    square("rs160", "g2", 32, 20, 512, 12);
    square("rs160", "g3", 32, 10, 1024, 6);
    square("rs160", "g4", 32, 5, 2048, 3);
    square("rs192", "g2", 32, 24, 512, 14);
    square("rs192", "g3", 32, 12, 1024, 7);
    square("rs192", "g4", 32, 6, 2048, 3);
    square("rs256", "g2", 32, 32, 512, 18);
    square("rs256", "g3", 32, 16, 1024, 9);
    square("rs256", "g4", 32, 8, 2048, 5);
    square("coco1024", "g2", 2, 128, 512, 72);
    square("coco1024", "g3", 2, 64, 1024, 36);
    square("coco1024", "g4", 2, 32, 2048, 18);
    return t;
  }();
  return table;
}

}  // namespace ssb_bench
