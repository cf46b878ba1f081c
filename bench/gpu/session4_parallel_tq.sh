#!/usr/bin/env bash
# Session 4, one warm call carrying .gpu/tq, side by side on the one GPU (wall times are not solo timings):
#   1. issue #5 FlatQuant (c) with SVD transforms on tiny-qwen3, saved as flatquant-int4 and re-evaluated from disk
#   2. issue #5 FlatQuant (d) SVD + GPTQ on tiny-qwen3
#   3. issue #8 bench/gpu/task_check.sh PART=table MODELS=tq (recovery table)
set -uo pipefail
source bench/gpu/env.sh
[ -x "$QS" ] || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
M=.gpu/models/tiny-qwen3; D=testdata/data
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tq $M
W=/tmp/s4q; rm -rf $W; mkdir -p $W/fq $W/tasks
nvidia-smi --query-gpu=name --format=csv,noheader | tee $W/gpu.txt
COMMON="--model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype bf16"
FQ="--method flatquant --w-bits 4 --a-bits 4 --k-bits 4 --v-bits 4 --kv-asym --kv-group-size 128 --epochs 15 --lr 5e-3 --lwc --lac --add-diag"
( t0=$(date +%s); echo "tiny-qwen3 c_flatquant_svd $($QS quantize $COMMON $FQ --skip-baseline --save /tmp/fq_tq_c --overwrite --json $W/fq/fq_tq_c_svd.json 2>$W/fq/fq_tq_c_svd.progress | grep -i 'perplexity after\|error' | head -2) wall $(( $(date +%s) - t0 )) s" > $W/fq/c.txt
  echo "tiny-qwen3 c_flatquant_svd_from_disk $($QS eval --model /tmp/fq_tq_c --data $D/eval_a.txt --seq-len 512 --batch-size 16 --device cuda --dtype bf16 2>&1 | grep -i 'perplexity\|error' | tail -1)" >> $W/fq/c.txt ) &
( t0=$(date +%s); echo "tiny-qwen3 d_flatquant_svd_gptq $($QS quantize $COMMON $FQ --gptq --skip-baseline --json $W/fq/fq_tq_d_svd.json 2>$W/fq/fq_tq_d_svd.progress | grep -i 'perplexity after\|error' | head -2) wall $(( $(date +%s) - t0 )) s" > $W/fq/d.txt ) &
[ -f bench/gpu/task_check.sh ] && ( OUT=$W/tasks PART=table MODELS=tq bash bench/gpu/task_check.sh > $W/tasks/stdout.txt 2>&1 ) &
wait
cat $W/gpu.txt $W/fq/c.txt $W/fq/d.txt > $OUT/session4-tq-summary.txt
cp $W/tasks/task-recovery.md $OUT/task-recovery-tq.md 2>/dev/null
tar -C $W -czf $OUT/session4-tq.tar.gz .
cat $OUT/session4-tq-summary.txt; tail -20 $W/tasks/task-check.txt
