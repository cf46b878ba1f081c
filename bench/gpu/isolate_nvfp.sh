#!/usr/bin/env bash
# Isolates where QuantSharp and FP-Quant differ on NVFP4 W4A4 (tiny-llama, bf16, calib 128x512 seed 42, eval_a seq 512):
# each config run by both, one line each in the summary. FP-Quant's harness is carried in .gpu/fpq (never committed).
set -uo pipefail
source bench/gpu/env.sh
M=$PWD/.gpu/models/tiny-llama; D=$PWD/testdata/data; LOG=$OUT/log-iso.txt
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
Q="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-batch-size 16 --device cuda --dtype bf16 --skip-baseline --quiet"
F="python3 fpquant_ref.py --model_name_or_path $M --dataset_name_or_path local --num_sequences 128 --sequence_length 512 --eval_perplexity --seed 42"
export EVAL=$D/eval_a.txt CALIB=$D/calib.txt PYTHONUNBUFFERED=1
qs() { local name=$1; shift; echo "+ qs $name: $*" >>$LOG; $Q "$@" >>$LOG 2>&1; echo "QS  $name $(grep -o 'perplexity after: [0-9.]*' $LOG | tail -1)" | tee -a $OUT/summary.txt; }
fq() { local name=$1; shift; echo "+ fq $name: $*" >>$LOG; (cd .gpu/fpq && timeout 300 $F "$@" >>$LOG 2>&1); echo "FPQ $name $(grep -iE 'perplexity' $LOG | grep -oE '[0-9]+\.[0-9]+' | tail -1)" | tee -a $OUT/summary.txt; }
NV="--format nvfp --w-bits 4"
qs nvfp_rtn_w4a4_had16 $NV --a-bits 4 --transform hadamard --hadamard-group-size 16
fq nvfp_rtn_w4a4_had16 --format nvfp --w_bits 4 --a_bits 4 --transform_class hadamard --hadamard_group_size 16
qs nvfp_gptq_w4a16_had16_mse_act $NV --transform hadamard --hadamard-group-size 16 --gptq --w-observer mse --quantization-order activation
fq nvfp_gptq_w4a16_had16_mse_act --format nvfp --w_bits 4 --transform_class hadamard --hadamard_group_size 16 --gptq --w_observer mse --quantization_order activation
qs nvfp_gptq_w4a4_had16_minmax $NV --a-bits 4 --transform hadamard --hadamard-group-size 16 --gptq
qs nvfp_gptq_w4a4_had16_mse $NV --a-bits 4 --transform hadamard --hadamard-group-size 16 --gptq --w-observer mse
qs nvfp_rtn_w4a4_had16_mse $NV --a-bits 4 --transform hadamard --hadamard-group-size 16 --w-observer mse
fq int4_rtn_fp32 --format int --w_bits 4 --w_group_size 128 --w_granularity group --dtype float32
Q=${Q/--dtype bf16/--dtype fp32}
qs int4_rtn_fp32 --format int --w-bits 4 --w-group-size 128
