#!/usr/bin/env bash
# Packed-export benchmark on CPU (issue 6): for each model and format, quantize in memory (the fake-quantized
# perplexity), export packed, reload the folder with `quantsharp eval` (the packed-reload perplexity), and record file
# size and bits per weight. Perplexity uses the first $WINDOWS windows of $SEQ tokens (--eval-max-windows) to keep
# CPU time reasonable. Writes bench/results/packed-exports.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/QuantSharp.Cli -c Release -v q >/dev/null
QS="dotnet src/QuantSharp.Cli/bin/Release/net10.0/QuantSharp.Cli.dll"
WINDOWS=${WINDOWS:-16}; SEQ=${SEQ:-512}; NSEQ=${NSEQ:-32}
DATA=testdata/data; OUT=${OUT:-/tmp/quantsharp-packed-bench}; RAW=$OUT/raw
rm -rf "$OUT"; mkdir -p "$RAW"
MODELS="testdata/models/micro-qwen3 ${SHARED:-../shared}/models/tiny-llama"
# name | export format | quantize flags
RECIPES=(
  "fp-quant-nvfp4|fp-quant|--format nvfp --w-bits 4 --a-bits 4 --transform hadamard --transform-group-size 16"
  "fp-quant-mxfp4|fp-quant|--format mxfp --w-bits 4 --a-bits 4 --transform hadamard --transform-group-size 32"
  "fp-quant-pseudoquant-nvfp4|fp-quant-pseudoquant|--format nvfp --w-bits 4 --a-bits 4 --transform hadamard --transform-group-size 16"
  "compressed-tensors-nvfp4-w4a4|compressed-tensors-nvfp4|--format nvfp --w-bits 4 --a-bits 4 --fuse-global-scale"
  "compressed-tensors-nvfp4-w4a16|compressed-tensors-nvfp4|--format nvfp --w-bits 4 --fuse-global-scale"
  "compressed-tensors-int4-g128|compressed-tensors|--format int --w-bits 4 --w-group-size 128"
  "compressed-tensors-int8-channel|compressed-tensors|--format int --w-bits 8 --w-granularity channel"
  "gptq-int4-g128|gptq|--format int --w-bits 4 --w-group-size 128 --method gptq"
  "gptq-v2-int4-asym-g128|gptq-v2|--format int --w-bits 4 --w-group-size 128 --asym --method gptq"
  "awq-int4-asym-g128|awq|--format int --w-bits 4 --w-group-size 128 --asym"
)
for M in $MODELS; do
  name=$(basename "$M")
  $QS eval --model "$M" --data $DATA/eval_a.txt --seq-len $SEQ --max-windows $WINDOWS --device cpu --quiet --json "$RAW/$name.base.eval.json"
  for R in "${RECIPES[@]}"; do
    IFS='|' read -r rname fmt flags <<< "$R"
    dir="$OUT/$name.$rname"
    # shellcheck disable=SC2086
    $QS quantize --model "$M" $flags --calib $DATA/calib.txt --num-sequences $NSEQ --seq-len $SEQ --eval $DATA/eval_a.txt \
      --eval-seq-len $SEQ --eval-max-windows $WINDOWS --skip-baseline --device cpu --quiet \
      --save "$dir" --export "$fmt" --json "$RAW/$name.$rname.quantize.json"
    $QS eval --model "$dir" --data $DATA/eval_a.txt --seq-len $SEQ --max-windows $WINDOWS --device cpu --quiet --json "$RAW/$name.$rname.eval.json"
    echo "$name $rname $fmt" >> "$RAW/runs.txt"
  done
done
python3 bench/packed_exports_report.py "$OUT" bench/results/packed-exports
