#!/bin/sh
# Builds the CUDA tests and benchmarks here (where nvcc, doctest and Google Benchmark are) and packs
# them, with the shared libraries a bare GPU machine may lack (Google Benchmark, the CUDA runtime),
# into one folder, for `tests/device/run.sh --prebuilt FOLDER` on a GPU machine that has a CUDA
# driver and cuBLAS but no compiler toolchain for them (as the lent H100 / H200 machines: no
# doctest, no Google Benchmark, no network).
#
#   tests/device/pack.sh [FOLDER]          (default .device-pack, git-ignored)
# It empties FOLDER first but keeps an ssb_tests_kokkos_device there (tests/device/kokkos_cuda.sh
# puts it there; the two may run in either order).
# Environment: SSB_DEVICE_ARCH (CMAKE_CUDA_ARCHITECTURES; default 90: H100 and H200);
# SSB_DEVICE_VARIANTS="NAME:FLAGS;NAME:@REV;..." builds ssb_bench_cuda again for each NAME into
# FOLDER/bench_NAME, for tests/device/ab.sh: with CMAKE_CUDA_FLAGS=FLAGS (for example
# -DSSB_GPU_ROW_UNROLL=4), or, for @REV, git revision REV as it is (from a temporary worktree).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
pack=${1:-$root/.device-pack}
build=$root/build-device-pack
[ -x /usr/local/cuda/bin/nvcc ] && PATH=/usr/local/cuda/bin:$PATH && export PATH
configure() {  # SOURCE BUILD CUDA_FLAGS
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DSSB_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${SSB_DEVICE_ARCH:-90}" -DSSB_BUILD_EXAMPLES=OFF \
    -DSSB_BENCH_OPENBLAS=OFF -DSSB_BENCH_NATIVE=OFF -DSSB_ENABLE_HIP=OFF \
    -DCMAKE_CUDA_FLAGS="$3" >/dev/null
}
configure "$root" "$build" ""
cmake --build "$build" -j"$(nproc)" --target ssb_tests_cuda ssb_bench_cuda
if [ -d "$pack" ]; then
  find "$pack" -mindepth 1 -maxdepth 1 ! -name ssb_tests_kokkos_device -exec rm -rf {} +
fi
mkdir -p "$pack/lib"
cp "$build/tests/cuda/ssb_tests_cuda" "$build/bench/ssb_bench_cuda" "$pack/"
# The libraries the binaries load that are not the C/C++ runtime, the driver or cuBLAS (which
# the GPU machine brings: run.sh looks for it).
for lib in libbenchmark libcudart; do
  path=$(ldd "$pack/ssb_bench_cuda" | awk -v l="$lib" '$1 ~ "^"l {print $3}')
  [ -n "$path" ] && cp -L "$path" "$pack/lib/$(basename "$path")"
done
variants=${SSB_DEVICE_VARIANTS:-}
set -f
saved_ifs=$IFS
IFS=';'
for variant in $variants; do
  IFS=$saved_ifs
  name=${variant%%:*}
  spec=${variant#*:}
  source=$root
  flags=$spec
  case $spec in
    @*)
      source=$build-source-$name
      rm -rf "$source"
      git -C "$root" worktree add -f --detach "$source" "${spec#@}" >/dev/null
      flags=
      ;;
  esac
  configure "$source" "$build-$name" "$flags"
  cmake --build "$build-$name" -j"$(nproc)" --target ssb_bench_cuda
  cp "$build-$name/bench/ssb_bench_cuda" "$pack/bench_$name"
  [ "$source" = "$root" ] || git -C "$root" worktree remove --force "$source"
done
IFS=$saved_ifs
set +f
echo "device/pack.sh: $(du -sh "$pack" | cut -f1) in $pack:"
ls "$pack" "$pack/lib"
