// Tests of ssb_train's pieces: the IDX reader, the data order and augmentation, determinism of a
// short training run for a fixed seed, checkpoint save and resume against an uninterrupted run,
// the Fig. 3 pictures and the latency benchmark. Small synthetic data, so they stay fast.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "latency.hpp"
#include "pictures.hpp"
#include "train.hpp"

// After libtorch: its glog defines CHECK too, and the test macros must be doctest's.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

namespace {

// A fresh temporary directory per call.
std::string temp_dir() {
  char pattern[] = "/tmp/ssb_train_test_XXXXXX";
  const char* dir = mkdtemp(pattern);
  REQUIRE(dir != nullptr);
  return dir;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// `count` 28x28 images whose label decides a bright quadrant, plus noise.
ssb_train::Dataset synthetic(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ssb_train::Dataset d;
  for (int64_t n = 0; n < count; ++n) {
    const int64_t label = int64_t(rng() % 4);
    d.labels.push_back(label);
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) {
        const bool bright = (y < 14) == (label < 2) && (x < 14) == (label % 2 == 0);
        d.pixels.push_back(uint8_t((bright ? 150 : 20) + rng() % 100));
      }
    }
  }
  return d;
}

ssb_train::TrainOptions small_options(const std::string& model = "ssb") {
  ssb_train::TrainOptions o;
  o.model = model;
  o.blocks = 2;
  o.batch = 32;
  o.epochs = 2;
  o.threads = 1;
  o.seed = 11;
  return o;
}

// Parameters and buffers (BN statistics) of the trainer's network, by name.
std::vector<std::pair<std::string, at::Tensor>> state_of(ssb_train::Trainer& t) {
  std::vector<std::pair<std::string, at::Tensor>> state;
  for (const auto& p : t.net()->named_parameters()) state.emplace_back(p.key(), p.value());
  for (const auto& b : t.net()->named_buffers()) state.emplace_back(b.key(), b.value());
  return state;
}

// Names of the tensors that differ (bitwise) between a and b.
std::vector<std::string> differences(ssb_train::Trainer& a, ssb_train::Trainer& b) {
  const auto sa = state_of(a), sb = state_of(b);
  REQUIRE(sa.size() == sb.size());
  std::vector<std::string> differ;
  for (size_t i = 0; i < sa.size(); ++i) {
    REQUIRE(sa[i].first == sb[i].first);
    if (!torch::equal(sa[i].second, sb[i].second)) differ.push_back(sa[i].first);
  }
  return differ;
}

}  // namespace

TEST_CASE("IDX reader: plain and gzipped files round-trip; PATH.gz is found for PATH") {
  const std::string dir = temp_dir();
  ssb_idx::Array a;
  a.dims = {3, 2, 5};
  for (int i = 0; i < 30; ++i) a.data.push_back(uint8_t(7 * i));
  ssb_idx::write(dir + "/plain-idx3-ubyte", a);
  ssb_idx::write(dir + "/packed-idx3-ubyte.gz", a);
  for (const std::string name : {"plain-idx3-ubyte", "packed-idx3-ubyte.gz", "packed-idx3-ubyte"}) {
    CAPTURE(name);
    const ssb_idx::Array b = ssb_idx::read(dir + "/" + name, 3);
    CHECK(b.dims == a.dims);
    CHECK(b.data == a.data);
    CHECK(b.count() == 3);
    CHECK(b.item_size() == 10);
  }
}

