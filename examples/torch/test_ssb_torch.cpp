// Tests of the libtorch samplers (ssb_torch.hpp) and SSB-ResNet (ssb_resnet.hpp): gradients
// against central finite differences in double, layouts, errors, the SSB block at BN scale 0
// against the uniform block, a short training run, and the paper's Table 1.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "ssb_resnet.hpp"

// After libtorch: its glog defines CHECK too, and the test macros must be doctest's.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

namespace {

using ssb_torch::Sampling;

const auto f64 = torch::TensorOptions().dtype(torch::kDouble);

// Relative error used by every gradient check: max |a - b| / max(max |b|, 1).
double rel_error(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(b.abs().max().item<double>(), 1.0);
  return (a - b).abs().max().item<double>() / scale;
}

// Central differences of the scalar `loss` with respect to every element of the dense double
// tensor `input` (contiguous or channels_last; the result has its memory format).
at::Tensor numeric_grad(const std::function<double()>& loss, const at::Tensor& input,
                        double step = 1e-6) {
  torch::NoGradGuard no_grad;
  at::Tensor grad = at::empty_like(input);
  double* value = input.data_ptr<double>();
  double* out = grad.data_ptr<double>();
  for (int64_t i = 0; i < input.numel(); ++i) {
    const double saved = value[i];
    value[i] = saved + step;
    const double plus = loss();
    value[i] = saved - step;
    const double minus = loss();
    value[i] = saved;
    out[i] = (plus - minus) / (2 * step);
  }
  return grad;
}

// The margin of every finite-difference check in double. The measured errors are ~1e-8 at most;
// a saliency gradient that misses one sampler's weight gradient is off by ~1 (test below).
constexpr double gradient_tolerance = 1e-6;

// Message of a c10::Error (or ssb::error) thrown by f, "" if none.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Inputs of a sampler pair: x (N x C x H x W), y (N x C x Hr x Wr), raw saliency (N x H x W,
// s = sigmoid(raw)) and the fixed tensors the loss is dotted with.
struct PairCase {
  int64_t N = 2, C = 3, H = 7, W = 6, Hr = 4, Wr = 5;
  at::Tensor x, y, raw, rx, rz;

  PairCase(int64_t Hr_, int64_t Wr_, at::MemoryFormat format) : Hr(Hr_), Wr(Wr_) {
    x = torch::randn({N, C, H, W}, f64).contiguous(format).requires_grad_();
    y = torch::randn({N, C, Hr, Wr}, f64).contiguous(format).requires_grad_();
    raw = (2 * torch::randn({N, H, W}, f64)).requires_grad_();
    rx = torch::randn({N, C, Hr, Wr}, f64);
    rz = torch::randn({N, C, H, W}, f64);
  }

  // L = <sample(x), rx> + <sample_inverse(y), rz>, both with the weights of sigmoid(raw).
  // `detach_inverse` cuts the inverse sampler's path to the saliency: the wrong gradient that a
  // layer gets when it drops one sampler's d_weights.
  at::Tensor loss(bool detach_inverse = false) const {
    ssb_torch::SamplerWeights w = ssb_torch::compute_weights(torch::sigmoid(raw), Hr, Wr);
    at::Tensor xr = ssb_torch::sample(w, x);
    if (detach_inverse) w.segments = w.segments.detach();
    at::Tensor z = ssb_torch::sample_inverse(w, y);
    return (xr * rx).sum() + (z * rz).sum();
  }
};

}  // namespace

TEST_CASE("sampler pair: gradients to x, y and the saliency match central differences") {
  torch::manual_seed(1);
  // Hr < H and Wr < W; Hr > H (upsampling); both memory formats.
  for (const auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
    for (const auto& size : std::vector<std::pair<int64_t, int64_t>>{{4, 5}, {9, 3}}) {
      CAPTURE(size.first);
      CAPTURE(size.second);
      CAPTURE(format == at::MemoryFormat::ChannelsLast);
      PairCase c(size.first, size.second, format);
      const auto grads = torch::autograd::grad({c.loss()}, {c.x, c.y, c.raw});
      const auto value = [&] { return c.loss().item<double>(); };
      const double ex = rel_error(grads[0], numeric_grad(value, c.x));
      const double ey = rel_error(grads[1], numeric_grad(value, c.y));
      const double es = rel_error(grads[2], numeric_grad(value, c.raw));
      MESSAGE("relative errors: d_x ", ex, ", d_y ", ey, ", d_saliency ", es);
      CHECK(ex < gradient_tolerance);
      CHECK(ey < gradient_tolerance);
      CHECK(es < gradient_tolerance);
      CHECK(grads[2].abs().max().item<double>() > 1e-3);  // the saliency path is exercised
    }
  }
}

