#!/usr/bin/env bash
# Builds Kokkos with the OpenMP and Serial execution spaces from Debian's `trilinos` source package
# (only packages/kokkos, as a standalone Kokkos CMake project) and installs it into a cache folder
# that later runs reuse. Prints the install prefix as the last line of stdout (use it as
# -DKokkos_ROOT=...); everything else goes to stderr.
#
#   prefix=$(bash cmake/build_kokkos.sh | tail -n 1)
#   cmake -S . -B build-kokkos-openmp -DSSB_ENABLE_KOKKOS=ON -DKokkos_ROOT="$prefix"
#
# With SSB_KOKKOS_CUDA_ROOT (a CUDA 11.8 toolkit root, from cmake/fetch_cuda118.sh; CUDA 12 and 13
# cannot build Kokkos 3.4) it builds Serial + CUDA instead (CUDA_LAMBDA, AMPERE80: sm_80 code and
# compute_80 PTX, which an H100 JIT-compiles; the static CUDA runtime), into
# kokkos-<version>-<suite>-cuda, with cmake/patches/kokkos-3.4-cuda-jit-arch.patch applied (without
# it Kokkos aborts on a GPU newer than sm_8x). <prefix>/bin/nvcc_wrapper is a patched copy (default
# arch sm_80, host compiler g++-11, always $SSB_KOKKOS_CUDA_ROOT/bin/nvcc whatever PATH and
# CUDA_ROOT say): use it as the consumer's C++ compiler (tests/device/kokkos_cuda.sh does it all).
#
#   export SSB_KOKKOS_CUDA_ROOT=$(bash cmake/fetch_cuda118.sh | tail -n 1)
#   prefix=$(bash cmake/build_kokkos.sh | tail -n 1)
#   cmake -S . -B build-kokkos-cuda -DCMAKE_CXX_COMPILER="$prefix/bin/nvcc_wrapper" \
#     -DSSB_ENABLE_KOKKOS=ON -DKokkos_ROOT="$prefix"
#
# Environment:
#   SSB_KOKKOS_PREFIX   install here (default: $SSB_CACHE_DIR/kokkos-<version>-<suite>-openmp,
#                       or -cuda)
#   SSB_KOKKOS_CUDA_ROOT  the CUDA variant, with this CUDA 11.8 toolkit (default: none, OpenMP)
#   SSB_CACHE_DIR       cache folder (default: ${XDG_CACHE_HOME:-$HOME/.cache}/ssbnet)
#   SSB_KOKKOS_JOBS     parallel build jobs (default: 2)
#   SSB_TRILINOS_SUITE  Debian suite of the source package (default: the system's, e.g. bookworm).
#                       Only sid's trilinos (16.1.0) carries a Kokkos 4; trixie's is 13.2.0 like
#                       bookworm's. (On the project's build machine, whose archive mirror serves
#                       bookworm, sid's trilinos_16.1.0.orig.tar.gz answers 404, so no Kokkos 4.)
#
# Needs root with apt-get the first time (it adds a deb-src entry when there is none, installs
# dpkg-dev, cmake and g++, and runs `apt-get source --download-only trilinos`). A run that finds a
# finished install (the stamp file .ssbnet-kokkos-complete) does nothing else, as a non-root user too.
# Debian 12's trilinos 13.2.0 carries Kokkos 3.4.01.
set -euo pipefail

log() { echo "build_kokkos.sh: $*" >&2; }

cache_dir=${SSB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ssbnet}
jobs=${SSB_KOKKOS_JOBS:-2}
stamp_name=.ssbnet-kokkos-complete
suite=${SSB_TRILINOS_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}
patches=$(cd "$(dirname "$0")" && pwd)/patches
cuda=${SSB_KOKKOS_CUDA_ROOT:-}
variant=openmp
reuse=", $suite)"
if [[ -n $cuda ]]; then
  variant=cuda
  reuse=", $suite), Serial + CUDA ($cuda)"
fi

