// ssb_train: trains the 28x28 (SSB-)ResNet of ssb_resnet.hpp on Fashion-MNIST, then (optionally)
// draws the paper's Fig. 3 for a few test images and times SSB-ResNet-D-50 against ResNet-D-50.
//
//   ssb_train [--model ssb|baseline|uniform] [--epochs N] [--threads N] [--seed N] [--out DIR]
//             [--resume] [--limit N] [--test-limit N] [--batch N] [--lr X] [--blocks N]
//             [--sizes A,B,C] [--widths A,B,C] [--data DIR] [--pictures N] [--latency-runs N]
//             [--progress MODE]
//
// The defaults are the short run (the README's main job): the SSB model, 1 epoch on the first
// 4000 training images, 2 threads, seed 1, 4 pictures, the latency benchmark with 5 runs. The full
// run: --epochs 3 --limit 0 --latency-runs 0. See train.hpp for the recipe and determinism.
// Exit status: 0 done, 1 a runtime error (missing data, unreadable checkpoint), 2 a bad command
// line.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "latency.hpp"
#include "pictures.hpp"
#include "train.hpp"

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  ssb_train::TrainOptions train;
  std::string out = "ssb_train_out";
  std::string data = "/usr/share/datasets/fashion-mnist";
  bool resume = false;
  int64_t limit = 4000;
  int64_t test_limit = 0;
  int64_t pictures = 4;
  int latency_runs = 5;
};

const char* kUsage =
    "Usage: ssb_train [options]\n"
    "  --model ssb|baseline|uniform  network (default ssb: adaptive samplers)\n"
    "  --epochs N        epochs (default 1)\n"
    "  --threads N       threads of libtorch and the samplers (default 2)\n"
    "  --seed N          seed of the initialisation, data order and augmentation (default 1)\n"
    "  --out DIR         checkpoint, pictures and log directory (default ssb_train_out)\n"
    "  --resume          continue from DIR/checkpoint.pt (same options required)\n"
    "  --limit N         use the first N training images, 0 for all 60000 (default 4000)\n"
    "  --test-limit N    use the first N test images, 0 for all 10000 (default 0)\n"
    "  --batch N         batch size (default 128)\n"
    "  --lr X            learning rate for batch 128, scaled with the batch (default 0.1)\n"
    "  --blocks N        blocks per group (default 3)\n"
    "  --sizes A,B,C     sampling sizes of the three groups (default 16,8,4)\n"
    "  --widths A,B,C    mid widths of the three groups (default 16,32,64)\n"
    "  --data DIR        IDX files (default /usr/share/datasets/fashion-mnist)\n"
    "  --pictures N      Fig. 3 pictures for the first N test images, 0 for none (default 4)\n"
    "  --latency-runs N  SSB-ResNet-D-50 vs ResNet-D-50 latency, N timed runs, 0 to skip (default "
    "5)\n"
    "  --progress MODE   bar | lines | none (default: bar on a terminal, else lines)\n";

int64_t parse_int(const std::string& option, const std::string& text, int64_t min) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0) {
    throw UsageError(option + ": '" + text + "' is not a whole number");
  }
  if (v < min) throw UsageError(option + ": " + text + " is below " + std::to_string(min));
  return v;
}

// Three whole numbers >= min, "A,B,C".
std::vector<int64_t> parse_triple(const std::string& option, const std::string& text, int64_t min) {
  std::vector<int64_t> values;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    values.push_back(parse_int(
        option, text.substr(start, comma == std::string::npos ? comma : comma - start), min));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (values.size() != 3) {
    throw UsageError(option + " needs three numbers A,B,C, got '" + text + "'");
  }
  return values;
}

