// Compile-time refusals of <ssb/kokkos.hpp>. SSB_COMPILE_FAIL_CASE selects one:
//   0  valid calls (built with the tests: proves the harness compiles when nothing is wrong)
//   1  a view in a memory space the execution space cannot access
//   2  a rank-4 LayoutLeft feature map
//   3  a first argument that is not an execution space
// Cases 1-3 are built by CTest, which expects the build to fail with the static_assert's message
// (tests/CMakeLists.txt).
#include <Kokkos_Core.hpp>
#include <cstddef>
#include <ssb/kokkos.hpp>

#ifndef SSB_COMPILE_FAIL_CASE
#define SSB_COMPILE_FAIL_CASE 0
#endif

#if defined(KOKKOS_ENABLE_SERIAL)
using Space = Kokkos::Serial;
#else
using Space = Kokkos::DefaultHostExecutionSpace;
#endif

// A memory space no host execution space can access (as CudaSpace is from Kokkos::Serial): only
// its type is used, nothing is allocated in it.
struct UnreachableSpace {
  using memory_space = UnreachableSpace;
  using execution_space = Space;
  using device_type = Kokkos::Device<execution_space, memory_space>;
  using size_type = std::size_t;
  static constexpr const char* name() { return "UnreachableSpace"; }
  void* allocate(std::size_t) const { return nullptr; }
  void deallocate(void*, std::size_t) const {}
};

void valid(const Kokkos::View<float****>& x, const Kokkos::View<float****>& xr,
           const ssb::KokkosWeights<float, Kokkos::View<std::byte*>>& weights) {
  ssb::sample(Space{}, weights, x, xr);
  ssb::sample(Space{}, weights, x, xr, ssb::Layout::nchw);
}

#if SSB_COMPILE_FAIL_CASE == 1
void wrong_memory_space(const Kokkos::View<float****, UnreachableSpace>& x,
                        const Kokkos::View<float****>& xr,
                        const ssb::KokkosWeights<float, Kokkos::View<std::byte*>>& weights) {
  ssb::sample(Space{}, weights, x, xr);
}
#elif SSB_COMPILE_FAIL_CASE == 2
void layout_left(const Kokkos::View<float****, Kokkos::LayoutLeft>& x,
                 const Kokkos::View<float****>& xr,
                 const ssb::KokkosWeights<float, Kokkos::View<std::byte*>>& weights) {
  ssb::sample(Space{}, weights, x, xr);
}
#elif SSB_COMPILE_FAIL_CASE == 3
void not_a_space(const Kokkos::View<float****>& x, const Kokkos::View<float****>& xr,
                 const ssb::KokkosWeights<float, Kokkos::View<std::byte*>>& weights) {
  ssb::sample(Kokkos::HostSpace{}, weights, x, xr);
}
#endif
