#!/usr/bin/env bash
# Issue #12 part 2 (block-level weight-only algorithms) on tiny-llama, INC's protocol: fp32, asymmetric INT, group
# 128, calibration 128 x 512 windows of calib.txt seed 42, eval_a seq 512 all windows. Needs the unpacked bundle
# (stage 1) and .gpu/tl, like accuracy_tiny_llama.sh. PART=a: rtn, gptq, awq; PART=b: teq, autoround (+ presets).
set -uo pipefail
source bench/gpu/env.sh
[ -x "$QS" ] || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
M=.gpu/models/tiny-llama; D=testdata/data
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
PART=${PART:-a}
LOG=$OUT/wo-block-$PART.txt; : >$LOG
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a $LOG
Q="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype fp32 --skip-baseline --quiet --format int --asym --w-group-size 128"
case $PART in
  a) methods=("rtn|--method rtn" "gptq|--method gptq --dynamic-groups" "awq|--method awq") ;;
  b) methods=("teq|--method teq" "autoround|--method autoround" "autoround_light|--method autoround --autoround-preset light") ;;
  c) methods=("autoround_best|--method autoround --autoround-preset best") ;;
esac
for b in 3 4; do
  for v in "${methods[@]}"; do
    n=${v%%|*}; f=${v#*|}
    t0=$(date +%s)
    echo "QS tiny-llama W$b $n $($Q --w-bits $b $f --json $OUT/wo_w${b}_$n.json 2>&1 | grep -i 'perplexity after\|error' | head -2) ($(( $(date +%s) - t0 )) s)" | tee -a $LOG
  done
done
