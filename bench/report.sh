#!/bin/sh
# Builds ssb_bench (Release, -march=native), runs it with JSON output and writes the markdown report.
#
#   bench/report.sh [-b BUILD_DIR] [-n NAME] [-r REV] [-- ssb_bench flags...]
#     -b  build directory (default build-bench, or build-bench-REV with -r); configured and built
#     -r  benchmark the library as committed at git revision REV (exported with git archive into
#         BUILD_DIR/src, with this working tree's bench/), not the working tree
#     -n  result name: bench/results/NAME.json and NAME.md (default: full, whose markdown is
#         bench/results/REPORT.md, or subset when flags are given)
#   bench/report.sh -n g2 -- --benchmark_filter='_g2_'      # a subset, laid over the full run
#   (names are verb/backend/layout/saliency/shape, e.g. '^sample/openmp2/NHWC/sigmoid/coco'):
#   python3 bench/report.py bench/results/full.json bench/results/g2.json
# Environment: SSB_BENCH_THREADS (default 2), SSB_BENCH_WAIT_IDLE (seconds to wait for idle CPUs,
# default 120), SSB_BENCH_RETRIES (reruns of disturbed shapes, default 2), SSB_BENCH_ARGS
# (ssb_bench flags, put before the command line's), SSB_BENCH_CMAKE_ARGS (extra configure flags,
# e.g. "-DSSB_ENABLE_KOKKOS=ON -DKokkos_ROOT=$(bash cmake/build_kokkos.sh | tail -n 1)" to add
# the Kokkos backend), SSB_BENCH_BINARY (skip the build; used by the CMake target bench_report).
# Missing Debian 12 packages are installed with apt-get (as root or via sudo).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=
name=
rev=
while [ $# -gt 0 ]; do
  case "$1" in
    -b) build=$2; shift 2 ;;
    -n) name=$2; shift 2 ;;
    -r) rev=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | grep '^#'; exit 0 ;;
    *) break ;;
  esac
