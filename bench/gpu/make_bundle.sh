#!/usr/bin/env bash
# Builds the self-contained linux-x64 CLI for the GPU machine (which has PyTorch but no .NET) into .gpu/bundle.tar.xz.
# libtorch's own .so files are left out: the device's PyTorch provides them through QUANTSHARP_LIBTORCH.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .gpu/publish && mkdir -p .gpu
dotnet publish src/QuantSharp.Cli -c Release -r linux-x64 --self-contained -o .gpu/publish -v q
find .gpu/publish -name 'libtorch*.so' -o -name 'libc10*.so' -o -name 'libgomp*' -o -name 'libbackend_with_compiler.so' \
  -o -name 'libjitbackend_test.so' -o -name 'libnnapi_backend.so' -o -name 'libshm.so' -o -name 'libaoti_custom_ops.so' \
  -o -name 'libtorchbind_test.so' | xargs rm -f
tar -C .gpu -cJf .gpu/bundle.tar.xz publish
ls -la .gpu/bundle.tar.xz
