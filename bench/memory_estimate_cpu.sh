#!/usr/bin/env bash
# Issue #7: the memory estimate `quantize` prints before loading vs the measured peak RSS (VmHWM of the whole run), on
# CPU, for micro-qwen3, tiny-llama and tiny-qwen3 x RTN, GPTQ, MR-GPTQ. Short runs (16 x 256 calibration, 2 eval
# windows of 256), so the estimate must follow those flags. Usage: bench/memory_estimate_cpu.sh OUTDIR [QS command]
set -uo pipefail
OUT=${1:-/tmp/memest}; QS=${2:-src/QuantSharp.Cli/bin/Release/net10.0/QuantSharp.Cli}
SHARED=${QUANTSHARP_SHARED:-../shared}; D=testdata/data
mkdir -p $OUT
MODELS=${MODELS:-"testdata/models/micro-qwen3 $SHARED/models/tiny-llama $SHARED/models/tiny-qwen3"}
for model in $MODELS; do
  [ -f $model/config.json ] || { echo "skip $model (absent)"; continue; }
  for method in ${METHODS:-rtn gptq mrgptq}; do
    case $method in
      rtn) m="--method rtn --format int --w-bits 4";;
      gptq) m="--method gptq --format int --w-bits 4";;
      mrgptq) m="--preset mr-gptq";;
    esac
    name=$(basename $model)-$method
    $QS quantize --model $model $m --calib $D/calib.txt --eval $D/eval_a.txt --num-sequences 16 --seq-len 256 \
      --eval-seq-len 256 --eval-max-windows 2 --eval-batch-size 2 --device cpu --skip-baseline --quiet \
      --json $OUT/$name.json >$OUT/$name.log 2>&1 || { echo "$name failed"; tail -3 $OUT/$name.log; continue; }
    python3 -c "
import json; d=json.load(open('$OUT/$name.json')); e, m = d['estimated_peak_cpu_bytes'], d['measured_peak_cpu_bytes']
print('$name', 'estimate', round(e/2**20), 'MiB measured', round(m/2**20), 'MiB ratio', round(e/m, 3))"
  done
done