done
# shellcheck disable=SC2086  # SSB_BENCH_ARGS is a list of flags
[ -z "${SSB_BENCH_ARGS:-}" ] || set -- $SSB_BENCH_ARGS "$@"
[ -n "$name" ] || { [ $# -gt 0 ] && name=subset || name=full; }
[ -n "$build" ] || build=build-bench${rev:+-$rev}
cd "$root"

# Packages (Debian 12 names).
missing=
command -v python3 >/dev/null 2>&1 && python3 -c 'import json' 2>/dev/null || missing="$missing python3"
if [ -z "${SSB_BENCH_BINARY:-}" ]; then
  command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
  command -v make >/dev/null 2>&1 || missing="$missing make"
  command -v c++ >/dev/null 2>&1 || missing="$missing g++"
  dpkg -s libbenchmark-dev >/dev/null 2>&1 || missing="$missing libbenchmark-dev"
  dpkg -s libopenblas-dev >/dev/null 2>&1 || missing="$missing libopenblas-dev"
fi
if [ -n "$missing" ]; then
  echo "report.sh: installing$missing" >&2
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  # shellcheck disable=SC2086  # $missing is a list of packages
  $sudo apt-get update && $sudo apt-get install -y --no-install-recommends $missing
fi

# The library state measured: the commit, plus a hash of uncommitted changes to its headers.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- include backends 2>/dev/null)" ]; then
  commit="$commit+dirty.$( (git diff HEAD -- include backends; git ls-files -o --exclude-standard \
    include backends | xargs -r cat) | sha1sum | cut -c1-8)"
fi

src=.
if [ -n "$rev" ]; then
  commit=$(git rev-parse --short "$rev")
  src=$build/src
  rm -rf "$src" && mkdir -p "$src"
  git archive "$rev" | tar -x -C "$src"
  rm -rf "$src/bench" && mkdir "$src/bench"
  find bench -maxdepth 1 -type f -exec cp {} "$src/bench/" \;
fi

binary=${SSB_BENCH_BINARY:-}
if [ -z "$binary" ]; then
  # shellcheck disable=SC2086  # SSB_BENCH_CMAKE_ARGS is a list of flags
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSSB_BUILD_TESTS=OFF -DSSB_BUILD_EXAMPLES=OFF \
    -DSSB_BUILD_BENCHMARKS=ON ${SSB_BENCH_CMAKE_ARGS:-} >/dev/null
  cmake --build "$build" -j"$(nproc)" --target ssb_bench
  binary=$build/bench/ssb_bench
fi

# Percent of CPU time busy over 2 s, from /proc/stat (all CPUs).
cpu_busy() {
  read -r _ u n s i w q sq st _ </proc/stat
  t1=$((u + n + s + i + w + q + sq + st)); i1=$((i + w))
  sleep 2
  read -r _ u n s i w q sq st _ </proc/stat
  t2=$((u + n + s + i + w + q + sq + st)); i2=$((i + w))
  echo $((100 - 100 * (i2 - i1) / (t2 - t1 + 1)))
}
# Timings with several threads on a small machine are only good when nothing else runs: wait up
# to SSB_BENCH_WAIT_IDLE seconds (default 120) for the CPUs to be under 10% busy.
wait_idle() {
  waited=0
  busy=$(cpu_busy)
  while [ "$busy" -gt 10 ] && [ "$waited" -lt "${SSB_BENCH_WAIT_IDLE:-120}" ]; do
    [ "$waited" -gt 0 ] || echo "report.sh: CPUs $busy% busy; waiting for them to go idle" >&2
    sleep 8; waited=$((waited + 10)); busy=$(cpu_busy)
  done
  [ "$busy" -le 10 ] || echo "report.sh: WARNING: CPUs still $busy% busy; timings will be noisy" >&2
}

times_file=$(mktemp)
trap 'rm -f "$times_file"' EXIT

# run OUT [FLAGS...]: one ssb_bench run, with the share of the CPU time other processes took
# written into OUT's context (other_processes_cpu_pct) by report.py --annotate.
run() {
  run_out=$1; shift
  wait_idle
  echo "report.sh: $binary -> $run_out (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  start=$(date +%s)
  times >"$times_file"  # in this shell: a pipeline or $(...) would not see its children
  children0=$(tail -n 1 "$times_file")
  read -r _ u n s i w q sq st _ </proc/stat
  stat_busy0=$((u + n + s + q + sq + st)); stat_all0=$((stat_busy0 + i + w))
  "$binary" --benchmark_out="$run_out" --benchmark_out_format=json \
    --benchmark_context="git_commit=$commit,cpu_busy_before_run=$busy%" "$@"
  seconds=$(( $(date +%s) - start ))
  read -r _ u n s i w q sq st _ </proc/stat
  stat_busy1=$((u + n + s + q + sq + st)); stat_all1=$((stat_busy1 + i + w))
  times >"$times_file"
  # All busy CPU time minus ssb_bench's own (the growth of this shell's children times).
  others=$(printf '%s\n%s\n' "$children0" "$(tail -n 1 "$times_file")" | awk \
    -v busy=$((stat_busy1 - stat_busy0)) -v all=$((stat_all1 - stat_all0)) \
    -v hz="$(getconf CLK_TCK)" '
    function secs(t) { split(t, a, "m"); return a[1] * 60 + a[2] }
    NR == 1 { own0 = secs($1) + secs($2) }
    NR == 2 { own = (secs($1) + secs($2) - own0) * hz; p = all > 0 ? 100 * (busy - own) / all : 0
              printf "%.1f", p < 0 ? 0 : p }')
  python3 bench/report.py --annotate "$run_out" run_seconds="$seconds" \
    other_processes_cpu_pct="$others"
  echo "report.sh: ran in $seconds s; other processes used $others% of the CPU time" >&2
}

mkdir -p bench/results
out=bench/results/$name.json
rm -f "bench/results/$name-retry"*.json
run "$out" "$@"
files=$out
# Shapes whose timings look disturbed (report.py's Report.disturbed) are rerun, at most
# SSB_BENCH_RETRIES times (default 2); later files' results replace earlier ones in the report.
retry=1
while [ "$retry" -le "${SSB_BENCH_RETRIES:-2}" ]; do
  # shellcheck disable=SC2086
  filter=$(python3 bench/report.py $files --disturbed)
  [ -n "$filter" ] || break
  echo "report.sh: rerunning disturbed results ($(echo "$filter" | tr '|' '\n' | wc -l))" >&2
  run "bench/results/$name-retry$retry.json" "$@" --benchmark_filter="$filter"
  files="$files bench/results/$name-retry$retry.json"
  retry=$((retry + 1))
done
md=bench/results/REPORT.md; [ "$name" = full ] || md=bench/results/$name.md
# shellcheck disable=SC2086
python3 bench/report.py $files --out "$md"
echo "report.sh: wrote $md" >&2