Args parse(int argc, char** argv) {
  Args a;
  a.train.threads = 2;
  a.train.progress = isatty(2) ? 2 : 1;
  for (int i = 1; i < argc; ++i) {
    std::string option = argv[i], value;
    const size_t eq = option.find('=');
    bool has_inline = false;
    if (option.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = option.substr(eq + 1);
      option = option.substr(0, eq);
      has_inline = true;
    }
    const auto next = [&]() -> std::string {
      if (has_inline) return value;
      if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0) {
        throw UsageError(option + " needs a value");
      }
      return argv[++i];
    };
    if (option == "--help" || option == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (option == "--model") {
      a.train.model = next();
      try {
        ssb_train::parse_model(a.train.model);
      } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
      }
    } else if (option == "--epochs") {
      a.train.epochs = parse_int(option, next(), 1);
    } else if (option == "--threads") {
      a.train.threads = int(parse_int(option, next(), 1));
    } else if (option == "--seed") {
      a.train.seed = uint64_t(parse_int(option, next(), 0));
    } else if (option == "--out") {
      a.out = next();
    } else if (option == "--resume") {
      a.resume = true;
    } else if (option == "--limit") {
      a.limit = parse_int(option, next(), 0);
    } else if (option == "--test-limit") {
      a.test_limit = parse_int(option, next(), 0);
    } else if (option == "--batch") {
      a.train.batch = parse_int(option, next(), 2);
    } else if (option == "--lr") {
      const std::string v = next();
      char* end = nullptr;
      a.train.lr = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(a.train.lr > 0)) {
        throw UsageError("--lr: '" + v + "' is not a positive number");
      }
    } else if (option == "--blocks") {
      a.train.blocks = parse_int(option, next(), 2);
    } else if (option == "--sizes") {
      a.train.sizes = parse_triple(option, next(), 0);
    } else if (option == "--widths") {
      a.train.widths = parse_triple(option, next(), 1);
    } else if (option == "--data") {
      a.data = next();
    } else if (option == "--pictures") {
      a.pictures = parse_int(option, next(), 0);
    } else if (option == "--latency-runs") {
      a.latency_runs = int(parse_int(option, next(), 0));
    } else if (option == "--progress") {
      const std::string v = next();
      if (v == "bar") {
        a.train.progress = 2;
      } else if (v == "lines") {
        a.train.progress = 1;
      } else if (v == "none") {
        a.train.progress = 0;
      } else {
        throw UsageError("--progress must be bar, lines or none, not '" + v + "'");
      }
    } else {
      throw UsageError("unknown option '" + option + "' (see --help)");
    }
  }
  return a;
}

void make_dir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) {
    throw std::runtime_error("cannot create '" + dir + "': " + std::strerror(errno));
  }
}

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

