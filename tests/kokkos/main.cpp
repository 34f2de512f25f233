// doctest main of the Kokkos tests: Kokkos is initialised (from --kokkos-* arguments and the
// environment, e.g. OMP_NUM_THREADS) around the whole run.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <Kokkos_Core.hpp>

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  doctest::Context context(argc, argv);
  return context.run();
}
