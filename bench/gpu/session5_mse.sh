#!/usr/bin/env bash
# Session 5, third warm call (carries .gpu/tl and .gpu/inc.tar.gz): GPTQ with an MSE clip search of the group scales,
# INC's `use_mse_search=True` beside ours (`--w-observer mse`), INC's classic groups (block 2048), W3/W4, seeds 42 and 1-4;
# plus ours with static groups + MSE (the FP-Quant-style setting) at seed 42.
set -uo pipefail
W=/tmp/s5c; source bench/gpu/inc_env.sh
export INC_MSE=1
BASE="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --device cuda --dtype fp32 --skip-baseline --quiet --format int --asym --w-group-size 128 --method gptq --w-observer mse"
QSG="$BASE --dynamic-groups --gptq-block-size 2048"
( inc 3 42; inc 3 1 ) > $W/inc/c1.txt 2>&1 &
( inc 4 42; inc 3 2 ) > $W/inc/c2.txt 2>&1 &
( inc 3 3; inc 4 1 ) > $W/inc/c3.txt 2>&1 &
( inc 3 4; inc 4 2 ) > $W/inc/c4.txt 2>&1 &
( for b in 3 4; do echo "QS mse dynamic W$b seed 42 $($QSG --w-bits $b --seed 42 2>&1 | pick)"; done
  for s in 1 2 3 4; do echo "QS mse dynamic W3 seed $s $($QSG --w-bits 3 --seed $s 2>&1 | pick)"; done
  for s in 1 2; do echo "QS mse dynamic W4 seed $s $($QSG --w-bits 4 --seed $s 2>&1 | pick)"; done ) > $W/qs.txt 2>&1 &
( for b in 3 4; do echo "QS mse static W$b seed 42 $($BASE --w-bits $b --seed 42 2>&1 | pick)"; done
  for s in 1 2; do echo "QS mse static W3 seed $s $($BASE --w-bits 3 --seed $s 2>&1 | pick)"; done ) > $W/qs_static.txt 2>&1 &
wait
cat $W/inc/c*.txt $W/qs.txt $W/qs_static.txt > $OUT/session5-mse-summary.txt
tar -C $W -czf $OUT/session5-mse.tar.gz .
cat $OUT/session5-mse-summary.txt
