#!/usr/bin/env bash
# QuantSharp perplexity vs ONNX Runtime perplexity of the same exported MatMulNBits files.
# Writes bench/results/onnx-ort.{json,md}. Usage: bench/onnx/run.sh [windows=16] [seq_len=512]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dotnet build "$root/bench/onnx/OnnxOrtBench.csproj" -c Release -v q -nologo
dotnet "$root/bench/onnx/bin/Release/net10.0/OnnxOrtBench.dll" "$root" "${1:-16}" "${2:-512}"
