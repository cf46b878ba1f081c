#!/usr/bin/env bash
# Session 5, second warm call (carries .gpu/tl and .gpu/inc.tar.gz): more calibration seeds for INC's GPTQ and ours
# at INC's defaults (W3 seeds 5-10, W4 seeds 3-4), and seed 42 W3 again with the per-row flip diagnostics of layer 0
# (bench/gpu/inc_beside.py compare). Together with session5_tl.sh this gives 11 W3 and 5 W4 pairs.
set -uo pipefail
W=/tmp/s5b; source bench/gpu/inc_env.sh
mkdir -p $W/dump
QSG="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --device cuda --dtype fp32 --skip-baseline --quiet --format int --asym --w-group-size 128 --method gptq --dynamic-groups --gptq-block-size 2048"
( inc 3 42 $W/dump/inc; inc 3 5 ) > $W/inc/c1.txt 2>&1 &
( inc 3 6; inc 3 7; inc 4 3 ) > $W/inc/c2.txt 2>&1 &
( inc 3 8; inc 3 9; inc 4 4 ) > $W/inc/c3.txt 2>&1 &
( inc 3 10 ) > $W/inc/c4.txt 2>&1 &
( echo "QS W3 seed 42 $($QSG --w-bits 3 --seed 42 --save $W/dump/qs --export pseudoquant 2>&1 | pick)"
  for s in 5 6 7 8 9 10; do echo "QS W3 seed $s $($QSG --w-bits 3 --seed $s 2>&1 | pick)"; done
  for s in 3 4; do echo "QS W4 seed $s $($QSG --w-bits 4 --seed $s 2>&1 | pick)"; done ) > $W/qs.txt 2>&1 &
wait
python3 bench/gpu/inc_beside.py compare $W/dump/inc $W/dump/qs > $W/compare_w3_rows.txt 2>&1
rm -rf $W/dump
cat $W/inc/c*.txt $W/qs.txt > $OUT/session5-seeds-summary.txt
cp $W/compare_w3_rows.txt $OUT/
tar -C $W -czf $OUT/session5-seeds.tar.gz .
cat $OUT/session5-seeds-summary.txt; grep FLIPS $W/compare_w3_rows.txt
