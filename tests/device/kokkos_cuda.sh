#!/usr/bin/env bash
# Builds the Kokkos device test (ssb_tests_kokkos_device: every verb on Kokkos::Cuda views against
# the serial reference) here, where there is no GPU, and puts it into .device-pack/ for
# `tests/device/run.sh --prebuilt .device-pack` on a GPU machine, which runs it after the CUDA
# tests. Steps: cmake/fetch_cuda118.sh (CUDA 11.8 from Debian bookworm non-free, and g++-11),
# cmake/build_kokkos.sh with SSB_KOKKOS_CUDA_ROOT (Kokkos 3.4 Serial + CUDA, sm_80 code and
# compute_80 PTX, which an H100 JIT-compiles; both cached in $SSB_CACHE_DIR), then this project
# with Kokkos' nvcc_wrapper as the C++ compiler and SSB_WERROR=ON.
#
#   bash tests/device/kokkos_cuda.sh [BUILD_DIR]      (default build-kokkos-cuda; as root the first
#                                                     time: apt-get, about 1 GB of downloads)
#
# With the device tool: run tests/device/pack.sh (run.sh --prebuilt needs its CUDA binaries too)
# and this script, in either order (pack.sh keeps the binary this script put in .device-pack),
# carry .device-pack, and run `sh tests/device/run.sh --prebuilt .device-pack` there; the Kokkos
# test's log is .device-pack/results/kokkos-device.log. The binary needs only the CUDA driver
# (the CUDA runtime is linked statically); alone, run it as
# `CUDA_MODULE_LOADING=LAZY .device-pack/ssb_tests_kokkos_device` (LAZY: the driver JIT-compiles
# only the kernels used). Kokkos warns that the code is for compute capability 8.0 on a 9.0
# device: expected.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-kokkos-cuda}
pack=$root/.device-pack
start=$(date +%s)

cuda=$(bash "$root/cmake/fetch_cuda118.sh" | tail -n 1)
echo "kokkos_cuda.sh: CUDA 11.8 in $cuda ($(($(date +%s) - start)) s)"
prefix=$(SSB_KOKKOS_CUDA_ROOT=$cuda bash "$root/cmake/build_kokkos.sh" | tail -n 1)
echo "kokkos_cuda.sh: Kokkos in $prefix ($(($(date +%s) - start)) s)"

# A build folder configured with another compiler (another Kokkos) is started afresh: CMake would
# otherwise drop its cache and configure again without the options below.
if [[ -f $build/CMakeCache.txt ]] &&
  ! grep -qxF "CMAKE_CXX_COMPILER:STRING=$prefix/bin/nvcc_wrapper" "$build/CMakeCache.txt"; then
  echo "kokkos_cuda.sh: $build was configured with another compiler; removing it"
  rm -rf "$build"
fi
cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER="$prefix/bin/nvcc_wrapper" \
  -DKokkos_ROOT="$prefix" -DCMAKE_BUILD_TYPE=Release -DSSB_ENABLE_KOKKOS=ON -DSSB_BUILD_TESTS=ON \
  -DSSB_BUILD_BENCHMARKS=OFF -DSSB_BUILD_EXAMPLES=OFF -DSSB_ENABLE_OPENMP=OFF -DSSB_WERROR=ON
cmake --build "$build" -j"$(nproc)" --target ssb_tests_kokkos_device
binary=$build/tests/kokkos/ssb_tests_kokkos_device

# The CUDA runtime is static and the driver is loaded at run time: neither may be a dependency.
if ldd "$binary" | grep -E "libcuda(rt)?\.so"; then
  echo "kokkos_cuda.sh: $binary links the CUDA runtime or driver dynamically"
  exit 1
fi
ptx=$("$cuda/bin/cuobjdump" --list-ptx "$binary" | grep -c "sm_80\.ptx" || true)
if [[ $ptx == 0 ]]; then
  echo "kokkos_cuda.sh: no sm_80 PTX in $binary"
  exit 1
fi
mkdir -p "$pack"
cp "$binary" "$pack/"
echo "kokkos_cuda.sh: $pack/ssb_tests_kokkos_device ($ptx sm_80 PTX files) in" \
  "$(($(date +%s) - start)) s"
