#!/usr/bin/env bash
# Dumps layer-0/1 Hessians from QuantSharp and FP-Quant for one config and prints their relative difference per slot.
set -uo pipefail
source bench/gpu/env.sh
M=$PWD/.gpu/models/tiny-llama; D=$PWD/testdata/data
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
export EVAL=$D/eval_a.txt CALIB=$D/calib.txt PYTHONUNBUFFERED=1 EVAL_MAX_WINDOWS=2 QS_DUMP=/tmp/qsdump
ARGS_QS="--format nvfp --w-bits 4 --gptq --transform hadamard --hadamard-group-size 16 --w-observer mse --quantization-order activation"
[ -f /tmp/qsdump/layer-0.safetensors ] || QUANTSHARP_DUMP_HESSIANS=/tmp/qsdump $QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-max-windows 2 --num-sequences 32 --device cuda --dtype bf16 --skip-baseline --quiet $ARGS_QS
cp bench/gpu/fpquant_*.py .gpu/fpq/; cd .gpu/fpq && python3 fpquant_hessians.py --model_name_or_path $M --dataset_name_or_path local --num_sequences 32 --sequence_length 512 --eval_perplexity --seed 42 \
  --format nvfp --w_bits 4 --transform_class hadamard --hadamard_group_size 16 --gptq --w_observer mse --quantization_order activation 2>&1 | grep -E "HESSIAN|Error|error" 