TEST_CASE("sampler pair: a saliency gradient missing the inverse sampler fails the check") {
  torch::manual_seed(2);
  PairCase c(4, 5, at::MemoryFormat::Contiguous);
  const auto value = [&] { return c.loss().item<double>(); };
  const at::Tensor wrong = torch::autograd::grad({c.loss(true)}, {c.raw})[0];
  const double error = rel_error(wrong, numeric_grad(value, c.raw));
  MESSAGE("relative error of the incomplete gradient: ", error);
  CHECK(error > 1e4 * gradient_tolerance);
}

TEST_CASE("SSB block: gradients to x and to the saliency convolution match central differences") {
  torch::manual_seed(3);
  ssb_torch::BottleneckOptions o;
  o.in_channels = 8;
  o.mid_channels = 2;
  o.sample_size = 4;
  ssb_torch::Bottleneck block(o);
  block->to(torch::kDouble);
  {
    // A non-zero BN scale, so the saliency convolution gets a gradient (at 0 it gets none).
    torch::NoGradGuard no_grad;
    block->saliency_bn->weight.fill_(1.5);
    block->saliency_bn->bias.fill_(0.3);
  }
  const at::Tensor x = torch::randn({2, 8, 7, 6}, f64).requires_grad_();
  const at::Tensor r = torch::randn({2, 8, 7, 6}, f64);
  const auto loss = [&] { return (block->forward(x) * r).sum(); };
  const at::Tensor& weight = block->saliency_conv->weight;
  const auto grads = torch::autograd::grad({loss()}, {x, weight, block->conv2->weight});
  const auto value = [&] { return loss().item<double>(); };
  const double ex = rel_error(grads[0], numeric_grad(value, x));
  const double ew = rel_error(grads[1], numeric_grad(value, weight));
  const double eb = rel_error(grads[2], numeric_grad(value, block->conv2->weight));
  MESSAGE("relative errors: d_x ", ex, ", d_saliency_conv ", ew, ", d_conv2 ", eb);
  CHECK(ex < gradient_tolerance);
  CHECK(ew < gradient_tolerance);
  CHECK(eb < gradient_tolerance);
  CHECK(grads[1].abs().max().item<double>() > 1e-3);
}

TEST_CASE("samplers: uniform saliency is average pooling and nearest upsampling, in both formats") {
  torch::manual_seed(4);
  for (const auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
    CAPTURE(format == at::MemoryFormat::ChannelsLast);
    const at::Tensor x = torch::randn({2, 5, 8, 6}, f64).contiguous(format);
    const at::Tensor y = torch::randn({2, 5, 4, 3}, f64).contiguous(format);
    const auto w = ssb_torch::compute_weights(torch::ones({2, 1, 8, 6}, f64), 4, 3);
    const at::Tensor xr = ssb_torch::sample(w, x);
    const at::Tensor z = ssb_torch::sample_inverse(w, y);
    CHECK(xr.is_contiguous(format));
    CHECK(z.is_contiguous(format));
    CHECK(rel_error(xr, torch::avg_pool2d(x, 2)) < 1e-14);
    CHECK(rel_error(z, y.repeat_interleave(2, 2).repeat_interleave(2, 3)) < 1e-14);
  }
}

TEST_CASE("samplers: NCHW, channels_last and strided tensors give the same bits") {
  torch::manual_seed(5);
  const at::Tensor x = torch::randn({3, 16, 11, 9}, torch::kFloat);
  const at::Tensor s = torch::rand({3, 11, 9}, torch::kFloat);
  const at::Tensor r = torch::randn({3, 16, 11, 9}, torch::kFloat);
  // Contiguous, channels_last (both used in place), a transposed view (copied), and contiguous
  // again on 2 OpenMP threads (ssbnet's results do not depend on the thread count).
  const std::vector<at::Tensor> inputs{x, x.contiguous(at::MemoryFormat::ChannelsLast),
                                       x.transpose(2, 3).contiguous().transpose(2, 3), x};
  std::vector<std::vector<at::Tensor>> results;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const at::Tensor xf = inputs[i].detach().requires_grad_();
    const at::Tensor sf = s.clone().requires_grad_();
    const auto w = ssb_torch::compute_weights(sf, 6, 5, i == 3 ? 2 : 1);
    const at::Tensor z = ssb_torch::sample_inverse(w, torch::tanh(ssb_torch::sample(w, xf)));
    const auto grads = torch::autograd::grad({(z * r).sum()}, {xf, sf});
    results.push_back({z.contiguous(), grads[0].contiguous(), grads[1]});
  }
  CHECK(!inputs[2].is_contiguous());
  CHECK(!inputs[2].is_contiguous(at::MemoryFormat::ChannelsLast));
  for (size_t i = 1; i < results.size(); ++i) {
    CAPTURE(i);
    for (size_t k = 0; k < 3; ++k) CHECK(torch::equal(results[0][k], results[i][k]));
  }
}

