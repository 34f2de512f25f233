// ssbnet benchmarks: problem data, bytes model and counters (see problem.hpp).
#include "problem.hpp"

#include <cmath>
#include <cstdlib>
#include <new>
#include <random>

namespace ssb_bench {

Buffer::Buffer(std::size_t count) : size_(count) {
  const std::size_t bytes = (count * sizeof(float) + page - 1) / page * page;
  if (bytes == 0) return;
  float* p = static_cast<float*>(std::aligned_alloc(page, bytes));
  if (p == nullptr) throw std::bad_alloc();
  data_.reset(p);
  for (std::size_t i = 0; i < count; ++i) p[i] = 0.0f;  // touch every page outside the timing
}

void Buffer::Free::operator()(float* p) const {
  std::free(p);
}

namespace {

// splitmix64: a fast, reproducible hash for filling big inputs.
std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void fill_uniform(Buffer& b, std::uint64_t seed) {
  float* p = b.data();
  for (std::size_t i = 0; i < b.size(); ++i) {
    p[i] = float(double(mix(seed + i) >> 11) * 0x1.0p-52 - 1.0);  // [-1, 1)
  }
}

std::uint64_t seed_of(const std::string& s) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (const char c : s) h = (h ^ std::uint64_t(static_cast<unsigned char>(c))) * 1099511628211ULL;
  return h;
}

}  // namespace

Problem::Problem(const Shape& s)
    : shape(s),
      input(std::size_t(s.input_elements())),
      sampled(std::size_t(s.sampled_elements())),
      input_out(std::size_t(s.input_elements())),
      input_out2(std::size_t(s.input_elements())),
      sampled_out(std::size_t(s.sampled_elements())),
      sampled_out2(std::size_t(s.sampled_elements())),
      d_saliency(std::size_t(s.batch) * s.height * s.width) {
  const std::uint64_t seed = seed_of(s.name());
  fill_uniform(input, seed);
  fill_uniform(sampled, seed ^ 0x5555);
  const std::size_t maps = std::size_t(s.batch) * s.height * s.width;
  saliency[int(Saliency::sigmoid)] = Buffer(maps);
  saliency[int(Saliency::uniform)] = Buffer(maps);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (std::size_t i = 0; i < maps; ++i) {
    saliency[int(Saliency::sigmoid)].data()[i] = float(1.0 / (1.0 + std::exp(-normal(rng))));
    saliency[int(Saliency::uniform)].data()[i] = 1.0f;
  }
  for (const Saliency sal : {Saliency::sigmoid, Saliency::uniform}) {
    const int k = int(sal);
    weights[k] =
        std::make_unique<ssb::HostWeights<float>>(s.batch, s.height, s.width, s.out_h, s.out_w);
    ssb::compute_weights(ssb::serial{}, saliency_map(sal), s.out_h, s.out_w, *weights[k]);
    grad[k] = std::make_unique<ssb::HostWeightsGrad<float>>(*weights[k]);
    const ssb::WeightsGrad<float>& g = *grad[k];
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (std::int64_t i = 0; i < std::int64_t(g.batch) * g.capacity_y; ++i) g.y[i] = u(rng);
    for (std::int64_t i = 0; i < std::int64_t(g.batch) * g.capacity_x; ++i) g.x[i] = u(rng);
  }
}

ssb::FeatureMap<float> Problem::on_input(const Buffer& b, ssb::Layout layout) const {
  return {b.data(), shape.batch, shape.height, shape.width, shape.channels, layout};
}

ssb::FeatureMap<float> Problem::on_sampled(const Buffer& b, ssb::Layout layout) const {
  return {b.data(), shape.batch, shape.out_h, shape.out_w, shape.channels, layout};
}

ssb::SaliencyMap<float> Problem::saliency_map(Saliency s) const {
  return {saliency[int(s)].data(), shape.batch, shape.height, shape.width};
}

const Buffer& Problem::reference_sample(Saliency s, ssb::Layout layout) {
  auto& slot = reference_[int(s)][layout == ssb::Layout::nhwc ? 0 : 1];
  if (!slot) {
    slot = std::make_unique<Buffer>(std::size_t(shape.sampled_elements()));
    ssb::sample(ssb::serial{}, *weights[int(s)], on_input(input, layout),
                on_sampled(*slot, layout));
  }
  return *slot;
}

Problem& problem(const Shape& shape) {
  static std::unique_ptr<Problem> current;
  if (!current || current->shape.name() != shape.name()) {
    current.reset();  // free the previous shape first
    current = std::make_unique<Problem>(shape);
  }
  return *current;
}

double reference_bytes(Reference, const Shape& s) {
  return double(sizeof(float)) * double(s.input_elements() + s.sampled_elements());
}

void set_counters(benchmark::State& state, const Traffic& t, Problem& p, int threads,
                  double seconds) {
  const double ref_seconds = t.reduce / reference_bandwidth(Reference::reduce, p, threads) +
                             t.expand / reference_bandwidth(Reference::expand, p, threads);
  const double iterations = double(state.iterations());
  state.SetBytesProcessed(std::int64_t(t.total() * iterations));
  state.counters["pct_of_bw_ref"] = benchmark::Counter(100.0 * ref_seconds * iterations / seconds);
  state.counters["bw_ref_GBps"] = benchmark::Counter(t.total() / ref_seconds * 1e-9);
  state.counters["MB_per_call"] = benchmark::Counter(t.total() * 1e-6);
  state.counters["reduce_MB"] = benchmark::Counter(t.reduce * 1e-6);
  state.counters["expand_MB"] = benchmark::Counter(t.expand * 1e-6);
}

std::string bench_name(const std::string& family, const std::string& backend, const char* layout,
                       const char* saliency, const Shape& shape) {
  return family + "/" + backend + "/" + layout + "/" + saliency + "/" + shape.name();
}

}  // namespace ssb_bench
