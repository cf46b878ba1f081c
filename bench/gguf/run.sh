#!/usr/bin/env bash
# QuantSharp GGUF export checked against real llama.cpp (node-llama-cpp 3.21.1 prebuilt CPU binaries).
# For each model and GGUF type: write the file with QuantSharp, score the first 8 windows of 512 tokens of eval_a with
# QuantSharp (dequantized, fp32) and with llama.cpp (same token ids), record file size and bits per weight; then a
# 32-token greedy continuation of the Q8_0 file by both engines, compared token for token.
# Results: bench/results/gguf-llamacpp.{json,md}. Needs: dotnet 10, node 20+, `npm ci` in bench/gguf.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
shared="${QUANTSHARP_SHARED:-$repo/../shared}"
work="${GGUF_WORK:-/tmp/quantsharp-gguf-bench}"
windows="${GGUF_WINDOWS:-8}"
seq_len=512
models="${GGUF_MODELS:-tiny-llama tiny-qwen3}"
# type[:imatrix]
types="${GGUF_TYPES:-f16 bf16 q8_0 q4_0 q4_1 q4_k q4_k:imatrix iq4_nl iq4_nl:imatrix mxfp4}"
data="$repo/testdata/data/eval_a.txt"
tokens="$repo/testdata/data/eval_a.tokens.safetensors"
calib="$repo/testdata/data/calib.txt"
prompt="The history of the city begins"

mkdir -p "$work"
[ -d "$here/node_modules/node-llama-cpp" ] || (cd "$here" && npm ci --no-audit --no-fund)
dotnet build "$repo/QuantSharp.slnx" -c Release -v q -nologo > "$work/build.log"
# Run from a copy so a rebuild during the (long) bench cannot swap binaries between runs.
rm -rf "$work/cli" && cp -r "$repo/src/QuantSharp.Cli/bin/Release/net10.0" "$work/cli"
qs() { dotnet "$work/cli/QuantSharp.Cli.dll" "$@"; }

for m in $models; do
  dir="$shared/models/$m"
  qs eval --model "$dir" --data "$data" --seq-len $seq_len --max-windows "$windows" --quiet --json "$work/$m.reference.qs.json"
  for spec in $types; do
    t="${spec%%:*}"; tag="$t"; extra=()
    if [[ "$spec" == *:imatrix ]]; then tag="$t-imatrix"; extra=(--imatrix-calib "$calib" --imatrix-sequences 32); fi
    f="$work/$m.$tag.gguf"
    echo "== $m $tag" >&2
    qs export-gguf --model "$dir" --gguf-type "$t" "${extra[@]}" --out "$f" --quiet --json "$work/$m.$tag.export.json"
    qs eval --model "$f" --data "$data" --seq-len $seq_len --max-windows "$windows" --quiet --json "$work/$m.$tag.qs.json"
    node "$here/llamacpp_eval.mjs" --model "$f" --tokens "$tokens" --seq-len $seq_len --windows "$windows" > "$work/$m.$tag.llamacpp.json"
  done
  qs generate --model "$work/$m.q8_0.gguf" --prompt "$prompt" --max-new-tokens 32 --json "$work/$m.q8_0.generate.qs.json" > /dev/null
  node "$here/llamacpp_eval.mjs" --model "$work/$m.q8_0.gguf" --windows 0 --prompt-json "$work/$m.q8_0.generate.qs.json" --generate 32 \
    > "$work/$m.q8_0.generate.llamacpp.json"
done

node "$here/summarize.mjs" --work "$work" --models "$models" --types "$types" --windows "$windows" --seq-len $seq_len \
  --out "$repo/bench/results/gguf-llamacpp"
