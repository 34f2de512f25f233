#!/bin/sh
# On a machine with an NVIDIA GPU: the CUDA tests, the CUDA benchmarks and the summary table
# (bench/cuda_summary.py), in one go, well under 8 minutes (prebuilt, both passes: 185-187 s on
# an H200).
#
#   tests/device/run.sh [BUILD_DIR]            builds them here first (default build-device)
#   tests/device/run.sh --prebuilt FOLDER      runs what tests/device/pack.sh built elsewhere
#
# Steps: the tests (the whole suite, then its CUDA-only cases again in a second process and under
# compute-sanitizer memcheck when it is there), the benchmarks (5 repetitions, medians), the table;
# then the NHWC float benchmarks again with calls back to back, and their table.
# Prebuilt, the Kokkos device test too when FOLDER has ssb_tests_kokkos_device (from
# tests/device/kokkos_cuda.sh, run before or after pack.sh).
# Environment: SSB_DEVICE_ARCH (CMAKE_CUDA_ARCHITECTURES when building; default: the GPU's own,
# from nvidia-smi, else 80;90), SSB_DEVICE_BENCH_FILTER (--benchmark_filter; default all),
# SSB_DEVICE_BENCH_CALLS (a second pass over the NHWC float rows with that many calls back to
# back per timing, ssb_bench_cuda --ssb_calls; default 10, 0 skips it), OUT (a
# folder for the JSON, the logs and the table; default BUILD_DIR/device-results or
# FOLDER/results).
# Building needs cmake >= 3.20, g++, nvcc (CUDA 12 or 13; PATH or /usr/local/cuda), and doctest and
# Google Benchmark (Debian: doctest-dev libbenchmark-dev). Prebuilt needs the CUDA driver and
# cuBLAS (libcublas.so.13: /usr/local/cuda, or the nvidia-cublas Python package).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -d /usr/local/cuda/bin ]; then PATH=/usr/local/cuda/bin:$PATH; fi
export PATH
start=$(date +%s)
echo "device/run.sh: $(nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem \
  --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
if [ "${1:-}" = "--prebuilt" ]; then
  pack=$(cd "${2:?usage: run.sh --prebuilt FOLDER}" && pwd)
  out=${OUT:-$pack/results}
  tests=$pack/ssb_tests_cuda
  bench=$pack/ssb_bench_cuda
  . "$root/tests/device/libs.sh"
  if ldd "$bench" | grep -q "not found"; then
    ldd "$bench" | grep "not found"
    echo "device/run.sh: a library is missing (see above)"
    exit 1
  fi
else
  build=${1:-$root/build-device}
  out=${OUT:-$build/device-results}
  mkdir -p "$out"
  if [ -z "${SSB_DEVICE_ARCH:-}" ]; then
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 |
      tr -d ' .')
    SSB_DEVICE_ARCH=${cap:-"80;90"}
  fi
  echo "device/run.sh: building for CUDA architectures $SSB_DEVICE_ARCH"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSSB_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$SSB_DEVICE_ARCH" -DSSB_BUILD_EXAMPLES=OFF \
    -DSSB_BENCH_OPENBLAS=OFF >"$out/configure.log" 2>&1 || { tail -n 30 "$out/configure.log"; exit 1; }
  cmake --build "$build" -j"$(nproc)" --target ssb_tests_cuda ssb_bench_cuda >"$out/build.log" 2>&1 ||
    { tail -n 40 "$out/build.log"; exit 1; }
  echo "device/run.sh: built in $(( $(date +%s) - start )) s"
  tests=$build/tests/cuda/ssb_tests_cuda
  bench=$build/bench/ssb_bench_cuda
fi
mkdir -p "$out"
status=0

