// Training of the 28 x 28 (SSB-)ResNet of ssb_resnet.hpp on Fashion-MNIST (or any 28 x 28 grey
// data set in IDX files): the data set, the augmentation, the trainer with its checkpoints.
//
//     ssb_train::Dataset train = ssb_train::load_fashion_mnist(dir, true), test = ...(dir, false);
//     ssb_train::Trainer trainer(options);
//     for (int64_t e = trainer.epochs_done(); e < options.epochs; ++e) {
//       trainer.train_epoch(train);
//       double accuracy = trainer.evaluate(test);
//       trainer.save(path);
//     }
//
// Recipe: SGD with momentum 0.9 and Nesterov off, weight decay on the convolution and classifier
// weights only (the "no bias decay" of the ResNet-D paper's training tricks, so the saliency BN
// scales are not pulled back to 0), learning rate lr * batch / 128 with a per-step cosine decay to
// 0 over all epochs, random crops (zero padding of 2 pixels) and horizontal flips, batch 128, the
// last partial batch of an epoch dropped.
//
// Determinism: the model's initialisation comes from torch::manual_seed(seed); the data order and
// the augmentation of epoch e come from a std::mt19937_64 seeded with (seed, e) alone, so a run
// resumed from the checkpoint of epoch e sees the same batches as an uninterrupted one. With the
// same thread count, libtorch's CPU kernels and ssbnet's samplers give the same bits run to run.
#pragma once

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "idx.hpp"
#include "ssb_resnet.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ssb_train {

// Keeps freed tensor memory in the process's heap for reuse instead of handing it back to the
// kernel. glibc's malloc serves blocks over 128 KiB (a dynamic threshold, at most 32 MiB) with
// fresh mmap()s and unmaps them on free, and trims the heap top, so every large activation of
// every step comes back as new zero-filled pages: on this project's 2-core VM that page-fault
// traffic took 63% of a ResNet-D-50 inference (batch 8: 757 ms, 283 ms with this) and two thirds
// of a training step of the 28x28 SSB-ResNet (122 images/s, 384 with this; with --widths
// 32,64,128, whose activations at batch 128 exceed 32 MiB, 81 images/s with only the threshold
// raised and 130 with no mmap at all). So malloc never uses mmap (M_MMAP_MAX 0; glibc still
// falls back to it when the heap cannot grow) and never trims the heap. The computed bits do not
// change. Same effect as MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 in the
// environment; a caching allocator (jemalloc, tcmalloc), as PyTorch's CPU performance guide
// recommends, does the same job. Returns false where it could not be applied (not glibc).
inline bool keep_freed_memory() {
#if defined(__GLIBC__)
  return mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
#else
  return false;
#endif
}

// Grey images of one size, and their labels.
struct Dataset {
  int64_t height = 28, width = 28;
  std::vector<uint8_t> pixels;  // count x height x width
  std::vector<int64_t> labels;
  int64_t size() const { return int64_t(labels.size()); }
};

// The Fashion-MNIST pixel statistics (of the training set), for the input normalisation.
constexpr float kMean = 0.2860f, kStd = 0.3530f;

// `limit` > 0 keeps the first `limit` items.
inline Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path,
                             int64_t limit = 0) {
  const ssb_idx::Array images = ssb_idx::read(images_path, 3);
  const ssb_idx::Array labels = ssb_idx::read(labels_path, 1);
  if (images.count() != labels.count()) {
    throw ssb_idx::Error("'" + images_path + "' holds " + std::to_string(images.count()) +
                         " images but '" + labels_path + "' " + std::to_string(labels.count()) +
                         " labels");
  }
  Dataset d;
  d.height = images.dims[1];
  d.width = images.dims[2];
  const int64_t n = limit > 0 ? std::min(limit, images.count()) : images.count();
  d.pixels.assign(images.data.begin(), images.data.begin() + n * images.item_size());
  d.labels.assign(labels.data.begin(), labels.data.begin() + n);
  return d;
}

inline Dataset load_fashion_mnist(const std::string& dir, bool train, int64_t limit = 0) {
  const std::string prefix = dir + (train ? "/train" : "/t10k");
  return load_idx_pair(prefix + "-images-idx3-ubyte", prefix + "-labels-idx1-ubyte", limit);
}

// The epoch's generator: the same for a given (seed, epoch) whatever came before.
inline std::mt19937_64 epoch_rng(uint64_t seed, int64_t epoch) {
  std::seed_seq seq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(epoch), 0x55b7u};
  return std::mt19937_64(seq);
}

// A permutation of 0..n-1 (Fisher-Yates with the generator's raw output, so it does not depend on
// the standard library's distributions).
inline std::vector<int64_t> permutation(int64_t n, std::mt19937_64& rng) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[rng() % uint64_t(i + 1)]);
  return order;
}

