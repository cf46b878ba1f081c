#!/usr/bin/env bash
# FP-Quant beside QuantSharp on micro-qwen3 (in testdata, so it travels with the repo): the NVFP4 rows that isolate
# the MR-GPTQ gap, then the layer-0 Hessian diagnosis (diag_hessians.py). Needs .gpu/bundle.tar.xz and .gpu/fpq.
set -uo pipefail
source bench/gpu/env.sh
M=$PWD/testdata/models/micro-qwen3; D=$PWD/testdata/data
export EVAL=$D/eval_a.txt CALIB=$D/calib.txt PYTHONUNBUFFERED=1
LOG=$OUT/diag-micro.txt; : >$LOG
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a $LOG
cp bench/gpu/fpquant_stubs.py bench/gpu/diag_hessians.py .gpu/fpq/
declare -A CFG=(
  [nvfp_rtn_w4a16]="--format nvfp --w_bits 4"
  [nvfp_rtn_w4a16_had16]="--format nvfp --w_bits 4 --transform_class hadamard --hadamard_group_size 16"
  [nvfp_gptq_w4a16]="--format nvfp --w_bits 4 --gptq"
  [nvfp_gptq_w4a16_had16_mse_act]="--format nvfp --w_bits 4 --transform_class hadamard --hadamard_group_size 16 --gptq --w_observer mse --quantization_order activation"
  [nvfp_rtn_w4a4_had16]="--format nvfp --w_bits 4 --a_bits 4 --transform_class hadamard --hadamard_group_size 16"
  [nvfp_mrgptq_w4a4]="--format nvfp --w_bits 4 --a_bits 4 --transform_class hadamard --hadamard_group_size 16 --gptq --w_observer mse --quantization_order activation"
)
for name in "${!CFG[@]}"; do
  f=${CFG[$name]}
  qsf=$(echo "$f" | sed -e 's/_/-/g' -e 's/--transform-class/--transform/' -e 's/--quantization-order/--quantization-order/')
  r=$($QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 \
      --seq-len 512 --seed 42 --device cuda --dtype bf16 --skip-baseline --quiet $qsf --json $OUT/qs_$name.json 2>&1 | grep -i "perplexity after\|error" | head -2)
  echo "QS  $name $r" | tee -a $LOG
  r=$(cd .gpu/fpq && python3 fpquant_ref.py --model_name_or_path $M --dataset_name_or_path local --num_sequences 128 --sequence_length 512 \
      --eval_perplexity --seed 42 $f 2>&1 | grep -E "perplexity:|Error" | head -2)
  echo "FPQ $name $r" | tee -a $LOG
done
rm -rf /tmp/qsd
QUANTSHARP_DUMP_HESSIANS=/tmp/qsd $QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-max-windows 2 --num-sequences 32 \
  --device cuda --dtype bf16 --skip-baseline --quiet --format nvfp --w-bits 4 --gptq --transform hadamard --hadamard-group-size 16 \
  --w-observer mse --quantization-order activation >/dev/null 2>&1
(cd .gpu/fpq && EVAL_MAX_WINDOWS=2 python3 diag_hessians.py $M /tmp/qsd 32 16 --eval_perplexity --format nvfp --w_bits 4 \
  --transform_class hadamard --hadamard_group_size 16 --gptq --w_observer mse --quantization_order activation 2>&1 | grep -E "DIAG|Error|error" | tee -a $LOG)