TEST_CASE("IDX reader: clear errors for missing, foreign, truncated and oversized files") {
  const std::string dir = temp_dir();
  CHECK(contains(error_of([&] { ssb_idx::read(dir + "/none"); }),
                 "cannot open '" + dir + "/none' (nor '" + dir + "/none.gz'): no such file"));
  write_bytes(dir + "/text", {'h', 'e', 'l', 'l', 'o', '\n'});
  CHECK(contains(error_of([&] { ssb_idx::read(dir + "/text"); }), "is not an IDX file"));
  write_bytes(dir + "/short", {0, 0});
  CHECK(contains(error_of([&] { ssb_idx::read(dir + "/short"); }), "ends before the 4-byte magic"));
  write_bytes(dir + "/float", {0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0});
  CHECK(contains(error_of([&] { ssb_idx::read(dir + "/float"); }), "element type 0x13"));
  write_bytes(dir + "/dims", {0, 0, 8, 1, 0, 0, 0, 2, 1, 2});
  CHECK(
      contains(error_of([&] { ssb_idx::read(dir + "/dims", 3); }), "has 1 dimensions, expected 3"));
  write_bytes(dir + "/header", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0});
  CHECK(contains(error_of([&] { ssb_idx::read(dir + "/header"); }), "ends in its header"));
  write_bytes(dir + "/zero", {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 0});
  CHECK(contains(error_of([&] { ssb_idx::read(dir + "/zero"); }), "dimension 2 is 0"));
  write_bytes(dir + "/huge", {0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  CHECK(contains(error_of([&] { ssb_idx::read(dir + "/huge"); }), "refused"));
  write_bytes(dir + "/truncated", {0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3});
  CHECK(contains(error_of([&] { ssb_idx::read(dir + "/truncated"); }),
                 "ends early: the header promises 4 bytes"));
  write_bytes(dir + "/long", {0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3});
  CHECK(contains(error_of([&] { ssb_idx::read(dir + "/long"); }), "has bytes after the 2"));
  // A gzip stream cut in the middle.
  ssb_idx::Array a;
  a.dims = {4000};
  for (int i = 0; i < 4000; ++i) a.data.push_back(uint8_t(i * 2654435761u >> 24));
  ssb_idx::write(dir + "/cut.gz", a);
  std::ifstream in(dir + "/cut.gz", std::ios::binary);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), {});
  bytes.resize(bytes.size() / 2);
  write_bytes(dir + "/cut.gz", bytes);
  CHECK(!error_of([&] { ssb_idx::read(dir + "/cut.gz"); }).empty());
  // Images and labels that disagree.
  ssb_idx::Array images, labels;
  images.dims = {3, 2, 2};
  images.data.assign(12, 1);
  labels.dims = {2};
  labels.data.assign(2, 0);
  ssb_idx::write(dir + "/i", images);
  ssb_idx::write(dir + "/l", labels);
  CHECK(contains(error_of([&] { ssb_train::load_idx_pair(dir + "/i", dir + "/l"); }),
                 "holds 3 images but '" + dir + "/l' 2 labels"));
}

TEST_CASE("data: the Debian Fashion-MNIST files, when installed, read as 60000 + 10000 images") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  struct stat st;
  if (stat((dir + "/t10k-images-idx3-ubyte.gz").c_str(), &st) != 0) {
    MESSAGE("dataset-fashion-mnist not installed; skipped");
    return;
  }
  const ssb_train::Dataset test = ssb_train::load_fashion_mnist(dir, false);
  CHECK(test.size() == 10000);
  CHECK(test.pixels.size() == 10000u * 784u);
  CHECK(test.labels[0] == 9);  // the first test image is an ankle boot
  std::set<int64_t> classes(test.labels.begin(), test.labels.end());
  CHECK(classes.size() == 10);
  CHECK(ssb_train::load_fashion_mnist(dir, true, 100).size() == 100);
}

TEST_CASE("data: order and augmentation depend on (seed, epoch) only") {
  const ssb_train::Dataset d = synthetic(50, 1);
  auto r1 = ssb_train::epoch_rng(3, 1), r2 = ssb_train::epoch_rng(3, 1),
       r3 = ssb_train::epoch_rng(3, 2);
  const auto p1 = ssb_train::permutation(50, r1), p2 = ssb_train::permutation(50, r2),
             p3 = ssb_train::permutation(50, r3);
  CHECK(p1 == p2);
  CHECK(p1 != p3);
  CHECK(std::set<int64_t>(p1.begin(), p1.end()).size() == 50);
  const at::Tensor a = ssb_train::make_batch(d, p1.data(), 8, &r1);
  const at::Tensor b = ssb_train::make_batch(d, p2.data(), 8, &r2);
  CHECK(torch::equal(a, b));
  // Without augmentation: the normalised pixels.
  const at::Tensor plain = ssb_train::make_batch(d, p1.data(), 1, nullptr);
  const float expected =
      (float(d.pixels[size_t(p1[0]) * 784]) / 255.0f - ssb_train::kMean) / ssb_train::kStd;
  CHECK(plain[0][0][0][0].item<float>() == doctest::Approx(expected));
  // Augmented batches are shifted or flipped copies: the same pixel sum up to the zero border.
  CHECK(!torch::equal(a, ssb_train::make_batch(d, p1.data(), 8, nullptr)));
}