TEST_CASE("samplers: an expanded upstream gradient (stride 0) is read correctly") {
  torch::manual_seed(9);
  const at::Tensor y = torch::randn({2, 4, 3, 3}, f64).requires_grad_();
  const at::Tensor s = torch::rand({2, 7, 8}, f64).requires_grad_();
  const auto z = [&] { return ssb_torch::sample_inverse(ssb_torch::compute_weights(s, 3, 3), y); };
  // d(sum z)/dz reaches the backward as an expanded tensor of ones.
  const auto expanded = torch::autograd::grad({z().sum()}, {y, s});
  const at::Tensor z_dense = z();
  const auto dense = torch::autograd::grad({(z_dense * torch::ones_like(z_dense)).sum()}, {y, s});
  CHECK(torch::equal(expanded[0], dense[0]));
  CHECK(torch::equal(expanded[1], dense[1]));
}

TEST_CASE("samplers: clear errors for wrong dtypes, devices, shapes and saliency") {
  const at::Tensor s = torch::rand({2, 1, 6, 6});
  const auto w = ssb_torch::compute_weights(s, 3, 3);
  const at::Tensor x = torch::randn({2, 4, 6, 6});
  CHECK(contains(error_of([&] { ssb_torch::sample(w, x.to(torch::kHalf)); }),
                 "ssb_torch::sample: x has dtype Half; ssbnet supports float and double"));
  CHECK(contains(error_of([&] { ssb_torch::sample(w, x.to(torch::kDouble)); }),
                 "x has dtype Double but the weights were computed in Float"));
  CHECK(contains(error_of([&] {
                   ssb_torch::sample(w, torch::empty({2, 4, 6, 6}, at::kMeta));
                 }),
                 "x is on meta"));
  CHECK(contains(error_of([&] { ssb_torch::sample(w, x[0]); }), "x must be a 4-D"));
  CHECK(contains(error_of([&] {
                   ssb_torch::sample(w, torch::randn({2, 4, 6, 5}));
                 }),
                 "the weights expect N = 2 and 6 x 6 maps"));
  CHECK(contains(error_of([&] { ssb_torch::sample_inverse(w, x); }),
                 "ssb_torch::sample_inverse: y has sizes [2, 4, 6, 6] but the weights expect N = 2 "
                 "and 3 x 3 maps"));
  CHECK(contains(error_of([&] { ssb_torch::sample(ssb_torch::SamplerWeights{}, x); }),
                 "the weights are empty"));
  CHECK(contains(error_of([&] {
                   ssb_torch::compute_weights(torch::rand({2, 2, 6, 6}), 3, 3);
                 }),
                 "saliency must be N x H x W or N x 1 x H x W, got sizes [2, 2, 6, 6]"));
  CHECK(contains(error_of([&] { ssb_torch::compute_weights(s.to(torch::kInt), 3, 3); }),
                 "saliency has dtype Int"));
  CHECK(contains(error_of([&] { ssb_torch::compute_weights(s, 0, 3); }),
                 "the sampled size must be positive, got 0 x 3"));
  at::Tensor negative = s.clone();
  negative[1][0][2][3] = -1.0f;
  CHECK(contains(error_of([&] { ssb_torch::compute_weights(negative, 3, 3); }),
                 "saliency[n=1, h=2, w=3] is -1"));
}

