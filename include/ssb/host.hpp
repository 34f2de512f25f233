// ssbnet: owning host convenience types on top of the workspace views.
//     ssb::HostWeights<float> w(batch, H, W, Hr, Wr);      // owns a 64-byte aligned workspace
//     ssb::compute_weights(ssb::serial{}, saliency, Hr, Wr, w);
//     ssb::HostWeightsGrad<float> dw(w);                    // zeroed, same slots as w
// Each is-a view (Weights<T>, WeightsGrad<T>), so it passes straight to the verbs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "weights.hpp"

namespace ssb {

template <class T>
class HostWeights : public Weights<T> {
 public:
  HostWeights(int batch, int in_h, int in_w, int out_h, int out_w)
      : storage_(lines(workspace_size<T>(batch, in_h, in_w, out_h, out_w))) {
    Weights<T>::operator=(
        weights_view<T>(storage_.data(), bytes(), batch, in_h, in_w, out_h, out_w));
  }
  HostWeights(const HostWeights& other) : Weights<T>(other), storage_(other.storage_) { rebind(); }
  HostWeights& operator=(const HostWeights& other) {
    Weights<T>::operator=(other);
    storage_ = other.storage_;
    rebind();
    return *this;
  }
  // A moved vector keeps its buffer, so the inherited pointers stay valid.
  HostWeights(HostWeights&&) noexcept = default;
  HostWeights& operator=(HostWeights&&) noexcept = default;

  void* workspace() { return storage_.data(); }
  std::size_t bytes() const { return storage_.size() * sizeof(Line); }

 private:
  struct alignas(detail::workspace_alignment) Line {
    unsigned char bytes[detail::workspace_alignment];
  };
  static std::size_t lines(std::size_t bytes) { return (bytes + sizeof(Line) - 1) / sizeof(Line); }
  void rebind() {
    Weights<T>::operator=(weights_view<T>(storage_.data(), bytes(), this->batch, this->y.in_size,
                                          this->x.in_size, this->y.out_size, this->x.out_size));
  }
  std::vector<Line> storage_;
};

template <class T>
class HostWeightsGrad : public WeightsGrad<T> {
 public:
  explicit HostWeightsGrad(const Weights<T>& weights) : data_(weights_grad_size(weights), T(0)) {
    WeightsGrad<T>::operator=(weights_grad_view(weights, data_.data(), data_.size()));
  }
  HostWeightsGrad(const HostWeightsGrad& other) : WeightsGrad<T>(other), data_(other.data_) {
    rebind();
  }
  HostWeightsGrad& operator=(const HostWeightsGrad& other) {
    WeightsGrad<T>::operator=(other);
    data_ = other.data_;
    rebind();
    return *this;
  }
  HostWeightsGrad(HostWeightsGrad&&) noexcept = default;
  HostWeightsGrad& operator=(HostWeightsGrad&&) noexcept = default;

  void zero() { std::fill(data_.begin(), data_.end(), T(0)); }
  const std::vector<T>& values() const { return data_; }

 private:
  void rebind() {
    this->y = data_.data();
    this->x = data_.data() + std::size_t(this->batch) * std::size_t(this->capacity_y);
  }
  std::vector<T> data_;
};

}  // namespace ssb
