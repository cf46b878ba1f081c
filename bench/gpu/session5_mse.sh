#!/usr/bin/env bash
# Session 5, third warm call (carries .gpu/tl and .gpu/inc.tar.gz): GPTQ with an MSE clip search of the group scales,
# INC's `use_mse_search=True` beside ours (`--w-observer mse`), INC's classic groups (block 2048), W3/W4, seeds 42 and 1-4;
# plus ours with static groups + MSE (the FP-Quant-style setting) at seed 42.
set -uo pipefail
source bench/gpu/env.sh
[ -x "$QS" ] || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
[ -d /root/neural_compressor ] || tar -C /root -xzf .gpu/inc.tar.gz
M=.gpu/models/tiny-llama; D=testdata/data
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
W=/tmp/s5c; rm -rf $W; mkdir -p $W/inc
export INC_SRC=/root EVAL=$PWD/$D/eval_a.txt CALIB=$PWD/$D/calib.txt INC_MSE=1
inc() { python3 bench/gpu/inc_beside.py run $M "$@" 2>$W/inc/err_$1_$2.txt | grep '"who"' || tail -3 $W/inc/err_$1_$2.txt; }
BASE="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --device cuda --dtype fp32 --skip-baseline --quiet --format int --asym --w-group-size 128 --method gptq --w-observer mse"
QSG="$BASE --dynamic-groups --gptq-block-size 2048"
pick() { grep -E "perplexity( after:)? [0-9.]+( |$)|rror" | tail -1; }
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