TEST_CASE("SSB block: with the saliency BN scale at 0 it equals the uniform-sampler block") {
  torch::manual_seed(6);
  ssb_torch::BottleneckOptions o;
  o.in_channels = 16;
  o.mid_channels = 4;
  o.sample_size = 5;
  ssb_torch::Bottleneck adaptive(o);
  o.sampling = Sampling::uniform;
  ssb_torch::Bottleneck uniform(o);
  adaptive->to(torch::kDouble);
  uniform->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    const auto source = adaptive->named_parameters();
    for (auto& p : uniform->named_parameters()) p.value().copy_(source[p.key()]);
  }
  CHECK(adaptive->saliency_bn->weight.item<double>() == 0.0);
  CHECK(uniform->parameters().size() + 3 ==
        adaptive->parameters().size());  // conv, BN scale, shift
  const at::Tensor x = torch::randn({3, 16, 9, 7}, f64).requires_grad_();
  const at::Tensor r = torch::randn({3, 16, 9, 7}, f64);
  const at::Tensor out_a = adaptive->forward(x), out_u = uniform->forward(x);
  const double difference = (out_a - out_u).abs().max().item<double>();
  MESSAGE("largest difference of the outputs: ", difference);
  CHECK(difference <= 1e-12);
  const auto ga = torch::autograd::grad(
      {(out_a * r).sum()}, {x, adaptive->conv1->weight, adaptive->saliency_bn->weight});
  const auto gu = torch::autograd::grad({(out_u * r).sum()}, {x, uniform->conv1->weight});
  CHECK((ga[0] - gu[0]).abs().max().item<double>() <= 1e-12);
  CHECK((ga[1] - gu[1]).abs().max().item<double>() <= 1e-12);
  // ... and the BN scale has a gradient, so training can move away from uniform sampling.
  CHECK(std::abs(ga[2].item<double>()) > 1e-6);
}

TEST_CASE(
    "SSB block: the inference saliency (BN folded into the filter) equals conv, BN, sigmoid") {
  torch::manual_seed(8);
  ssb_torch::BottleneckOptions o;
  o.in_channels = 37;  // two blocks of 16 lanes and a remainder of 5
  o.mid_channels = 1;  // an identity shortcut: in_channels == mid_channels * expansion
  o.expansion = 37;
  o.sample_size = 4;
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    CAPTURE(dtype);
    ssb_torch::Bottleneck block(o);
    block->to(dtype);
    {
      torch::NoGradGuard no_grad;
      block->saliency_bn->weight.fill_(1.7);
      block->saliency_bn->bias.fill_(-0.4);
      block->saliency_bn->running_mean.fill_(0.3);
      block->saliency_bn->running_var.fill_(2.5);
    }
    block->eval();
    const at::Tensor x = torch::randn({3, 37, 9, 7}, torch::TensorOptions().dtype(dtype))
                             .contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor reference = torch::sigmoid(
        block->saliency_bn(block->saliency_conv(x)));  // the module path, as in training
    const at::Tensor folded =
        ssb_torch::detail::folded_saliency(x, block->saliency_conv->weight, *block->saliency_bn);
    CHECK(!folded.requires_grad());
    CHECK(folded.sizes() == reference.sizes());
    const double tol = dtype == torch::kFloat ? 1e-6 : 1e-14;
    const double difference = (folded - reference).abs().max().item<double>();
    MESSAGE("largest difference: ", difference);
    CHECK(difference <= tol);
    CHECK(reference.std().item<double>() > 0.05);  // a map that varies, not a constant
    {
      // Inference takes the folded path...
      torch::NoGradGuard no_grad;
      CHECK(block->saliency(x).equal(folded));
    }
    // ... and with autograd on, or in training mode, saliency() keeps the module path.
    CHECK(block->saliency(x).equal(reference));
    block->train();
    {
      torch::NoGradGuard no_grad;
      const at::Tensor batch_stats =
          torch::sigmoid(block->saliency_bn(block->saliency_conv(x)));  // BN on batch statistics
      CHECK(block->saliency(x).allclose(batch_stats));
    }
  }
}

