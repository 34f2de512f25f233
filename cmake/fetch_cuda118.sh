#!/usr/bin/env bash
# Fetches the CUDA 11.8 toolkit from Debian 12 (bookworm) non-free into a cache folder, as a
# relocatable NVIDIA-style tree (bin/nvcc + its own nvcc.profile, include/, lib64/, nvvm/) that is
# NOT installed system-wide, and installs g++-11 (bookworm main; nvcc 11.8 takes gcc <= 11) when
# it is missing. CUDA 11.8 is the newest CUDA that builds Kokkos 3.4 (cmake/build_kokkos.sh with
# SSB_KOKKOS_CUDA_ROOT; tests/device/kokkos_cuda.sh does both). Prints the toolkit root as the last
# line of stdout; everything else goes to stderr.
#
#   cuda=$(bash cmake/fetch_cuda118.sh | tail -n 1)
#   SSB_KOKKOS_CUDA_ROOT=$cuda bash cmake/build_kokkos.sh
#
# Environment:
#   SSB_CACHE_DIR   cache folder (default: ${XDG_CACHE_HOME:-$HOME/.cache}/ssbnet); the toolkit
#                   goes to its cuda-11.8 folder
#
# Needs root with apt-get the first time: it adds a temporary bookworm contrib + non-free source
# (/etc/apt/sources.list.d/ssbnet-cuda118-nonfree.sources), runs apt-get update, `apt-get download`s
# the 6 packages below, then removes that file and runs apt-get update again (also on failure), so
# apt is left as it was. The .debs (about 860 MB) are unpacked with dpkg -x and deleted; of the
# unpacked 2.9 GB only what nvcc uses, the headers, the runtime libraries and cuobjdump are kept
# (about 120 MB). A run that finds a finished tree (the stamp file .ssbnet-cuda-complete) and
# g++-11 does nothing else, as a non-root user too.
set -euo pipefail

log() { echo "fetch_cuda118.sh: $*" >&2; }

cache_dir=${SSB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ssbnet}
root=$cache_dir/cuda-11.8
stamp_name=.ssbnet-cuda-complete
# (libnvvm4, which nvidia-cuda-dev's libnvvm.so points to, is left out: nvcc does not load it.)
packages=(nvidia-cuda-toolkit nvidia-cuda-dev libcudart11.0 libcu++-dev libcub-dev libthrust-dev)
list=/etc/apt/sources.list.d/ssbnet-cuda118-nonfree.sources
export DEBIAN_FRONTEND=noninteractive

need_root() {
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    log "$* and not root with apt-get"
    exit 1
  fi
}
install_gxx11() {
  command -v g++-11 >/dev/null && return 0
  need_root "g++-11 is missing"
  log "installing g++-11"
  apt-get update -qq >&2
  apt-get install -y --no-install-recommends g++-11 >&2
}

# A finished tree is reused as is.
if [[ -f $root/$stamp_name ]]; then
  install_gxx11
  log "reusing $root ($(cat "$root/$stamp_name"))"
  echo "$root"
  exit 0
fi
need_root "no CUDA 11.8 toolkit in $root"
if [[ $(. /etc/os-release && echo "${VERSION_CODENAME:-}") != bookworm ]]; then
  log "warning: not Debian 12 (bookworm); taking CUDA 11.8 from bookworm non-free anyway"
fi

work=$cache_dir/cuda-11.8-download
restore_apt() {
  [[ -f $list ]] || return 0
  rm -f "$list"
  log "removed $list; apt-get update"
  apt-get update -qq >&2 || log "warning: apt-get update failed; run it again"
}
# apt's sources are restored and the downloads dropped however this script ends.
trap 'restore_apt; rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$(date +%s)
rm -rf "$work" "$root"
mkdir -p "$work/debs"
log "adding $list (temporary)"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
{
  echo "Types: deb"
  echo "URIs: http://deb.debian.org/debian"
  echo "Suites: bookworm"
  echo "Components: contrib non-free"
  [[ -f $keyring ]] && echo "Signed-By: $keyring"
} >"$list"
log "apt-get update"
apt-get update -qq >&2
log "downloading ${packages[*]}"
# apt drops privileges to _apt, which cannot write here; downloading as root is fine.
(cd "$work/debs" && apt-get download "${packages[@]}" >&2)
restore_apt
install_gxx11

