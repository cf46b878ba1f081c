#!/usr/bin/env bash
# Issue #6 consumer check on the GPU machine (the only one with transformers): QuantSharp quantizes tiny-llama
# (W4A16 formats transformers loads without extra packages: pseudoquant, i.e. dequantized weights with rotations
# unfolded) and both QuantSharp and transformers evaluate the written folder. Needs the bundle unpacked (warm
# machine after a bundle call) and .gpu/tl.
set -uo pipefail
source bench/gpu/env.sh
M=.gpu/models/tiny-llama; D=testdata/data
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
for v in "int4_g128_gptq|--format int --w-bits 4 --w-group-size 128 --gptq" \
         "nvfp4_gptq_had16_mse_act|--format nvfp --w-bits 4 --transform hadamard --hadamard-group-size 16 --gptq --w-observer mse --quantization-order activation"; do
  n=${v%%|*}; f=${v#*|}
  $QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-max-windows 64 --num-sequences 128 --device cuda --dtype bf16 \
    --skip-baseline --quiet $f --save /tmp/pq_$n --export pseudoquant --overwrite | sed "s/^/QS-INMEMORY $n /"
  $QS eval --model /tmp/pq_$n --data $D/eval_a.txt --seq-len 512 --max-windows 64 --device cuda --dtype bf16 --quiet | sed "s/^/QS-EVAL $n /"
  python3 bench/gpu/transformers_check.py /tmp/pq_$n $D/eval_a.txt 512 64
done
