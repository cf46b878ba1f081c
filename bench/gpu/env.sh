# Sourced on the GPU machine: point QuantSharp at the installed PyTorch's libtorch and unpack the bundle once, outside
# the repository copy (each call gets a fresh copy of the repo; the machine's own disk persists while it is held).
TORCH_LIB=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export QUANTSHARP_LIBTORCH=$TORCH_LIB LD_LIBRARY_PATH=$TORCH_LIB:${LD_LIBRARY_PATH:-}
QS_HOME=${QS_HOME:-/root/qs}
if [ -f .gpu/bundle.tar.xz ] && [ ! -x $QS_HOME/publish/QuantSharp.Cli ]; then mkdir -p $QS_HOME && tar -C $QS_HOME -xJf .gpu/bundle.tar.xz; fi
QS=$QS_HOME/publish/QuantSharp.Cli