int run(const Args& a) {
  const auto start = std::chrono::steady_clock::now();
  at::set_num_threads(a.train.threads);
  make_dir(a.out);
  const ssb_train::Dataset train = ssb_train::load_fashion_mnist(a.data, true, a.limit);
  const ssb_train::Dataset test = ssb_train::load_fashion_mnist(a.data, false, a.test_limit);
  ssb_train::Trainer trainer(a.train);
  auto& net = trainer.net();
  const ssb_torch::Cost cost = net->cost(28, 28);
  const double base_macs = ssb_torch::ssb_resnet_28(ssb_torch::Sampling::none, a.train.blocks, 1,
                                                    10, 0, a.train.sizes, a.train.widths)
                               ->cost(28, 28)
                               .paper();
  std::printf(
      "ssb_train: model %s (%lld blocks per group, sampling sizes %lld,%lld,%lld, widths "
      "%lld,%lld,%lld), %.3f M parameters\n",
      a.train.model.c_str(), static_cast<long long>(a.train.blocks),
      static_cast<long long>(a.train.sizes[0]), static_cast<long long>(a.train.sizes[1]),
      static_cast<long long>(a.train.sizes[2]), static_cast<long long>(a.train.widths[0]),
      static_cast<long long>(a.train.widths[1]), static_cast<long long>(a.train.widths[2]),
      double(net->parameter_count()) / 1e6);
  std::printf(
      "  multiply-adds per image: %.4f G counting samplers as the paper (dense, %.1f%% "
      "fewer than the baseline's %.4f G), %.4f G as they run (banded, %.1f%% fewer)\n",
      cost.paper() / 1e9, 100 * (1 - cost.paper() / base_macs), base_macs / 1e9,
      cost.banded() / 1e9, 100 * (1 - cost.banded() / base_macs));
  std::printf(
      "  data: %lld training, %lld test images from %s; %d threads, seed %llu, batch "
      "%lld, lr %g\n",
      static_cast<long long>(train.size()), static_cast<long long>(test.size()), a.data.c_str(),
      a.train.threads, static_cast<unsigned long long>(a.train.seed),
      static_cast<long long>(a.train.batch), trainer.base_lr());
  std::fflush(stdout);
  const std::string checkpoint = a.out + "/checkpoint.pt";
  if (a.resume) {
    if (!file_exists(checkpoint)) {
      throw std::runtime_error("--resume: no checkpoint '" + checkpoint + "'");
    }
    trainer.load(checkpoint, train.size());
    std::printf("  resumed from %s after epoch %lld\n", checkpoint.c_str(),
                static_cast<long long>(trainer.epochs_done()));
  }
  for (int64_t e = trainer.epochs_done(); e < a.train.epochs; ++e) {
    const ssb_train::EpochStats s = trainer.train_epoch(train);
    const auto eval_start = std::chrono::steady_clock::now();
    const double accuracy = trainer.evaluate(test);
    const double eval_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count();
    trainer.save(checkpoint, train.size());
    std::printf(
        "epoch %lld/%lld: train loss %.4f acc %.2f%% | test acc %.2f%% | %.1f s "
        "(%.0f img/s), test %.1f s | %s\n",
        static_cast<long long>(e + 1), static_cast<long long>(a.train.epochs), s.loss,
        100 * s.accuracy, 100 * accuracy, s.seconds, s.images_per_second, eval_s,
        ssb_train::saliency_scales(net).describe().c_str());
    std::fflush(stdout);
  }
  if (a.pictures > 0) {
    std::vector<int64_t> index;
    for (int64_t i = 0; i < std::min(a.pictures, test.size()); ++i) index.push_back(i);
    const auto pictures = ssb_train::write_pictures(net, test, index, a.out, a.train.channels_last);
    if (pictures.empty())
      std::printf("pictures: the %s model has no samplers\n", a.train.model.c_str());
    for (const auto& p : pictures) {
      std::printf("wrote %s (block %lld: %lldx%lld -> %lldx%lld, saliency %.4f..%.4f)\n",
                  p.path.c_str(), static_cast<long long>(p.block + 1),
                  static_cast<long long>(p.in_size), static_cast<long long>(p.in_size),
                  static_cast<long long>(p.out_size), static_cast<long long>(p.out_size),
                  p.saliency_min, p.saliency_max);
    }
    std::fflush(stdout);
  }
  if (a.latency_runs > 0) {
    const ssb_train::LatencyResult r =
        ssb_train::measure_latency(a.train.threads, 50, 8, 224, 2, a.latency_runs);
    std::printf(
        "latency, batch 8 at 224x224, %d threads, median of %d runs: ResNet-D-50 %.0f ms, "
        "SSB-ResNet-D-50 %.0f ms\n",
        a.train.threads, a.latency_runs, r.baseline_ms, r.ssb_ms);
    std::printf(
        "  FLOPs ratio SSB/baseline: %.3f (samplers dense, the paper's count: %.3f / "
        "%.3f G), %.3f (samplers banded, as run: %.3f G)\n",
        r.flops_ratio_paper(), r.ssb_cost.paper() / 1e9, r.baseline_cost.paper() / 1e9,
        r.flops_ratio_banded(), r.ssb_cost.banded() / 1e9);
    std::printf(
        "  latency ratio SSB/baseline: %.3f (target <= FLOPs ratio + 0.05 = %.3f with the "
        "paper's count); samplers: %.1f%% of the SSB network's time\n",
        r.latency_ratio(), r.flops_ratio_paper() + 0.05, 100 * r.sampler_share);
  }
  std::printf("total %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ssb_train::keep_freed_memory();
  Args args;
  try {
    args = parse(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "ssb_train: %s\n", e.what());
    return 2;
  }
  try {
    return run(args);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "ssb_train: %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ssb_train: %s\n", e.what());
  }
  return 1;
}
