#!/usr/bin/env bash
# The GPU backends on a machine without a GPU: compiles the CUDA backend's tests, benchmarks and
# header check with nvcc (when a CUDA toolkit is there: /usr/local/cuda or nvcc on PATH), and the
# HIP backend's test with Debian's hipcc for gfx90a, and ssb_torch.hpp's CUDA path against
# libtorch's headers when libtorch is installed (compile only); ctest then runs them, and each reports
# "skipped" (no CUDA / HIP device), never "passed". On a GPU machine, tests/device/run.sh runs
# the CUDA tests and benchmarks for real.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v hipcc >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends hipcc >/dev/null
fi

args=()
targets=()
tests=()
[ -x /usr/local/cuda/bin/nvcc ] && export PATH=/usr/local/cuda/bin:$PATH
if command -v nvcc >/dev/null; then
  args+=(-DSSB_ENABLE_CUDA=ON -DCMAKE_CUDA_COMPILER="$(command -v nvcc)")
  targets+=(ssb_tests_cuda ssb_cuda_header_check ssb_bench_cuda)
  tests+=(cuda_tests install_and_consume_cuda)
else
  echo "== ssbnet GPU: no nvcc (CUDA toolkit) on this machine: the CUDA backend is not compiled"
fi
if command -v hipcc >/dev/null; then
  args+=(-DSSB_ENABLE_HIP=ON)
  targets+=(ssb_tests_hip_build)
  tests+=(hip_tests)
else
  echo "== ssbnet GPU: no hipcc on this machine: the HIP backend is not compiled"
fi
[ ${#targets[@]} -gt 0 ] || exit 0

dir=build/gpu
echo "== ssbnet tests: $dir (${targets[*]})"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DSSB_WERROR=ON "${args[@]}"
# ssb_torch.hpp's CUDA path, compiled against libtorch's headers when examples/torch found
# libtorch (Debian's is CPU-only: nothing to link or run).
# (The target list first, whole: grep -q would close the pipe early and, with pipefail, fail.)
help=$(cmake --build "$dir" --target help)
if grep -q ssb_torch_cuda_check <<<"$help"; then
  targets+=(ssb_torch_cuda_check)
fi
# One build of ssb_gpu_checks (CMakeLists.txt), which depends on every one of these targets that
# the configuration has, so that they compile side by side (the Makefile generator builds several
# --target names one after the other). The loop checks that the build has each of them;
# CMakeLists.txt's list must name them all (one missing there would not be built).
for t in "${targets[@]}"; do
  if ! grep -qE "(^|[ :])$t( |\$)" <<<"$help"; then
    echo "tests/run_gpu.sh: the build in $dir has no target $t" >&2
    exit 1
  fi
done
cmake --build "$dir" -j"$(nproc)" --target ssb_gpu_checks
regex=$(IFS='|'; echo "^(${tests[*]})\$")
bash tests/run_ctest.sh "$dir" --test-dir "$dir" --output-on-failure -R "$regex"
