#!/usr/bin/env bash
# The Kokkos backend's tests, twice (Debian 12, run from anywhere):
#   1. on Debian's Kokkos (libtrilinos-kokkos-dev, Kokkos 3.4, Serial only);
#   2. on a Kokkos with OpenMP and Serial built from Debian's trilinos source package by
#      cmake/build_kokkos.sh (cached: later runs reuse the install), with OMP_NUM_THREADS=2 and
#      OMP_PROC_BIND=false.
# Each: configure with -DSSB_ENABLE_KOKKOS=ON (no benchmarks or examples), build only the Kokkos
# test targets, run the "kokkos:" tests with ctest.
#
# Build folders: <repo>/build/kokkos-debian and <repo>/build/kokkos-openmp.
# Environment: SSB_BUILD_ROOT (instead of <repo>/build), SSB_JOBS (default: nproc),
# SSB_BUILD_TYPE (default Release), SSB_KOKKOS_SKIP_DEBIAN=1 / SSB_KOKKOS_SKIP_OPENMP=1 to run only
# one of the two; cmake/build_kokkos.sh's SSB_CACHE_DIR and SSB_KOKKOS_PREFIX.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_root=${SSB_BUILD_ROOT:-$repo/build}
jobs=${SSB_JOBS:-$(nproc)}
build_type=${SSB_BUILD_TYPE:-Release}

log() { echo "run_kokkos.sh: $*"; }

# Packages: the compiler, CMake, doctest, Debian's Kokkos (when root with apt-get).
packages=(g++ cmake make doctest-dev libtrilinos-kokkos-dev)
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

# configure + build the Kokkos test targets + ctest, in build folder $1, with extra cmake args.
run_suite() {
  local name=$1
  shift
  local dir=$build_root/kokkos-$name start=$SECONDS
  log "[$name] configure $dir"
  cmake -S "$repo" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE="$build_type" \
    -DSSB_ENABLE_KOKKOS=ON -DSSB_WERROR=ON -DSSB_BUILD_TESTS=ON -DSSB_BUILD_BENCHMARKS=OFF \
    -DSSB_BUILD_EXAMPLES=OFF "$@"
  log "[$name] build"
  cmake --build "$dir" -j "$jobs" --target ssb_tests_kokkos ssb_tests_kokkos_portable \
    ssb_kokkos_compile_checks
  log "[$name] test"
  bash "$repo/tests/run_ctest.sh" "${dir#"$repo"/}" --test-dir "$dir" -R '^kokkos:' -j "$jobs" \
    --output-on-failure
  log "[$name] passed in $((SECONDS - start)) s"
}

if [[ ${SSB_KOKKOS_SKIP_DEBIAN:-0} != 1 ]]; then
  # Debian's Kokkos is found in /usr through its (shimmed) CMake config.
  run_suite debian -DKokkos_ROOT=/usr
fi

if [[ ${SSB_KOKKOS_SKIP_OPENMP:-0} != 1 ]]; then
  start=$SECONDS
  prefix=$(bash "$repo/cmake/build_kokkos.sh" | tail -n 1)
  log "Kokkos with OpenMP: $prefix ($((SECONDS - start)) s)"
  OMP_NUM_THREADS=2 OMP_PROC_BIND=false run_suite openmp -DKokkos_ROOT="$prefix"
fi
