#!/usr/bin/env bash
# Stage 1 of a GPU session (needs only .gpu/bundle.tar.xz): the NVFP4 rows on micro-qwen3 (in testdata), then
# QuantSharp's per-phase timing on a 4-layer random model with Llama-3.1-8B layer shapes (calibration 128 x 2048).
set -uo pipefail
source bench/gpu/env.sh
M=$PWD/testdata/models/micro-qwen3; D=$PWD/testdata/data
LOG=$OUT/scale-probe.txt; : >$LOG
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a $LOG
Q="$QS quantize --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --seed 42 --device cuda --dtype bf16 --skip-baseline --quiet"
declare -A CFG=(
  [nvfp_rtn_w4a16_had16]="--format nvfp --w-bits 4 --transform hadamard --hadamard-group-size 16"
  [nvfp_gptq_w4a16_had16_mse_act]="--format nvfp --w-bits 4 --transform hadamard --hadamard-group-size 16 --gptq --w-observer mse --quantization-order activation"
  [nvfp_rtn_w4a4_had16]="--format nvfp --w-bits 4 --a-bits 4 --transform hadamard --hadamard-group-size 16"
  [nvfp_mrgptq_w4a4]="--preset mr-gptq"
)
for name in "${!CFG[@]}"; do
  echo "QS micro-qwen3 $name $($Q --model $M --num-sequences 128 --seq-len 512 ${CFG[$name]} --json $OUT/micro_$name.json 2>&1 | grep -i 'perplexity after\|error' | head -2)" | tee -a $LOG
done
$QS synth --overwrite --like llama-3.1-8b --layers 4 --vocab 8192 --out /tmp/l8b --tokenizer $M >>$LOG 2>&1
declare -A SCALE=(
  [nvfp4_rtn_w4a16]="--format nvfp --w-bits 4"
  [int4_g128_gptq_w4a16]="--format int --w-bits 4 --w-group-size 128 --gptq"
  [nvfp4_mrgptq_w4a4]="--preset mr-gptq"
)
for name in nvfp4_rtn_w4a16 int4_g128_gptq_w4a16 nvfp4_mrgptq_w4a4; do
  /usr/bin/time -f "wall %e s maxrss %M KB" $Q --model /tmp/l8b --num-sequences 128 --seq-len 2048 --eval-max-windows 1 ${SCALE[$name]} \
    --json $OUT/l8b4_$name.json >>$LOG 2>&1
  python3 -c "import json,sys; d=json.load(open('$OUT/l8b4_$name.json')); print('QS l8b4 $name', 'quantize_s', round(d['quantize_seconds'],2), 'phases', {k: round(v,2) for k,v in d['phase_seconds'].items()}, 'peak', d['peak_memory_bytes'])" | tee -a $LOG
done
tail -5 $LOG
