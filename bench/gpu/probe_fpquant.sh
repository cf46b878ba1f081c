#!/usr/bin/env bash
# Runs bench/gpu/fpquant_probe_cache.py on tiny-llama (GPTQ nvfp4 W4A16, 8 calibration windows, 2 eval windows).
set -uo pipefail
M=$PWD/.gpu/models/tiny-llama; D=$PWD/testdata/data
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
export EVAL=$D/eval_a.txt CALIB=$D/calib.txt PYTHONUNBUFFERED=1 EVAL_MAX_WINDOWS=2
cp bench/gpu/fpquant_*.py .gpu/fpq/; cd .gpu/fpq && python3 fpquant_probe_cache.py --model_name_or_path $M --dataset_name_or_path local --num_sequences 8 --sequence_length 512 \
  --eval_perplexity --seed 42 --format nvfp --w_bits 4 --transform_class hadamard --hadamard_group_size 16 --gptq 2>&1 | grep -E "PROBE|Error|perplexity"
