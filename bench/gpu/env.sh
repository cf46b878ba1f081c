# Sourced on the GPU machine: point QuantSharp at the installed PyTorch's libtorch and unpack the bundle once, outside
# the repository copy (each call gets a fresh copy of the repo; the machine's own disk persists while it is held).
TORCH_LIB=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export QUANTSHARP_LIBTORCH=$TORCH_LIB LD_LIBRARY_PATH=$TORCH_LIB:${LD_LIBRARY_PATH:-}
QS_HOME=${QS_HOME:-/root/qs}
if [ -f .gpu/bundle.tar.xz ] && [ ! -x $QS_HOME/publish/QuantSharp.Cli ]; then mkdir -p $QS_HOME && tar -C $QS_HOME -xJf .gpu/bundle.tar.xz; fi
QS=$QS_HOME/publish/QuantSharp.Cli

peak() { # peak LOG CMD...: run CMD into LOG, print wall seconds and the peak GPU memory (MiB) seen while it ran
  local log=$1; shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > /tmp/mem.txt & local mon=$!
  local t0=$(date +%s.%N); "$@" >$log 2>&1; local rc=$?; local t1=$(date +%s.%N)
  kill $mon; wait $mon 2>/dev/null
  echo "WALL $(python3 -c "print(round($t1 - $t0, 2))") PEAK_MIB $(sort -n /tmp/mem.txt | tail -1) RC $rc"
}