echo "== tests"
"$tests" --duration=true >"$out/tests.log" 2>&1 || status=1
grep -E "^\[doctest\] (test cases|assertions|Status)" "$out/tests.log" || tail -n 20 "$out/tests.log"
[ $status = 0 ] || grep -B 2 -A 12 "ERROR" "$out/tests.log" | head -n 80
echo "== the CUDA-only cases again, in a new process"
"$tests" -tc='CUDA*' >"$out/tests-again.log" 2>&1 || status=1
grep -E "^\[doctest\] (test cases|Status)" "$out/tests-again.log" || tail -n 20 "$out/tests-again.log"
if command -v compute-sanitizer >/dev/null 2>&1; then
  echo "== the CUDA-only cases under compute-sanitizer memcheck"
  compute-sanitizer --tool memcheck --error-exitcode 9 "$tests" -tc='CUDA*' >"$out/memcheck.log" 2>&1 ||
    status=1
  grep -E "ERROR SUMMARY|^\[doctest\] Status" "$out/memcheck.log"
fi
if [ -n "${pack:-}" ] && [ -f "$pack/ssb_tests_kokkos_device" ]; then
  echo "== the Kokkos device test (Kokkos 3.4 + CUDA 11.8, sm_80)"
  kokkos_status=0
  CUDA_MODULE_LOADING=LAZY "$pack/ssb_tests_kokkos_device" >"$out/kokkos-device.log" 2>&1 ||
    kokkos_status=1
  grep -E "^\[doctest\] (test cases|assertions|Status)" "$out/kokkos-device.log" ||
    tail -n 20 "$out/kokkos-device.log"
  if [ $kokkos_status != 0 ]; then
    status=1
    grep -B 2 -A 12 "ERROR" "$out/kokkos-device.log" | head -n 80
  fi
  if command -v compute-sanitizer >/dev/null 2>&1; then
    echo "== the Kokkos device test under compute-sanitizer memcheck"
    CUDA_MODULE_LOADING=LAZY compute-sanitizer --tool memcheck --error-exitcode 9 \
      "$pack/ssb_tests_kokkos_device" >"$out/kokkos-memcheck.log" 2>&1 || status=1
    grep -E "ERROR SUMMARY|^\[doctest\] Status" "$out/kokkos-memcheck.log"
  fi
fi
echo "device/run.sh: tests done at $(( $(date +%s) - start )) s"

echo "== benchmarks"
"$bench" --benchmark_out="$out/cuda.json" --benchmark_out_format=json \
  --benchmark_min_time=0.05 --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  ${SSB_DEVICE_BENCH_FILTER:+--benchmark_filter="$SSB_DEVICE_BENCH_FILTER"} \
  >"$out/bench.log" 2>&1 || { tail -n 20 "$out/bench.log"; status=1; }
if command -v python3 >/dev/null 2>&1 && [ -f "$out/cuda.json" ]; then
  python3 "$root/bench/cuda_summary.py" "$out/cuda.json" --out "$out/summary.md"
else
  grep -E '^(sample|sample_inverse|dense_cublas_sample|bw_copy)/cuda/NHWC.*median' "$out/bench.log" || true
fi
calls=${SSB_DEVICE_BENCH_CALLS:-10}
if [ "$calls" -gt 0 ] 2>/dev/null; then
  echo "== benchmarks, $calls calls back to back per timing (NHWC float)"
  # The timed figure is per call, so the minimum time is divided by the calls: 0.05 s of GPU time
  # per repetition, as in the first pass.
  "$bench" --ssb_calls="$calls" --benchmark_out="$out/cuda-calls.json" --benchmark_out_format=json \
    --benchmark_min_time="$(awk -v c="$calls" 'BEGIN { print 0.05 / c }')" \
    --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    --benchmark_filter="${SSB_DEVICE_BENCH_FILTER:-^(empty_kernel|bw_copy|compute_weights|compute_weights_backward|sample|sample_inverse|sample_backward|sample_inverse_backward|dense_cublas_sample)/cuda/NHWC/}" \
    >"$out/bench-calls.log" 2>&1 || { tail -n 20 "$out/bench-calls.log"; status=1; }
  if command -v python3 >/dev/null 2>&1 && [ -f "$out/cuda-calls.json" ]; then
    python3 "$root/bench/cuda_summary.py" "$out/cuda-calls.json" --out "$out/summary-calls.md"
  fi
fi
echo "device/run.sh: done in $(( $(date +%s) - start )) s, status $status (results in $out)"
exit $status
