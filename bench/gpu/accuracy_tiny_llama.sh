#!/usr/bin/env bash
# Stage 2 (the machine still warm from stage 1, so the bundle is unpacked): the FP-Quant core accuracy rows on
# tiny-llama (.gpu/tl, packed by pack_model.py), bf16, calibration 128 x 512 of calib.txt seed 42, eval_a seq 512.
set -uo pipefail
source bench/gpu/env.sh
[ -x "$QS" ] || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
M=.gpu/models/tiny-llama; D=testdata/data
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
LOG=$OUT/accuracy-tiny-llama.txt; : >$LOG
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a $LOG
Q="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype bf16 --skip-baseline --quiet"
for v in "int4_g128_rtn|--format int --w-bits 4 --w-group-size 128" \
         "int4_g128_gptq|--format int --w-bits 4 --w-group-size 128 --gptq" \
         "nvfp4_rtn|--format nvfp --w-bits 4" \
         "mxfp4_rtn_had32_w4a4|--format mxfp --w-bits 4 --a-bits 4 --transform hadamard --hadamard-group-size 32" \
         "nvfp4_mrgptq_w4a4|--preset mr-gptq" \
         "nvfp4_rtn_w4a4_had16|--format nvfp --w-bits 4 --a-bits 4 --transform hadamard --hadamard-group-size 16" \
         "nvfp4_gptq_w4a16_had16_mse_act|--format nvfp --w-bits 4 --transform hadamard --hadamard-group-size 16 --gptq --w-observer mse --quantization-order activation"; do
  n=${v%%|*}; f=${v#*|}
  echo "QS tiny-llama $n $($Q $f --json $OUT/tl_$n.json 2>&1 | grep -i 'perplexity after\|error' | head -2)" | tee -a $LOG
done
