#!/bin/sh
# On a machine with an NVIDIA GPU: an A/B of the CUDA benchmarks of several builds, for
# comparisons within one lent session (a fresh machine's figures are not comparable with another
# machine's). tests/device/pack.sh builds the default binaries and, from SSB_DEVICE_VARIANTS, a
# bench_NAME for each variant; this script runs FOLDER/ssb_bench_cuda and every FOLDER/bench_*
# one after another, ROUNDS times, each with 10 calls back to back per timing and 3
# repetitions (medians), then prints each build's times against the default's
# (bench/cuda_ab.py).
#
#   tests/device/ab.sh FOLDER [FILTER]
# FILTER: --benchmark_filter (default: the NHWC float gathers and backward verbs).
# Environment: SSB_AB_ROUNDS (default 1; rounds after the first run the builds in reverse order),
# SSB_AB_SECONDS (stop starting runs after this many seconds; default 300), OUT (the JSON files
# and the table; default FOLDER/ab).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
pack=$(cd "${1:?usage: ab.sh FOLDER [FILTER]}" && pwd)
filter=${2:-'^(sample|sample_inverse|sample_backward|sample_inverse_backward)/cuda/NHWC/'}
out=${OUT:-$pack/ab}
mkdir -p "$out"
. "$root/tests/device/libs.sh"
start=$(date +%s)
builds=default
for b in "$pack"/bench_*; do
  [ -x "$b" ] && builds="$builds ${b##*/bench_}"
done
reversed=$(echo "$builds" | tr ' ' '\n' | sed -n '1!G;h;$p' | tr '\n' ' ')
rounds=${SSB_AB_ROUNDS:-1}
round=1
while [ "$round" -le "$rounds" ]; do
  order=$builds
  [ $((round % 2)) = 0 ] && order=$reversed
  for name in $order; do
    if [ $(( $(date +%s) - start )) -gt "${SSB_AB_SECONDS:-300}" ]; then
      echo "device/ab.sh: out of time before $name, round $round"
      break 2
    fi
    bin=$pack/bench_$name
    [ "$name" = default ] && bin=$pack/ssb_bench_cuda
    "$bin" --ssb_calls=10 --benchmark_filter="$filter" --benchmark_min_time=0.005 \
      --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
      --benchmark_out="$out/${name}_$round.json" --benchmark_out_format=json \
      >"$out/${name}_$round.log" 2>&1 || { tail -n 20 "$out/${name}_$round.log"; exit 1; }
    echo "device/ab.sh: $name, round $round, done at $(( $(date +%s) - start )) s"
  done
  round=$((round + 1))
done
files=$(for name in $builds; do
  r=1
  while [ "$r" -le "$rounds" ]; do
    [ -f "$out/${name}_$r.json" ] && echo "$out/${name}_$r.json"
    r=$((r + 1))
  done
done)
# shellcheck disable=SC2086 # one path per word (no spaces in the names ab.sh writes)
python3 "$root/bench/cuda_ab.py" $files --out "$out/ab.md"
