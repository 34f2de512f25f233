// Samples a constant map on the default host execution space over Kokkos views: it stays constant.
#include <cstdio>
#include <ssb/kokkos.hpp>

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  const int N = 2, H = 9, W = 7, C = 3, Hr = 4, Wr = 5;
  using Space = Kokkos::DefaultHostExecutionSpace;
  Kokkos::View<float***, Space> saliency("saliency", N, H, W);
  Kokkos::View<float****, Space> x("x", N, H, W, C), xr("xr", N, Hr, Wr, C);
  Kokkos::View<std::byte*, Space> workspace("workspace",
                                            ssb::workspace_size<float>(N, H, W, Hr, Wr));
  Kokkos::deep_copy(saliency, 1.0f);
  saliency(1, 2, 3) = 40.0f;
  Kokkos::deep_copy(x, 0.5f);
  const auto weights = ssb::weights_view<float>(workspace, N, H, W, Hr, Wr);
  ssb::compute_weights(Space{}, saliency, Hr, Wr, weights);
  ssb::sample(Space{}, weights, x, xr);
  int wrong = 0;
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < Hr; ++i)
      for (int j = 0; j < Wr; ++j)
        for (int c = 0; c < C; ++c) wrong += xr(n, i, j, c) < 0.4999f || xr(n, i, j, c) > 0.5001f;
  std::printf("%s: xr(1, 0, 0, 0) = %g, %d elements off\n", Space::name(), double(xr(1, 0, 0, 0)),
              wrong);
  return wrong == 0 ? 0 : 1;
}