# A finished install is reused as is.
if [[ -n ${SSB_KOKKOS_PREFIX:-} ]]; then
  if [[ -f $SSB_KOKKOS_PREFIX/$stamp_name ]]; then
    log "reusing $SSB_KOKKOS_PREFIX ($(cat "$SSB_KOKKOS_PREFIX/$stamp_name"))"
    echo "$SSB_KOKKOS_PREFIX"
    exit 0
  fi
else
  for found in "$cache_dir"/kokkos-*-"$variant"; do
    if [[ -f $found/$stamp_name ]] && grep -qF "$reuse" "$found/$stamp_name"; then
      log "reusing $found ($(cat "$found/$stamp_name"))"
      echo "$found"
      exit 0
    fi
  done
fi

if [[ -n $cuda ]] && { [[ ! -x $cuda/bin/nvcc ]] || ! command -v g++-11 >/dev/null; }; then
  log "SSB_KOKKOS_CUDA_ROOT: no $cuda/bin/nvcc or no g++-11 (run cmake/fetch_cuda118.sh)"
  exit 1
fi

# --- the source package -------------------------------------------------------------------------
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  log "no Kokkos install in $cache_dir and not root with apt-get: cannot fetch the trilinos sources"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# A deb-src entry for the suite, when none exists (Debian 12 ships deb822 .sources without one).
if ! grep -rqsE "^(deb-src[[:space:]]|Types:.*deb-src)" /etc/apt/sources.list /etc/apt/sources.list.d/ ||
   [[ -n ${SSB_TRILINOS_SUITE:-} ]]; then
  list=/etc/apt/sources.list.d/ssbnet-deb-src-$suite.sources
  if [[ ! -f $list ]]; then
    log "adding $list"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    {
      echo "Types: deb-src"
      echo "URIs: http://deb.debian.org/debian"
      echo "Suites: $suite"
      echo "Components: main"
      [[ -f $keyring ]] && echo "Signed-By: $keyring"
    } >"$list"
  fi
fi
log "apt-get update"
apt-get update -qq >&2
missing=()
for tool in dpkg-source:dpkg-dev cmake:cmake g++:g++ make:make; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

