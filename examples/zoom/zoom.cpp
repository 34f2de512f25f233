// ssb_zoom: SSBNet's saliency sampling on one image, as a picture (the README's "main job").
//
// Reads an image X (or draws a checkerboard), builds a saliency map S (a Gaussian blob or a
// grey-scale PNG, plus a small floor), computes the sampling weights G (eqs. 1-7), samples X to
// Xr = sample(X) of size Hr x Wr (eq. 8) and restores Z = sample_inverse(Xr) at full size (eq. 9,
// normalised by sample_inverse of an all-ones image unless --raw-inverse), then writes
//     input X | saliency S | sampled Xr | restored Z
// side by side in one PNG.
// Run `ssb_zoom --help` for the options.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "options.hpp"
#include "png_io.hpp"

#ifdef SSB_ZOOM_OPENMP
#include <ssb/openmp.hpp>
using Backend = ssb::openmp;
constexpr const char* kBackendName = "openmp";
#else
#include <ssb/ssb.hpp>
using Backend = ssb::serial;
constexpr const char* kBackendName = "serial";
#endif

namespace zoom {
namespace {

constexpr int kCheckerboardSide = 256;
constexpr int kCheckerSquare = 16;
constexpr int kPanelGap = 6;  // white pixels between panels

struct Rgb {
  std::uint8_t r, g, b;
};

void paint(Image& image, int y, int x, Rgb colour) {
  if (y < 0 || y >= image.height || x < 0 || x >= image.width) return;
  std::uint8_t* p = image.at(y, x);
  p[0] = colour.r;
  p[1] = colour.g;
  p[2] = colour.b;
}

// A grey checkerboard with coloured shapes: a red-and-white ring target with 3-pixel rings under
// the default blob (fine detail that the zoom keeps), and a blue disc, a green square and an orange
// bar elsewhere (coarse shapes that get squeezed).
Image draw_checkerboard() {
  const int side = kCheckerboardSide;
  Image image(side, side, 3);
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      const bool light = (y / kCheckerSquare + x / kCheckerSquare) % 2 == 0;
      const std::uint8_t v = light ? 215 : 95;
      paint(image, y, x, {v, v, v});
    }
  }
  const Blob target;  // the default blob
  const double ty = target.cy * side, tx = target.cx * side, ring_radius = 0.1 * side;
  const double by = 0.72 * side, bx = 0.78 * side, disc_radius = 0.09 * side;
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      const double r = std::hypot(y + 0.5 - ty, x + 0.5 - tx);
      if (r < ring_radius) {
        paint(image, y, x, int(r) / 3 % 2 == 0 ? Rgb{210, 25, 35} : Rgb{250, 250, 250});
      }
      if (std::hypot(y + 0.5 - by, x + 0.5 - bx) < disc_radius) paint(image, y, x, {35, 85, 215});
      if (y >= 0.12 * side && y < 0.30 * side && x >= 0.64 * side && x < 0.86 * side) {
        paint(image, y, x, {40, 165, 70});
      }
      if (y >= 0.84 * side && y < 0.90 * side && x >= 0.08 * side && x < 0.52 * side) {
        paint(image, y, x, {245, 150, 25});
      }
    }
  }
  return image;
}

// S[h,w] = exp(-d^2 / (2 sigma^2)), d the distance of pixel centre (h,w) to the blob centre.
std::vector<float> blob_saliency(int height, int width, const Blob& blob) {
  const double cy = blob.cy * height, cx = blob.cx * width;
  const double sigma = blob.sigma * std::min(height, width);
  std::vector<float> saliency(std::size_t(height) * std::size_t(width));
  for (int h = 0; h < height; ++h) {
    for (int w = 0; w < width; ++w) {
      const double dy = h + 0.5 - cy, dx = w + 0.5 - cx;
      saliency[std::size_t(h) * width + w] =
          float(std::exp(-(dy * dy + dx * dx) / (2 * sigma * sigma)));
    }
  }
  return saliency;
}

