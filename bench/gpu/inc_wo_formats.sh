#!/usr/bin/env bash
# INC weight-only acceptance rows (issue #12, formats part) on tiny-llama: asymmetric int, group 128, fp32 compute,
# eval_a seq 512 all windows; RTN and HQQ at W3/W4 (no calibration data needed), plus the nf4/fp4 types and RTN
# extras for the record. INC's references (H100, same protocol): RTN 58.87 / 54.96, HQQ 58.77 / 55.45, fp32 54.27.
# Needs the bundle unpacked and tiny-llama unpacked, as accuracy_tiny_llama.sh does (run its stage 1 first).
set -uo pipefail
source bench/gpu/env.sh
[ -x "$QS" ] || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
M=.gpu/models/tiny-llama; D=testdata/data
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
LOG=$OUT/inc-wo-formats.txt; : >$LOG
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a $LOG
Q="$QS quantize --model $M --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --device cuda --dtype fp32 --skip-baseline --quiet"
for v in "rtn_w3|--format int --w-bits 3 --w-group-size 128 --asym --method rtn" \
         "rtn_w4|--format int --w-bits 4 --w-group-size 128 --asym --method rtn" \
         "hqq_w3|--format int --w-bits 3 --w-group-size 128 --asym --method hqq" \
         "hqq_w4|--format int --w-bits 4 --w-group-size 128 --asym --method hqq" \
         "rtn_w4_mse|--format int --w-bits 4 --w-group-size 128 --asym --method rtn --use-mse-search" \
         "rtn_w4_dq|--format int --w-bits 4 --w-group-size 128 --asym --method rtn --double-quant" \
         "nf4_g128|--format nf4 --w-bits 4 --w-group-size 128" \
         "fp4bnb_g128|--format fp4 --w-bits 4 --w-group-size 128" \
         "fp4e2m1_g128|--format fp4_e2m1 --w-bits 4 --w-group-size 128"; do
  n=${v%%|*}; f=${v#*|}
  echo "QS tiny-llama $n $($Q $f --json $OUT/inc_$n.json 2>&1 | grep -i 'perplexity after\|error' | head -2)" | tee -a $LOG
done
