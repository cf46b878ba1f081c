#!/usr/bin/env bash
# Issue #7, memory guards: the estimate `quantize` prints before loading (estimated_peak_gpu_bytes, estimated_peak_cpu_bytes)
# beside the measured peaks (peak_gpu_bytes: the largest per-layer device memory in use; measured_quantize_peak_cpu_bytes)
# on the 4-layer Llama-3.1-8B-shaped random model, MR-GPTQ, calibration 128 x 2048, with and without offloading.
# Acceptance: estimate within 25% of the measured peak. One call, well under 10 minutes.
set -uo pipefail
source bench/gpu/env.sh
D=$PWD/testdata/data; T=testdata/models/micro-qwen3
RAW=$OUT/memory-estimate.txt; : >$RAW
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a $RAW
[ -f /tmp/l8b4/config.json ] || $QS synth --overwrite --like llama-3.1-8b --layers 4 --vocab 8192 --out /tmp/l8b4 --tokenizer $T >/dev/null 2>&1
Q="$QS quantize --model /tmp/l8b4 --preset mr-gptq --calib $D/calib.txt --eval $D/eval_a.txt --eval-max-windows 1 --num-sequences 128 --seq-len 2048 --device cuda --dtype bf16 --skip-baseline --quiet"
for mode in plain offload-activations offload-modules; do
  case $mode in
    plain) extra="";;
    offload-activations) extra="--cpu-offload-activations";;
    offload-modules) extra="--cpu-offload-modules --cpu-offload-activations";;
  esac
  $Q $extra --json $OUT/mem-$mode.json >>$RAW 2>&1
  python3 -c "
import json; d=json.load(open('$OUT/mem-$mode.json'))
eg, mg = d['estimated_peak_gpu_bytes'], d['peak_gpu_bytes']; ec, mc = d['estimated_peak_cpu_bytes'], d['measured_quantize_peak_cpu_bytes']
print('$mode', 'GPU est', round(eg/2**30,2), 'GiB measured', round(mg/2**30,2), 'ratio', round(eg/mg,3), '| CPU est', round(ec/2**30,2), 'measured', round(mc/2**30,2), 'ratio', round(ec/mc,3))
print('  parts GiB', {k: round(v/2**30,3) for k,v in d['memory_estimate_parts'].items()})" | tee -a $RAW
done