log "unpacking"
debian_version=$(dpkg-deb -f "$work"/debs/nvidia-cuda-toolkit_*.deb Version)
for deb in "$work"/debs/*.deb; do
  log "  $(dpkg-deb -f "$deb" Package Version | paste -sd ' ')"
  dpkg -x "$deb" "$work/unpacked"
  rm -f "$deb"
done

# --- the standard layout from Debian's split one -------------------------------------------------
# Hard links into the unpacked tree, which is then deleted. Debian has the real nvcc and cicc in
# usr/lib/nvidia-cuda-toolkit/bin (usr/bin/nvcc is a sh wrapper), ptxas and the other tools in
# usr/bin, libdevice in usr/lib/nvidia-cuda-toolkit/libdevice, the libraries in
# usr/lib/x86_64-linux-gnu, the headers in usr/include.
usr=$work/unpacked/usr
lib=$usr/lib/x86_64-linux-gnu
mkdir -p "$root/bin" "$root/lib64/stubs" "$root/nvvm/bin"
cp -al "$usr/lib/nvidia-cuda-toolkit/bin/nvcc" "$usr/lib/nvidia-cuda-toolkit/bin/crt" "$root/bin/"
for tool in ptxas fatbinary nvlink cudafe++ bin2c cuobjdump nvprune cu++filt; do
  cp -l "$usr/bin/$tool" "$root/bin/"
done
cp -l "$usr/lib/nvidia-cuda-toolkit/bin/cicc" "$root/nvvm/bin/"
cp -al "$usr/lib/nvidia-cuda-toolkit/libdevice" "$root/nvvm/libdevice"
cp -al "$usr/include" "$root/include"
cp -a "$lib"/libcudart.so* "$lib"/libcudart_static.a "$lib"/libcudadevrt.a "$lib"/libculibos.a \
  "$root/lib64/"
cp -a "$lib/stubs/libcuda.so" "$root/lib64/stubs/"
# nvcc reads the nvcc.profile next to its binary; Debian's is a link to /etc/nvcc.profile with
# /usr paths. This one is relative to the binary (NVIDIA's own form).
cat >"$root/bin/nvcc.profile" <<'EOF'
# Relocatable nvcc.profile (cmake/fetch_cuda118.sh)
TOP              = $(_HERE_)/..
NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice
LD_LIBRARY_PATH += $(TOP)/lib64:
PATH            += $(TOP)/nvvm/bin:$(_HERE_):
INCLUDES        +=  "-I$(TOP)/include" $(_SPACE_)
LIBRARIES        =+ $(_SPACE_) "-L$(TOP)/lib64/stubs" "-L$(TOP)/lib64"
CUDAFE_FLAGS    +=
PTXAS_FLAGS     +=
EOF
rm -rf "$work/unpacked"

# --- check: nvcc is 11.8 and compiles and links a kernel (libdevice, static runtime) -------------
version=$("$root/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
if [[ $version != 11.8 ]]; then
  log "expected CUDA 11.8, got nvcc release '${version:-?}'"
  exit 1
fi
printf '__global__ void k(float* p) { *p = expf(*p); }\nint main() { k<<<1, 1>>>(nullptr); }\n' \
  >"$work/check.cu"
"$root/bin/nvcc" -ccbin g++-11 -arch=sm_80 -o "$work/check" "$work/check.cu" >&2

echo "CUDA $("$root/bin/nvcc" --version | sed -n 's/.*, V//p')" \
  "(Debian nvidia-cuda-toolkit $debian_version)" >"$root/$stamp_name"
log "laid out in $root in $(($(date +%s) - start)) s ($(du -sh "$root" | cut -f1))"
echo "$root"
