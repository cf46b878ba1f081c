#!/usr/bin/env bash
# Session 5, W8A8 FP8 with GPTQ weights on more settings (issue #11), one model per warm call:
#   MODEL=tl (carry .gpu/tl): the static per-tensor FP8 scheme (vLLM "FP8": weights and inputs per tensor, input scales
#     calibrated) with RTN and with GPTQ weights; and the dynamic scheme's GPTQ row again (the same number as
#     session5_tl.sh with the refactored per-layer pipeline).
#   MODEL=tq (carry .gpu/tq): tiny-qwen3, bf16 baseline and the dynamic scheme with RTN and GPTQ weights.
set -uo pipefail
source bench/gpu/env.sh
[ -x "$QS" ] || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
D=testdata/data
case ${MODEL:-tl} in tl) M=.gpu/models/tiny-llama ;; tq) M=.gpu/models/tiny-qwen3 ;; esac
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/${MODEL:-tl} $M
pick() { grep -E "perplexity( after:)? [0-9.]+( |$)|rror" | tail -1; }
C="--model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype bf16 --skip-baseline --quiet --format fp8 --w-bits 8 --a-bits 8"
L=/tmp/fp8more.txt; : > $L
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a $L
if [ "${MODEL:-tl}" = tl ]; then
  ( echo "$M static-tensor rtn W8A8 $($QS quantize $C --method rtn --w-group-size 0 --a-group-size 0 2>&1 | pick)" >> $L ) &
  ( echo "$M static-tensor gptq W8A8 $($QS quantize $C --method gptq --w-group-size 0 --a-group-size 0 2>&1 | pick)" >> $L ) &
  ( echo "$M dynamic gptq W8A8 $($QS quantize $C --method gptq --w-group-size -1 --a-group-size -1 2>&1 | pick)" >> $L ) &
else
  ( echo "$M bf16 $($QS eval --model $M --data $D/eval_a.txt --seq-len 512 --batch-size 16 --device cuda --dtype bf16 2>&1 | pick)" >> $L ) &
  ( echo "$M dynamic rtn W8A8 $($QS quantize $C --method rtn --w-group-size -1 --a-group-size -1 2>&1 | pick)" >> $L ) &
  ( echo "$M dynamic gptq W8A8 $($QS quantize $C --method gptq --w-group-size -1 --a-group-size -1 2>&1 | pick)" >> $L ) &
fi
wait
cp $L $OUT/fp8-more-${MODEL:-tl}.txt; cat $L
