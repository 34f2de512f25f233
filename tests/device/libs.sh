# Sourced by tests/device/run.sh and ab.sh with `pack` set to a tests/device/pack.sh folder:
# LD_LIBRARY_PATH gets the folder's libraries (Google Benchmark, the CUDA runtime) and the GPU
# machine's cuBLAS (libcublas.so.13 under /usr/local/cuda, or the nvidia-cublas Python package).
libs=$pack/lib
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
  /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/lib \
  /opt/torch/.venv/lib/python3*/site-packages/nvidia/cublas/lib; do
  [ -e "$d/libcublas.so.13" ] && libs=$libs:$d
done
export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