// The normalised images `index[0..count)` as a count x 1 x H x W float tensor; with `rng`,
// each randomly shifted by up to `pad` pixels (zero fill: a random crop of the zero-padded image)
// and flipped left-right with probability 1/2.
inline at::Tensor make_batch(const Dataset& d, const int64_t* index, int64_t count,
                             std::mt19937_64* rng, int64_t pad = 2) {
  const int64_t H = d.height, W = d.width;
  at::Tensor batch = at::empty({count, 1, H, W}, at::kFloat);
  float* out = batch.data_ptr<float>();
  const float zero = -kMean / kStd;
  for (int64_t n = 0; n < count; ++n) {
    const uint8_t* src = d.pixels.data() + index[n] * H * W;
    int64_t dy = 0, dx = 0;
    bool flip = false;
    if (rng) {
      const uint64_t r = (*rng)();
      dy = int64_t(r % uint64_t(2 * pad + 1)) - pad;
      dx = int64_t((r >> 16) % uint64_t(2 * pad + 1)) - pad;
      flip = ((r >> 32) & 1) != 0;
    }
    float* dst = out + n * H * W;
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sy = y + dy, sx = (flip ? W - 1 - x : x) + dx;
        dst[y * W + x] = sy >= 0 && sy < H && sx >= 0 && sx < W
                             ? (float(src[sy * W + sx]) / 255.0f - kMean) / kStd
                             : zero;
      }
    }
  }
  return batch;
}

inline at::Tensor label_tensor(const Dataset& d, const int64_t* index, int64_t count) {
  at::Tensor labels = at::empty({count}, at::kLong);
  for (int64_t n = 0; n < count; ++n) labels.data_ptr<int64_t>()[n] = d.labels[size_t(index[n])];
  return labels;
}

inline ssb_torch::Sampling parse_model(const std::string& model) {
  if (model == "ssb") return ssb_torch::Sampling::adaptive;
  if (model == "baseline") return ssb_torch::Sampling::none;
  if (model == "uniform") return ssb_torch::Sampling::uniform;
  throw std::invalid_argument("--model must be ssb, baseline or uniform, not '" + model + "'");
}

// Puts the 4-D parameters (convolution weights) in channels_last, so that convolutions and
// ssbnet's samplers run their NHWC paths (with channels_last input).
inline void to_channels_last(torch::nn::Module& net) {
  torch::NoGradGuard no_grad;
  for (auto& p : net.parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
  }
}

struct TrainOptions {
  std::string model = "ssb";  // ssb | baseline | uniform
  int64_t blocks = 3;         // blocks per group
  std::vector<int64_t> sizes{16, 8, 4};
  std::vector<int64_t> widths{16, 32, 64};  // mid widths of the three groups
  int64_t epochs = 1;
  int64_t batch = 128;
  double lr = 0.1;  // for batch 128; scaled linearly with the batch
  double momentum = 0.9;
  double weight_decay = 5e-4;
  int64_t pad = 2;  // random-crop shift
  uint64_t seed = 1;
  int threads = 1;
  bool channels_last = true;
  // Progress output: 0 none, 1 a line every ~10% of an epoch, 2 a bar redrawn in place (a tty).
  int progress = 0;

  // What must match for a checkpoint to be resumed (everything that changes the run's results).
  std::string signature(int64_t train_size) const {
    std::ostringstream s;
    s << "model=" << model << " blocks=" << blocks << " sizes=";
    for (size_t i = 0; i < sizes.size(); ++i) s << (i ? "," : "") << sizes[i];
    s << " widths=";
    for (size_t i = 0; i < widths.size(); ++i) s << (i ? "," : "") << widths[i];
    s << " epochs=" << epochs << " batch=" << batch << " lr=" << lr << " momentum=" << momentum
      << " weight_decay=" << weight_decay << " pad=" << pad << " seed=" << seed
      << " threads=" << threads << " channels_last=" << channels_last
      << " train_images=" << train_size;
    return s.str();
  }
};

struct EpochStats {
  double loss = 0, accuracy = 0, seconds = 0, images_per_second = 0;
  int64_t images = 0;
};

// Saliency BN scales (gamma) of the sampled blocks: mean |gamma| and max |gamma|, per group and
// overall. Empty for networks without saliency layers.
struct ScaleStats {
  std::vector<double> mean_abs, max_abs;  // per group with samplers
  double all_mean_abs = 0, all_max_abs = 0;
  int64_t layers = 0;
  std::string describe() const {
    if (layers == 0) return "no saliency layers";
    char text[512];
    int at = std::snprintf(text, sizeof text, "saliency BN |scale|: mean %.4f, max %.4f over %lld",
                           all_mean_abs, all_max_abs, static_cast<long long>(layers));
    at += std::snprintf(text + at, sizeof text - size_t(at), " layers; per group mean/max");
    for (size_t g = 0; g < mean_abs.size(); ++g) {
      at +=
          std::snprintf(text + at, sizeof text - size_t(at), " %.4f/%.4f", mean_abs[g], max_abs[g]);
    }
    return text;
  }
};