// S = the brightness of `map` in [0,1] (alpha ignored), bilinearly resampled (pixel centres
// aligned, edges clamped) to height x width when the sizes differ.
std::vector<float> png_saliency(const Image& map, int height, int width) {
  std::vector<float> brightness(std::size_t(map.height) * std::size_t(map.width));
  for (int y = 0; y < map.height; ++y) {
    for (int x = 0; x < map.width; ++x) {
      const std::uint8_t* p = map.at(y, x);
      brightness[std::size_t(y) * map.width + x] =
          float((0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) / 255.0);
    }
  }
  if (map.height == height && map.width == width) return brightness;
  // Source coordinate of output pixel i along an axis: index i0 and the weight t of i0 + 1.
  const auto source = [](int i, int out_size, int in_size, int* i0, double* t) {
    const double s = std::clamp((i + 0.5) * in_size / out_size - 0.5, 0.0, in_size - 1.0);
    *i0 = std::min(int(s), in_size - 1);
    *t = s - *i0;
  };
  std::vector<float> saliency(std::size_t(height) * std::size_t(width));
  for (int h = 0; h < height; ++h) {
    int y0;
    double ty;
    source(h, height, map.height, &y0, &ty);
    const int y1 = std::min(y0 + 1, map.height - 1);
    for (int w = 0; w < width; ++w) {
      int x0;
      double tx;
      source(w, width, map.width, &x0, &tx);
      const int x1 = std::min(x0 + 1, map.width - 1);
      const auto at = [&](int y, int x) {
        return double(brightness[std::size_t(y) * map.width + x]);
      };
      const double top = at(y0, x0) * (1 - tx) + at(y0, x1) * tx;
      const double bottom = at(y1, x0) * (1 - tx) + at(y1, x1) * tx;
      saliency[std::size_t(h) * width + w] = float(top * (1 - ty) + bottom * ty);
    }
  }
  return saliency;
}

// S += floor * max(S). An all-zero map stays zero: the library then samples uniformly.
void add_floor(std::vector<float>& saliency, double floor) {
  const float peak = *std::max_element(saliency.begin(), saliency.end());
  const float lift = float(floor * peak);
  for (float& s : saliency) s += lift;
}

// Eq. 9 maps a constant image c to Z[h,w] = c * (H sy[h]) * (W sx[w]): bright where the saliency
// is high, dark where it is low. Dividing by D = sample_inverse(1) brings c back unchanged, so the
// restored panel looks like the input (sharp under the blob, blocky away from it). A pixel with
// D = 0 (its row or column got no sampled pixel: a zero-saliency row with --floor 0) stays 0.
void normalise_inverse(const Backend& backend, const ssb::Weights<float>& weights,
                       std::vector<float>& z, int channels) {
  const int height = weights.in_height(), width = weights.in_width();
  const std::vector<float> ones(
      std::size_t(weights.out_height()) * std::size_t(weights.out_width()), 1.0f);
  std::vector<float> density(std::size_t(height) * std::size_t(width));
  ssb::sample_inverse(
      backend, weights,
      ssb::FeatureMap<const float>(ones.data(), 1, weights.out_height(), weights.out_width(), 1,
                                   ssb::Layout::nhwc),
      ssb::FeatureMap<float>(density.data(), 1, height, width, 1, ssb::Layout::nhwc));
  for (std::size_t p = 0; p < density.size(); ++p) {
    for (int c = 0; c < channels; ++c) {
      float& v = z[p * std::size_t(channels) + std::size_t(c)];
      v = density[p] > 0 ? v / density[p] : 0.0f;
    }
  }
}

std::vector<float> to_feature_map(const Image& image) {
  std::vector<float> features(image.pixels.size());
  for (std::size_t i = 0; i < features.size(); ++i) features[i] = image.pixels[i] / 255.0f;
  return features;
}

Image to_image(const std::vector<float>& features, int height, int width, int channels) {
  Image image(width, height, channels);
  for (std::size_t i = 0; i < features.size(); ++i) {
    image.pixels[i] = std::uint8_t(std::lround(std::clamp(features[i], 0.0f, 1.0f) * 255.0f));
  }
  return image;
}

// Width of the sampled panel: Wr scaled by the same factor H / Hr that brings Hr to H.
int shown_sampled_width(int input_height, int sampled_height, int sampled_width) {
  const double scale = double(input_height) / sampled_height;
  return std::max(1, int(std::lround(sampled_width * scale)));
}

// Copies `panel` into `canvas` at column x0, enlarging it with nearest neighbour to
// canvas.height x shown_width.
void place(Image& canvas, const Image& panel, int x0, int shown_width) {
  for (int y = 0; y < canvas.height; ++y) {
    const int py = std::min(panel.height - 1, int((y + 0.5) * panel.height / canvas.height));
    for (int x = 0; x < shown_width; ++x) {
      const int px = std::min(panel.width - 1, int((x + 0.5) * panel.width / shown_width));
      std::copy_n(panel.at(py, px), canvas.channels, canvas.at(y, x0 + x));
    }
  }
}

