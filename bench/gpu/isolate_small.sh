#!/usr/bin/env bash
# Same small protocol as a CPU run (tiny-llama, 32 calibration windows, first 32 eval windows), QuantSharp on CUDA and
# FP-Quant, to tell device effects from protocol effects.
set -uo pipefail
source bench/gpu/env.sh
M=$PWD/.gpu/models/tiny-llama; D=$PWD/testdata/data; LOG=$OUT/log-small.txt
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
export EVAL=$D/eval_a.txt CALIB=$D/calib.txt PYTHONUNBUFFERED=1 EVAL_MAX_WINDOWS=32
Q="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-max-windows 32 --num-sequences 32 --device cuda --skip-baseline --quiet"
F="python3 fpquant_ref.py --model_name_or_path $M --dataset_name_or_path local --num_sequences 32 --sequence_length 512 --eval_perplexity --seed 42"
qs() { local name=$1; shift; echo "+ qs $name: $*" >>$LOG; r=$($Q "$@" 2>>$LOG | grep -o 'perplexity after: [0-9.]*'); echo "QS  $name $r" | tee -a $OUT/summary.txt; }
fq() { local name=$1; shift; echo "+ fq $name: $*" >>$LOG; r=$(cd .gpu/fpq && timeout 300 $F "$@" 2>>$LOG | tee -a $LOG | grep -i "perplexity:"); echo "FPQ $name $r" | tee -a $OUT/summary.txt; }
NV="--format nvfp --w-bits 4"
qs fp32_gptq_nohad --dtype fp32 $NV --gptq
qs fp32_gptq_had16_mse_act --dtype fp32 $NV --gptq --transform hadamard --hadamard-group-size 16 --w-observer mse --quantization-order activation
qs bf16_gptq_had16_mse_act --dtype bf16 $NV --gptq --transform hadamard --hadamard-group-size 16 --w-observer mse --quantization-order activation
qs bf16_rtn_nohad --dtype bf16 $NV
fq bf16_gptq_had16_mse_act --format nvfp --w_bits 4 --transform_class hadamard --hadamard_group_size 16 --gptq --w_observer mse --quantization_order activation
fq bf16_rtn_nohad --format nvfp --w_bits 4
fq fp32_gptq_had16_mse_act --dtype float32 --format nvfp --w_bits 4 --transform_class hadamard --hadamard_group_size 16 --gptq --w_observer mse --quantization_order activation
