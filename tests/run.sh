#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root) or any machine that already has
# g++, CMake, doctest, libpng, Google Benchmark, OpenBLAS and libtorch: installs the packages, then
# compiles the GPU backends (their tests report "skipped" without a device), then builds and runs
# every test in a Release build (benchmarks and the libtorch example included), in an
# AddressSanitizer + UndefinedBehaviorSanitizer build (without libtorch) and on two Kokkos installs.
# The last lines are a summary: one line per ctest run, with its counts.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    g++ cmake make doctest-dev libpng-dev libbenchmark-dev libopenblas-dev libtorch-dev \
    zlib1g-dev dataset-fashion-mnist >/dev/null
fi

jobs=$(nproc)
# Each ctest run (tests/run_ctest.sh, here and in run_kokkos.sh / run_gpu.sh) appends its count
# line to this file.
export SSB_TEST_SUMMARY=$PWD/build/test-summary.txt
mkdir -p build && : >"$SSB_TEST_SUMMARY"

run_suite() {  # run_suite NAME CMAKE_ARGS...
  local dir=build/$1
  shift
  echo "== ssbnet tests: $dir"
  cmake -S . -B "$dir" -DSSB_WERROR=ON "$@"
  cmake --build "$dir" -j"$jobs"
  bash tests/run_ctest.sh "$dir" --test-dir "$dir" --output-on-failure -j"$jobs"
}

# The GPU backends on this GPU-less machine: the CUDA backend's tests and benchmarks compiled by
# nvcc (when a CUDA toolkit is installed) and the HIP test by Debian's hipcc; ctest reports their
# tests skipped (no device). tests/device/run.sh runs them on a GPU machine.
bash tests/run_gpu.sh

run_suite release -DCMAKE_BUILD_TYPE=Release
# The sanitized build prefetches in every NCHW channel-tile gather (SSB_NCHW_PREFETCH_MIN_BYTES=0;
# by default only over maps of 20 MiB or more, which no test has), so that path runs under ASan
# and UBSan too. It compiles at -O1 -g1 (ASan's recommended level; line tables, so reports still
# name file and line): at RelWithDebInfo's -O2 -g it took 7.1 minutes to build on 2 cores, at
# -O1 -g1 2.8 (the same 131 tests, in about the same 21 s).
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" \
  -DSSB_SANITIZE=ON -DSSB_BUILD_BENCHMARKS=OFF -DCMAKE_CXX_FLAGS=-DSSB_NCHW_PREFETCH_MIN_BYTES=0

# The Kokkos backend, on Debian's Kokkos (Serial) and on a Kokkos with OpenMP built from Debian's
# trilinos sources (cached in ~/.cache/ssbnet).
bash tests/run_kokkos.sh

echo "== ssbnet tests: summary (every ctest run above)"
cat "$SSB_TEST_SUMMARY"