// input | saliency | sampled | restored, kPanelGap white pixels apart, all at the input height.
Image compose(const Image& input, const std::vector<float>& saliency, const Image& sampled,
              const Image& restored) {
  const int height = input.height, width = input.width, channels = input.channels;
  const int sampled_shown = shown_sampled_width(height, sampled.height, sampled.width);
  Image canvas(3 * width + sampled_shown + 3 * kPanelGap, height, channels, 255);
  int x0 = 0;
  place(canvas, input, x0, width);
  x0 += width + kPanelGap;
  const float peak = *std::max_element(saliency.begin(), saliency.end());
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const float s = peak > 0 ? saliency[std::size_t(y) * width + x] / peak : 0.0f;
      std::uint8_t* p = canvas.at(y, x0 + x);
      std::fill_n(p, 3, std::uint8_t(std::lround(s * 255.0f)));  // alpha, if any, stays 255
    }
  }
  x0 += width + kPanelGap;
  place(canvas, sampled, x0, sampled_shown);
  x0 += sampled_shown + kPanelGap;
  place(canvas, restored, x0, width);
  return canvas;
}

std::string size_text(int height, int width) {
  return std::to_string(height) + "x" + std::to_string(width);
}

int check_png(const Options& options) {
  const Image image = read_png(options.check_png);
  if (image.height != options.check_height || image.width != options.check_width) {
    std::cerr << "ssb_zoom: '" << options.check_png << "' is "
              << size_text(image.height, image.width) << ", expected "
              << size_text(options.check_height, options.check_width) << "\n";
    return 1;
  }
  std::cout << options.check_png << ": PNG " << size_text(image.height, image.width) << ", "
            << image.channels << " channels\n";
  return 0;
}

int run(int argc, const char* const* argv) {
  const Options options = parse_args(argc, argv);
  if (options.help) {
    std::cout << kUsage;
    return 0;
  }
  if (!options.check_png.empty()) return check_png(options);

  const int sampled_height = options.sampled_height, sampled_width = options.sampled_width;
  const Image input = options.input.empty() ? draw_checkerboard() : read_png(options.input);
  const int height = input.height, width = input.width, channels = input.channels;
  if (3 * width + shown_sampled_width(height, sampled_height, sampled_width) + 3 * kPanelGap >
      4 * kMaxImageSide) {
    throw UsageError("--size " + size_text(sampled_height, sampled_width) +
                     " is too elongated to show at the input height " + std::to_string(height));
  }
  std::vector<float> saliency = options.saliency.empty()
                                    ? blob_saliency(height, width, options.blob)
                                    : png_saliency(read_png(options.saliency), height, width);
  add_floor(saliency, options.floor);

  // Eqs. 1-7: the weights; eq. 8: X (H x W) -> Xr (Hr x Wr); eq. 9: Xr -> Z (H x W).
  const Backend backend{};
  const std::vector<float> x = to_feature_map(input);
  std::vector<float> xr(std::size_t(sampled_height) * std::size_t(sampled_width) * channels);
  std::vector<float> z(x.size());
  ssb::HostWeights<float> weights(1, height, width, sampled_height, sampled_width);
  ssb::compute_weights(backend, ssb::SaliencyMap<const float>(saliency.data(), 1, height, width),
                       sampled_height, sampled_width, weights);
  const ssb::FeatureMap<const float> x_view(x.data(), 1, height, width, channels,
                                            ssb::Layout::nhwc);
  const ssb::FeatureMap<float> xr_view(xr.data(), 1, sampled_height, sampled_width, channels,
                                       ssb::Layout::nhwc);
  ssb::sample(backend, weights, x_view, xr_view);
  ssb::sample_inverse(
      backend, weights, ssb::FeatureMap<const float>(xr_view),
      ssb::FeatureMap<float>(z.data(), 1, height, width, channels, ssb::Layout::nhwc));
  if (!options.raw_inverse) normalise_inverse(backend, weights, z, channels);

  const Image sampled = to_image(xr, sampled_height, sampled_width, channels);
  const Image restored = to_image(z, height, width, channels);
  const Image canvas = compose(input, saliency, sampled, restored);
  write_png(options.out, canvas);
  std::cout << "ssb_zoom (" << kBackendName << "): " << size_text(height, width) << " -> "
            << size_text(sampled_height, sampled_width) << " -> " << size_text(height, width)
            << "; wrote " << options.out << " (" << size_text(canvas.height, canvas.width)
            << "): input | saliency | sampled | restored\n";
  return 0;
}

}  // namespace
}  // namespace zoom

int main(int argc, char** argv) {
  try {
    return zoom::run(argc, argv);
  } catch (const zoom::UsageError& e) {
    std::cerr << "ssb_zoom: " << e.what() << "\n(see ssb_zoom --help)\n";
    return 2;
  } catch (const zoom::FileError& e) {
    std::cerr << "ssb_zoom: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "ssb_zoom: out of memory\n";
    return 1;
  } catch (const std::exception& e) {  // ssb::error: a saliency the library rejects
    std::cerr << "ssb_zoom: " << e.what() << "\n";
    return 1;
  }
}