inline ScaleStats saliency_scales(const ssb_torch::SSBResNet& net) {
  ScaleStats stats;
  std::vector<std::vector<double>> groups;
  size_t block = 0;
  for (size_t g = 0; g < net->options().blocks.size(); ++g) {
    std::vector<double> values;
    for (int64_t b = 0; b < net->options().blocks[g]; ++b, ++block) {
      const auto& bn = net->blocks[block]->saliency_bn;
      if (bn) values.push_back(std::abs(bn->weight.item<double>()));
    }
    if (values.empty()) continue;
    double sum = 0, max = 0;
    for (double v : values) {
      sum += v;
      max = std::max(max, v);
      stats.all_mean_abs += v;
      stats.all_max_abs = std::max(stats.all_max_abs, v);
      ++stats.layers;
    }
    stats.mean_abs.push_back(sum / double(values.size()));
    stats.max_abs.push_back(max);
  }
  if (stats.layers > 0) stats.all_mean_abs /= double(stats.layers);
  return stats;
}

class Trainer {
 public:
  explicit Trainer(const TrainOptions& options) : options_(options) {
    TORCH_CHECK(options.batch >= 2, "ssb_train: the batch needs at least 2 images");
    TORCH_CHECK(options.epochs >= 1, "ssb_train: --epochs must be >= 1");
    TORCH_CHECK(options.threads >= 1, "ssb_train: --threads must be >= 1");
    torch::manual_seed(options.seed);
    net_ = ssb_torch::ssb_resnet_28(parse_model(options.model), options.blocks, 1, 10,
                                    options.threads, options.sizes, options.widths);
    if (options.channels_last) to_channels_last(*net_);
    std::vector<at::Tensor> decay, no_decay;
    for (const auto& p : net_->parameters()) (p.dim() > 1 ? decay : no_decay).push_back(p);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    auto sgd = [&](double wd) {
      return std::make_unique<torch::optim::SGDOptions>(
          torch::optim::SGDOptions(base_lr()).momentum(options.momentum).weight_decay(wd));
    };
    groups.emplace_back(decay, sgd(options.weight_decay));
    groups.emplace_back(no_decay, sgd(0.0));
    optimizer_ = std::make_unique<torch::optim::SGD>(
        groups, torch::optim::SGDOptions(base_lr()).momentum(options.momentum));
  }

  ssb_torch::SSBResNet& net() { return net_; }
  const TrainOptions& options() const { return options_; }
  int64_t epochs_done() const { return epochs_done_; }
  double base_lr() const { return options_.lr * double(options_.batch) / 128.0; }

  // The learning rate of step `step` of `total`: cosine from base_lr() to 0.
  double lr_at(int64_t step, int64_t total) const {
    return 0.5 * base_lr() * (1.0 + std::cos(M_PI * double(step) / double(total)));
  }

  at::Tensor prepare(at::Tensor images) const {
    return options_.channels_last ? images.contiguous(at::MemoryFormat::ChannelsLast) : images;
  }

  // One epoch (the next one) over `train`.
  EpochStats train_epoch(const Dataset& train) {
    const int64_t epoch = epochs_done_;
    const int64_t steps = train.size() / options_.batch;
    TORCH_CHECK(steps > 0, "ssb_train: ", train.size(), " training images make no batch of ",
                options_.batch);
    std::mt19937_64 rng = epoch_rng(options_.seed, epoch);
    const std::vector<int64_t> order = permutation(train.size(), rng);
    net_->train();
    EpochStats stats;
    double loss_sum = 0;
    int64_t correct = 0;
    const auto start = std::chrono::steady_clock::now();
    auto last_print = start;
    int64_t printed_tenth = 0;
    for (int64_t step = 0; step < steps; ++step) {
      const int64_t* index = order.data() + step * options_.batch;
      const at::Tensor images =
          prepare(make_batch(train, index, options_.batch, &rng, options_.pad));
      const at::Tensor labels = label_tensor(train, index, options_.batch);
      const double lr = lr_at(epoch * steps + step, options_.epochs * steps);
      for (auto& group : optimizer_->param_groups()) {
        static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
      }
      optimizer_->zero_grad();
      const at::Tensor logits = net_->forward(images);
      const at::Tensor loss = torch::nn::functional::cross_entropy(logits, labels);
      loss.backward();
      optimizer_->step();
      loss_sum += loss.item<double>() * double(options_.batch);
      correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
      stats.images += options_.batch;
      const auto now = std::chrono::steady_clock::now();
      const double elapsed = std::chrono::duration<double>(now - start).count();
      const bool last = step + 1 == steps;
      const int64_t tenth = (step + 1) * 10 / steps;
      if (options_.progress == 2 &&
          (last || std::chrono::duration<double>(now - last_print).count() > 0.25)) {
        last_print = now;
        print_progress(epoch, step + 1, steps, loss_sum / double(stats.images),
                       double(correct) / double(stats.images), double(stats.images) / elapsed,
                       elapsed, true);
        if (last) std::fprintf(stderr, "\n");
      } else if (options_.progress == 1 && tenth > printed_tenth) {
        printed_tenth = tenth;
        print_progress(epoch, step + 1, steps, loss_sum / double(stats.images),
                       double(correct) / double(stats.images), double(stats.images) / elapsed,
                       elapsed, false);
      }
    }
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stats.loss = loss_sum / double(stats.images);
    stats.accuracy = double(correct) / double(stats.images);
    stats.images_per_second = double(stats.images) / stats.seconds;
    ++epochs_done_;
    return stats;
  }