TEST_CASE("SSB-ResNet 28x28: 50 SGD steps on a fixed batch lower the loss") {
  torch::manual_seed(7);
  ssb_torch::SSBResNet net = ssb_torch::ssb_resnet_28(Sampling::adaptive, 2);
  const at::Tensor images = torch::randn({16, 1, 28, 28});
  const at::Tensor labels = torch::randint(0, 10, {16}, torch::kLong);
  torch::optim::SGD optimizer(net->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  std::vector<double> losses;
  for (int step = 0; step < 50; ++step) {
    optimizer.zero_grad();
    const at::Tensor loss = torch::nn::functional::cross_entropy(net->forward(images), labels);
    loss.backward();
    optimizer.step();
    losses.push_back(loss.item<double>());
  }
  MESSAGE("loss: first ", losses.front(), ", last ", losses.back());
  CHECK(std::isfinite(losses.back()));
  CHECK(losses.back() < 0.5 * losses.front());
  // The samplers learned something: their BN scales left 0.
  double scales = 0;
  for (const auto& block : net->blocks) {
    if (block->saliency_bn) scales += block->saliency_bn->weight.abs().item<double>();
  }
  CHECK(scales > 1e-4);
}

TEST_CASE("Table 1: ResNet-D and SSB-ResNet-D multiply-adds and parameters within 3%") {
  struct Row {
    int depth;
    double resnet_g, ssb_g, resnet_m, ssb_m;
  };
  // The paper's Table 1, top left: GFLOPs (multiply-adds) and parameters at 224 x 224.
  for (const Row& row : {Row{50, 4.3, 3.0, 25.6, 25.6}, Row{101, 8.0, 4.3, 44.6, 44.6},
                         Row{152, 11.8, 5.6, 60.2, 60.3}}) {
    CAPTURE(row.depth);
    const auto resnet = ssb_torch::ssb_resnet_d(row.depth, Sampling::none);
    const auto ssb = ssb_torch::ssb_resnet_d(row.depth, Sampling::adaptive);
    const auto uniform = ssb_torch::ssb_resnet_d(row.depth, Sampling::uniform);
    const ssb_torch::Cost cr = resnet->cost(224, 224), cs = ssb->cost(224, 224);
    const double pr = double(resnet->parameter_count()) / 1e6;
    const double ps = double(ssb->parameter_count()) / 1e6;
    MESSAGE("ResNet-D-", row.depth, ": ", cr.paper() / 1e9, " G, ", pr,
            " M; SSB: ", cs.paper() / 1e9, " G (banded ", cs.banded() / 1e9, " G), ", ps, " M");
    CHECK(std::abs(cr.paper() / 1e9 / row.resnet_g - 1) < 0.03);
    CHECK(std::abs(cs.paper() / 1e9 / row.ssb_g - 1) < 0.03);
    CHECK(std::abs(pr / row.resnet_m - 1) < 0.03);
    CHECK(std::abs(ps / row.ssb_m - 1) < 0.03);
    CHECK(cr.sampler_dense == 0);
    CHECK(cs.banded() < cs.paper());
    // The uniform ablation: the same samplers without the saliency convolutions.
    CHECK(uniform->parameter_count() == resnet->parameter_count());
    CHECK(uniform->cost(224, 224).sampler_dense == cs.sampler_dense);
    CHECK(uniform->cost(224, 224).macs < cs.macs);
  }
}

TEST_CASE("Cost: ResNet-D-50 agrees with an independent layer-by-layer count") {
  // Counted separately (a script over the layer list of the ResNet-D paper): convolutions and
  // classifier 4 328 824 832 multiply-adds; SSB-ResNet-D-50 2 860 605 440 plus 88 309 760 for its
  // 10 SSB layers (sampler pairs) counted dense; 25 576 264 and 25 587 036 parameters.
  const auto resnet = ssb_torch::ssb_resnet_d(50, Sampling::none);
  const auto ssb = ssb_torch::ssb_resnet_d(50, Sampling::adaptive);
  const ssb_torch::Cost cr = resnet->cost(224, 224), cs = ssb->cost(224, 224);
  CHECK(cr.macs == 4328824832.0);
  CHECK(cs.macs == 2860605440.0);
  CHECK(cs.sampler_dense == 88309760.0);
  CHECK(resnet->parameter_count() == 25576264);
  CHECK(ssb->parameter_count() == 25587036);
}

TEST_CASE("Cost: the counted 28x28 network runs with the shapes it was counted with") {
  // The counter checks every convolution's input channels against the shape it propagates, and
  // the classifier's input against the last group's output.
  torch::manual_seed(8);
  ssb_torch::SSBResNet net = ssb_torch::ssb_resnet_28(Sampling::adaptive, 2);
  const ssb_torch::Cost c = net->cost(28, 28);
  CHECK(c.macs > 0);
  CHECK(c.sampler_banded < c.sampler_dense);
  torch::NoGradGuard no_grad;
  CHECK((net->forward(torch::randn({2, 1, 28, 28})).sizes() == at::IntArrayRef{2, 10}));
}
