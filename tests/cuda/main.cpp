// The CUDA tests' main: without a CUDA device the whole executable reports itself skipped (exit
// code 77, ctest's SKIP_RETURN_CODE for it), never passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "cuda_mirror.hpp"

int main(int argc, char** argv) {
  std::string why;
  if (test::cuda_device_count(&why) == 0) {
    std::printf("skipped: no CUDA device (%s)\n", why.c_str());
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