  // Top-1 accuracy on `data` (eval mode, no augmentation).
  double evaluate(const Dataset& data, int64_t batch = 256) {
    torch::NoGradGuard no_grad;
    net_->eval();
    std::vector<int64_t> index(size_t(data.size()));
    for (int64_t i = 0; i < data.size(); ++i) index[size_t(i)] = i;
    int64_t correct = 0;
    for (int64_t start = 0; start < data.size(); start += batch) {
      const int64_t count = std::min(batch, data.size() - start);
      const at::Tensor images = prepare(make_batch(data, index.data() + start, count, nullptr));
      const at::Tensor labels = label_tensor(data, index.data() + start, count);
      correct += net_->forward(images).argmax(1).eq(labels).sum().item<int64_t>();
    }
    net_->train();
    return data.size() ? double(correct) / double(data.size()) : 0.0;
  }

  // Model, optimizer (momentum buffers), epochs done, libtorch's default generator and the run's
  // signature, into one file (written to PATH.tmp, then renamed).
  void save(const std::string& path, int64_t train_size) {
    torch::serialize::OutputArchive archive, model, optimizer;
    net_->save(model);
    optimizer_->save(optimizer);
    archive.write("model", model);
    archive.write("optimizer", optimizer);
    archive.write("epochs_done", c10::IValue(epochs_done_));
    archive.write("signature", c10::IValue(options_.signature(train_size)));
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    archive.write("torch_rng", generator.get_state());
    const std::string tmp = path + ".tmp";
    archive.save_to(tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      throw std::runtime_error("cannot rename '" + tmp + "' to '" + path + "'");
    }
  }

  // Loads a checkpoint of save(); it must come from a run with the same signature.
  void load(const std::string& path, int64_t train_size) {
    torch::serialize::InputArchive archive, model, optimizer;
    archive.load_from(path);
    c10::IValue signature, epochs;
    archive.read("signature", signature);
    const std::string expected = options_.signature(train_size);
    if (signature.toStringRef() != expected) {
      throw std::runtime_error("checkpoint '" + path + "' is of another run:\n  checkpoint: " +
                               signature.toStringRef() + "\n  this run:   " + expected);
    }
    archive.read("epochs_done", epochs);
    archive.read("model", model);
    archive.read("optimizer", optimizer);
    net_->load(model);
    optimizer_->load(optimizer);
    at::Tensor rng;
    archive.read("torch_rng", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng);
    epochs_done_ = epochs.toInt();
  }

 private:
  void print_progress(int64_t epoch, int64_t step, int64_t steps, double loss, double accuracy,
                      double rate, double elapsed, bool in_place) const {
    constexpr int width = 30;
    const int filled = int(width * step / steps);
    const double eta = rate > 0 ? double((steps - step) * options_.batch) / rate : 0;
    std::fprintf(stderr,
                 "%sepoch %lld/%lld [%.*s%*s] %lld/%lld loss %.4f acc %.2f%% %.0f img/s "
                 "%.0fs eta %.0fs%s",
                 in_place ? "\r" : "", static_cast<long long>(epoch + 1),
                 static_cast<long long>(options_.epochs), filled,
                 "==============================", width - filled, "", static_cast<long long>(step),
                 static_cast<long long>(steps), loss, 100 * accuracy, rate, elapsed, eta,
                 in_place ? "" : "\n");
    std::fflush(stderr);
  }

  TrainOptions options_;
  ssb_torch::SSBResNet net_{nullptr};
  std::unique_ptr<torch::optim::SGD> optimizer_;
  int64_t epochs_done_ = 0;
};

}  // namespace ssb_train
