# Sourced on the GPU machine: point QuantSharp at the installed PyTorch's libtorch and unpack the bundle once.
TORCH_LIB=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export QUANTSHARP_LIBTORCH=$TORCH_LIB LD_LIBRARY_PATH=$TORCH_LIB:${LD_LIBRARY_PATH:-}
if [ -f .gpu/bundle.tar.xz ] && [ ! -x .gpu/publish/QuantSharp.Cli ]; then tar -C .gpu -xJf .gpu/bundle.tar.xz; fi
QS=$PWD/.gpu/publish/QuantSharp.Cli