work=$cache_dir/src
mkdir -p "$work"
cd "$work"
# The newest version apt knows (the suite's own when SSB_TRILINOS_SUITE adds a newer suite).
version=$(apt-cache showsrc trilinos | awk '/^Version:/ {print $2}' | sort -V | tail -n 1)
upstream=${version%-*}
upstream=${upstream#*:}
log "trilinos $version from $suite"
if ! ls trilinos_"$upstream".orig.tar.* >/dev/null 2>&1 || ! ls trilinos_"$version".debian.tar.* >/dev/null 2>&1; then
  # apt drops privileges to _apt, which cannot write here; downloading as root is fine.
  apt-get source --download-only "trilinos=$version" >&2
fi

# Only packages/kokkos of the (large) upstream tarball, plus the Debian patches that touch it.
src=$work/trilinos-$upstream-kokkos
rm -rf "$src" && mkdir -p "$src"
log "extracting packages/kokkos"
tar -xf trilinos_"$upstream".orig.tar.* -C "$src" --strip-components=1 --wildcards '*/packages/kokkos/*'
tar -xf trilinos_"$version".debian.tar.* -C "$src"
if [[ -f $src/debian/patches/series ]]; then
  while read -r patch _; do
    [[ -z $patch || $patch == \#* ]] && continue
    file=$src/debian/patches/$patch
    # A patch applies here when every file it changes is under packages/kokkos/.
    if grep -q '^+++ ' "$file" && ! grep '^+++ ' "$file" | grep -qv ' b/packages/kokkos/'; then
      log "applying debian/patches/$patch"
      patch -d "$src" -p1 --forward --quiet <"$file" >&2
    fi
  done <"$src/debian/patches/series"
fi

kokkos=$src/packages/kokkos
major=$(sed -n 's/^set(Kokkos_VERSION_MAJOR \([0-9]*\)).*/\1/p' "$kokkos/CMakeLists.txt")
minor=$(sed -n 's/^set(Kokkos_VERSION_MINOR \([0-9]*\)).*/\1/p' "$kokkos/CMakeLists.txt")
patchlevel=$(sed -n 's/^set(Kokkos_VERSION_PATCH \([0-9]*\)).*/\1/p' "$kokkos/CMakeLists.txt")
kokkos_version=$major.$minor.$patchlevel
prefix=${SSB_KOKKOS_PREFIX:-$cache_dir/kokkos-$kokkos_version-$suite-$variant}
log "Kokkos $kokkos_version (trilinos $version) -> $prefix"

# --- configure, build, install ------------------------------------------------------------------
build=$work/build-kokkos-$kokkos_version
rm -rf "$build" "$prefix"
start=$(date +%s)
devices=(-DKokkos_ENABLE_OPENMP=ON)
what="Serial + OpenMP"
if [[ -n $cuda ]]; then
  log "applying $patches/kokkos-3.4-cuda-jit-arch.patch"
  patch -d "$kokkos" -p1 --forward --quiet <"$patches/kokkos-3.4-cuda-jit-arch.patch" >&2
  # The wrapper is the compiler from the start (Kokkos' config records it); the install below
  # overwrites it with the stock one, which is put back afterwards.
  mkdir -p "$build" "$prefix/bin"
  wrapper=$build/nvcc_wrapper
  sed -e 's/^default_arch="sm_35"$/default_arch="sm_80"/' \
    -e 's/NVCC_WRAPPER_DEFAULT_COMPILER:-"g++"}$/NVCC_WRAPPER_DEFAULT_COMPILER:-"g++-11"}/' \
    -e '/^nvcc_compiler=nvcc$/i # ssbnet: always CUDA 11.8, whatever PATH and CUDA_ROOT say' \
    -e "s|^nvcc_compiler=nvcc\$|nvcc_compiler=\"$cuda/bin/nvcc\"|" \
    -e '/^if \[ ! -z \$CUDA_ROOT \]; then$/,/^fi$/d' \
    "$kokkos/bin/nvcc_wrapper" >"$wrapper"
  if [[ $(grep -cE '^default_arch="sm_80"$|"g\+\+-11"}$|^nvcc_compiler="/' "$wrapper") != 3 ]] ||
    grep -q 'CUDA_ROOT/bin' "$wrapper"; then
    log "could not patch $kokkos/bin/nvcc_wrapper"
    exit 1
  fi
  install -m 755 "$wrapper" "$prefix/bin/nvcc_wrapper"
  devices=(-DCMAKE_CXX_COMPILER="$prefix/bin/nvcc_wrapper" -DKokkos_ENABLE_CUDA=ON
    -DKokkos_ENABLE_CUDA_LAMBDA=ON -DKokkos_ARCH_AMPERE80=ON -DCUDAToolkit_ROOT="$cuda"
    -DCUDA_cudart_LIBRARY="$cuda/lib64/libcudart_static.a")
  what="Serial + CUDA ($cuda), sm_80"
fi
cmake -S "$kokkos" -B "$build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCMAKE_CXX_STANDARD=17 \
  -DCMAKE_CXX_EXTENSIONS=OFF \
  -DBUILD_SHARED_LIBS=OFF \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DKokkos_ENABLE_SERIAL=ON \
  "${devices[@]}" \
  -DKokkos_ENABLE_TESTS=OFF \
  -DKokkos_ENABLE_EXAMPLES=OFF >&2
cmake --build "$build" -j "$jobs" >&2
cmake --install "$build" >&2
[[ -z $cuda ]] || install -m 755 "$wrapper" "$prefix/bin/nvcc_wrapper"
echo "Kokkos $kokkos_version (Debian trilinos $version, $suite), $what" >"$prefix/$stamp_name"
log "built and installed in $(($(date +%s) - start)) s"
# Only the install is reused: drop the build, the extracted sources and the downloads.
rm -rf "$build" "$src" "$work"/trilinos_*
echo "$prefix"
