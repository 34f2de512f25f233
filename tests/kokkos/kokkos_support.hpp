// Kokkos test support: every output of every verb for one problem, its inputs, the raw-pointer
// verbs on any backend, and the serial outputs the Kokkos verbs must reproduce. Shared by
// test_kokkos_views.cpp (host spaces) and test_kokkos_device.cpp (device spaces).
#pragma once

#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"

namespace ktest {

using test::Layout;

// Every output of every verb for one problem.
template <class T>
struct Outputs {
  std::vector<T> gy, gx, xr, z, dx, dy, dw, ds;
};

template <class T>
bool bitwise_equal_outputs(const Outputs<T>& a, const Outputs<T>& b) {
  return test::bitwise_equal(a.gy, b.gy) && test::bitwise_equal(a.gx, b.gx) &&
         test::bitwise_equal(a.xr, b.xr) && test::bitwise_equal(a.z, b.z) &&
         test::bitwise_equal(a.dx, b.dx) && test::bitwise_equal(a.dy, b.dy) &&
         test::bitwise_equal(a.dw, b.dw) && test::bitwise_equal(a.ds, b.ds);
}

template <class T>
struct Inputs {
  test::Saliency<T> s;
  test::Tensor<T> x, y, dxr, dz;
};

template <class T>
Inputs<T> random_inputs(std::mt19937& rng, const test::Shape& sh, Layout layout) {
  return {test::spiky_saliency<T>(rng, sh.n, sh.h, sh.w),
          test::random_tensor<T>(rng, sh.n, sh.h, sh.w, sh.c, layout),
          test::random_tensor<T>(rng, sh.n, sh.hr, sh.wr, sh.c, layout),
          test::random_tensor<T>(rng, sh.n, sh.hr, sh.wr, sh.c, layout),
          test::random_tensor<T>(rng, sh.n, sh.h, sh.w, sh.c, layout)};
}

// The raw-pointer verbs on any backend.
template <class T, class Exec>
Outputs<T> run_raw(const Exec& exec, const Inputs<T>& in) {
  Outputs<T> o;
  const auto w = test::weights_for(exec, in.s, in.y.h, in.y.w);
  const auto d = ssb::dense::to_dense(w);
  o.gy = d.gy, o.gx = d.gx;
  o.xr = test::sampled(exec, w, in.x).data;
  o.z = test::inverse_sampled(exec, w, in.y).data;
  test::Tensor<T> dx(in.x.n, in.x.h, in.x.w, in.x.c, in.x.layout);
  test::Tensor<T> dy(in.y.n, in.y.h, in.y.w, in.y.c, in.y.layout);
  ssb::HostWeightsGrad<T> dw(w);
  ssb::sample_backward(exec, w, in.x.cview(), in.dxr.cview(), dx.view(), dw);
  ssb::sample_inverse_backward(exec, w, in.y.cview(), in.dz.cview(), dy.view(), dw);
  test::Saliency<T> ds(in.s.n, in.s.h, in.s.w);
  ssb::compute_weights_backward(exec, in.s.view(), w, dw, ds.mut());
  o.dx = dx.data, o.dy = dy.data, o.dw = dw.values(), o.ds = ds.data;
  return o;
}

// The serial outputs the Kokkos verbs on Space must give bit for bit (on device spaces, whose
// compilers may contract differently: within rounding). The portable kernels
// (ssb/detail/kokkos_portable.hpp, which device spaces and SSB_KOKKOS_PORTABLE_KERNELS builds
// take) form the pair dots of NCHW maps as the NHWC host bodies do (detail::pair_dot over the
// channels, the same bits strided or contiguous), not in the order of the host's NCHW plane
// bodies: there d_weights, and the d_saliency made from them, are serial's for the same maps
// stored NHWC.
template <class Space, class T>
Outputs<T> serial_reference(const Inputs<T>& in) {
  Outputs<T> o = run_raw(ssb::serial{}, in);
  if (ssb::detail::kokkos_portable<Space>() && in.x.layout == Layout::nchw) {
    const Inputs<T> nhwc{in.s, test::relayout(in.x, Layout::nhwc),
                         test::relayout(in.y, Layout::nhwc), test::relayout(in.dxr, Layout::nhwc),
                         test::relayout(in.dz, Layout::nhwc)};
    Outputs<T> r = run_raw(ssb::serial{}, nhwc);
    o.dw = std::move(r.dw);
    o.ds = std::move(r.ds);
  }
  return o;
}

// ---- views in an execution space's memory ----------------------------------------------------

template <class T, class Memory>
using DeviceView4 = Kokkos::View<T****, Kokkos::LayoutRight, Memory>;

// A LayoutRight view in Memory holding a tensor: extents (N, H, W, C) for NHWC, (N, C, H, W) for
// NCHW, the same memory order as the tensor.
template <class Memory, class T>
DeviceView4<T, Memory> to_view(const test::Tensor<T>& t, const std::string& label) {
  DeviceView4<T, Memory> v = t.layout == Layout::nhwc
                                 ? DeviceView4<T, Memory>(label, t.n, t.h, t.w, t.c)
                                 : DeviceView4<T, Memory>(label, t.n, t.c, t.h, t.w);
  auto host = Kokkos::create_mirror_view(v);
  std::memcpy(host.data(), t.data.data(), t.data.size() * sizeof(T));
  Kokkos::deep_copy(v, host);
  return v;
}

// A saliency batch as a LayoutRight (N, H, W) view in Memory, or (N, 1, H, W) when rank4.
template <class Memory, class T>
auto saliency_view(const test::Saliency<T>& s, bool rank4) {
  using V4 = Kokkos::View<T****, Kokkos::LayoutRight, Memory>;
  using V3 = Kokkos::View<T***, Kokkos::LayoutRight, Memory>;
  std::pair<V3, V4> v;
  if (rank4) {
    v.second = V4("s", s.n, 1, s.h, s.w);
  } else {
    v.first = V3("s", s.n, s.h, s.w);
  }
  const auto copy = [&](const auto& view) {
    auto host = Kokkos::create_mirror_view(view);
    std::memcpy(host.data(), s.data.data(), s.data.size() * sizeof(T));
    Kokkos::deep_copy(view, host);
  };
  if (rank4) {
    copy(v.second);
  } else {
    copy(v.first);
  }
  return v;
}

// A view's values, copied to the host.
template <class V>
std::vector<typename V::non_const_value_type> values(const V& v) {
  const auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return {host.data(), host.data() + host.size()};
}

// Every verb over Kokkos views in the memory of Space (its memory_space). rank4_saliency:
// (N, 1, H, W) saliency views instead of (N, H, W). The weights come back through a host copy of
// the workspace.
template <class T, class Space>
Outputs<T> run_views(const Space& space, const Inputs<T>& in, bool rank4_saliency) {
  using Memory = typename Space::memory_space;
  const Layout layout = in.x.layout;
  const int n = in.s.n, h = in.s.h, w = in.s.w, hr = in.y.h, wr = in.y.w;
  const auto s = saliency_view<Memory>(in.s, rank4_saliency);
  const auto ds = saliency_view<Memory>(test::Saliency<T>(n, h, w), rank4_saliency);
  Kokkos::View<std::byte*, Memory> workspace("workspace", ssb::workspace_size<T>(n, h, w, hr, wr));
  const auto weights = ssb::weights_view<T>(workspace, n, h, w, hr, wr);
  if (rank4_saliency) {
    ssb::compute_weights(space, s.second, hr, wr, weights);
  } else {
    ssb::compute_weights(space, s.first, hr, wr, weights);
  }
  const DeviceView4<const T, Memory> x = to_view<Memory>(in.x, "x"), y = to_view<Memory>(in.y, "y");
  const DeviceView4<const T, Memory> dxr = to_view<Memory>(in.dxr, "d_xr");
  const DeviceView4<const T, Memory> dz = to_view<Memory>(in.dz, "d_z");
  DeviceView4<T, Memory> xr = to_view<Memory>(in.y, "xr"), z = to_view<Memory>(in.x, "z");
  DeviceView4<T, Memory> dx = to_view<Memory>(in.x, "d_x"), dy = to_view<Memory>(in.y, "d_y");
  ssb::sample(space, weights, x, xr, layout);
  ssb::sample_inverse(space, weights, y, z, layout);
  Kokkos::View<T*, Memory> grad("d_weights", ssb::weights_grad_size(weights));
  const auto d_weights = ssb::weights_grad_view(weights, grad);
  ssb::sample_backward(space, weights, x, dxr, dx, d_weights, layout);
  ssb::sample_inverse_backward(space, weights, y, dz, dy, d_weights, layout);
  if (rank4_saliency) {
    ssb::compute_weights_backward(space, s.second, weights, d_weights, ds.second);
  } else {
    ssb::compute_weights_backward(space, s.first, weights, d_weights, ds.first);
  }
  std::vector<std::byte> bytes = values(workspace);
  const auto host_weights = ssb::weights_view<T>(bytes.data(), bytes.size(), n, h, w, hr, wr);
  Outputs<T> o;
  const auto d = ssb::dense::to_dense(host_weights);
  o.gy = d.gy, o.gx = d.gx;
  o.xr = values(xr), o.z = values(z), o.dx = values(dx), o.dy = values(dy);
  o.dw = values(grad);
  o.ds = rank4_saliency ? values(ds.second) : values(ds.first);
  return o;
}

}  // namespace ktest