TEST_CASE("training: a fixed seed and thread count give the same bits, another seed does not") {
  const ssb_train::Dataset train = synthetic(128, 2);
  ssb_train::TrainOptions o = small_options();
  o.epochs = 1;
  ssb_train::Trainer a(o), b(o);
  const auto sa = a.train_epoch(train), sb = b.train_epoch(train);
  CHECK(sa.loss == sb.loss);
  CHECK(differences(a, b).empty());
  o.seed = 12;
  ssb_train::Trainer c(o);
  c.train_epoch(train);
  CHECK(!differences(a, c).empty());
}

TEST_CASE("training: save after epoch 1 and resume gives the uninterrupted run's bits") {
  const ssb_train::Dataset train = synthetic(128, 3);
  const ssb_train::TrainOptions o = small_options();
  const std::string path = temp_dir() + "/checkpoint.pt";
  ssb_train::Trainer straight(o);
  straight.train_epoch(train);
  straight.train_epoch(train);
  {
    ssb_train::Trainer first(o);
    first.train_epoch(train);
    first.save(path, train.size());
    // Ruin libtorch's generator; the checkpoint restores it.
    torch::manual_seed(999);
  }
  ssb_train::Trainer resumed(o);
  resumed.load(path, train.size());
  CHECK(resumed.epochs_done() == 1);
  resumed.train_epoch(train);
  const auto differ = differences(straight, resumed);
  for (const auto& name : differ) MESSAGE("differs: ", name);
  CHECK(differ.empty());
  // The saliency layers learned: their BN scales left 0.
  CHECK(ssb_train::saliency_scales(resumed.net()).all_max_abs > 1e-4);
  // A checkpoint of another run is refused, naming both runs.
  ssb_train::TrainOptions other = o;
  other.model = "uniform";
  ssb_train::Trainer wrong(other);
  const std::string error = error_of([&] { wrong.load(path, train.size()); });
  CHECK(contains(error, "is of another run"));
  CHECK(contains(error, "model=ssb"));
  CHECK(contains(error, "model=uniform"));
}

TEST_CASE("pictures: one PNG per SSB layer, three panels per image") {
  const ssb_train::Dataset test = synthetic(3, 6);
  ssb_train::Trainer t(small_options());
  {
    torch::NoGradGuard no_grad;
    for (auto& block : t.net()->blocks) {
      if (block->saliency_bn) block->saliency_bn->weight.fill_(2.0);
    }
  }
  const std::string dir = temp_dir();
  const auto written = ssb_train::write_pictures(t.net(), test, {0, 1, 2}, dir, true, 56);
  REQUIRE(written.size() == 3);  // 2 blocks per group: one sampled block in each
  CHECK(written[0].in_size == 28);
  CHECK(written[0].out_size == 16);
  CHECK(written[2].in_size == 7);
  CHECK(written[2].out_size == 4);
  CHECK(written[0].saliency_max > written[0].saliency_min);
  for (const auto& p : written) {
    CAPTURE(p.path);
    const zoom::Image image = zoom::read_png(p.path);
    CHECK(image.width == 3 * 56 + 2 * 4);
    CHECK(image.height == 3 * 56 + 2 * 4);
  }
  ssb_train::Trainer baseline(small_options("baseline"));
  CHECK(ssb_train::write_pictures(baseline.net(), test, {0}, dir, true).empty());
}

TEST_CASE("latency: both networks run and the samplers' share is measured") {
  // A small input keeps the test fast; the program runs 224 x 224.
  const ssb_train::LatencyResult r = ssb_train::measure_latency(1, 50, 1, 64, 0, 1);
  CHECK(r.baseline_ms > 0);
  CHECK(r.ssb_ms > 0);
  CHECK(r.sampler_share > 0);
  CHECK(r.sampler_share < 1);
  // (At 64 x 64 the 16 x 16 samplers upsample 8 x 8 maps: no FLOPs saving to check here.)
  CHECK(r.flops_ratio_banded() < r.flops_ratio_paper());
  CHECK_FALSE(ssb_torch::SamplerClock::enabled());
}
