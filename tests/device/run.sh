#!/bin/sh
# On a machine with an NVIDIA GPU: builds the CUDA tests and benchmarks for that GPU, runs the
# tests (ctest) and the benchmarks, and prints the summary table (bench/cuda_summary.py). One go,
# well under 8 minutes on an H100 (the build is most of it).
#
#   tests/device/run.sh [BUILD_DIR]          (default build-device)
# Environment: SSB_DEVICE_ARCH (CMAKE_CUDA_ARCHITECTURES; default: the GPU's own, from
# nvidia-smi, else 80;90), SSB_DEVICE_BENCH_FILTER (--benchmark_filter; default all), OUT (a
# folder for the JSON, the test log and the table; default BUILD_DIR/device-results).
# Needs: cmake >= 3.20, g++, nvcc (CUDA 12 or 13; PATH or /usr/local/cuda), and the headers and
# libraries of doctest and Google Benchmark (Debian: doctest-dev libbenchmark-dev).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-device}
out=${OUT:-$build/device-results}
mkdir -p "$out"
[ -x /usr/local/cuda/bin/nvcc ] && PATH=/usr/local/cuda/bin:$PATH && export PATH
if [ -z "${SSB_DEVICE_ARCH:-}" ]; then
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
  SSB_DEVICE_ARCH=${cap:-"80;90"}
fi
echo "device/run.sh: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi'); CUDA architectures $SSB_DEVICE_ARCH"
start=$(date +%s)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSSB_ENABLE_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$SSB_DEVICE_ARCH" -DSSB_BUILD_EXAMPLES=OFF -DSSB_BENCH_OPENBLAS=OFF \
  >"$out/configure.log" 2>&1 || { tail -n 30 "$out/configure.log"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target ssb_tests_cuda ssb_bench_cuda >"$out/build.log" 2>&1 ||
  { tail -n 40 "$out/build.log"; exit 1; }
echo "device/run.sh: built in $(( $(date +%s) - start )) s"
status=0
(cd "$build" && ctest -R '^cuda_tests$' --output-on-failure) >"$out/tests.log" 2>&1 || status=1
tail -n 15 "$out/tests.log"
"$build/bench/ssb_bench_cuda" --benchmark_out="$out/cuda.json" --benchmark_out_format=json \
  --benchmark_min_time=0.05 ${SSB_DEVICE_BENCH_FILTER:+--benchmark_filter="$SSB_DEVICE_BENCH_FILTER"} \
  >"$out/bench.log" 2>&1 || { tail -n 20 "$out/bench.log"; status=1; }
if command -v python3 >/dev/null 2>&1 && [ -f "$out/cuda.json" ]; then
  python3 "$root/bench/cuda_summary.py" "$out/cuda.json" --out "$out/summary.md"
else
  grep -E '^(sample|sample_inverse|dense_cublas_sample|bw_copy)/cuda/NHWC' "$out/bench.log" || true
fi
echo "device/run.sh: done in $(( $(date +%s) - start )) s (results in $out)"
exit $status
