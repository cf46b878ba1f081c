#!/usr/bin/env bash
# Session 4, one warm call carrying .gpu/tl, four independent jobs run side by side on the one GPU (each is
# launch-bound on these tiny models, so they barely slow each other; wall times here are NOT solo timings):
#   1. issue #5  FlatQuant (d) = SVD transforms + GPTQ weights, tiny-llama
#   2. issue #12 GPTQ at INC's defaults, perturbed: rel-damp 0.0099 / 0.0101 (rounding-noise band of the INC rows)
#   3. issue #11 bench/gpu/fp8_table.sh
#   4. issue #8  bench/gpu/task_check.sh (PART=check, then the tiny-llama recovery table)
# Everything lands in $OUT/session4-tl.tar.gz plus the main logs (the call returns at most 8 files).
set -uo pipefail
source bench/gpu/env.sh
[ -x "$QS" ] || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
M=.gpu/models/tiny-llama; D=testdata/data
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
W=/tmp/s4; rm -rf $W; mkdir -p $W/fq $W/gptq $W/fp8 $W/tasks
nvidia-smi --query-gpu=name --format=csv,noheader | tee $W/gpu.txt
COMMON="--model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype bf16"
FQ="--method flatquant --w-bits 4 --a-bits 4 --k-bits 4 --v-bits 4 --kv-asym --kv-group-size 128 --epochs 15 --lr 5e-3 --lwc --lac --add-diag"
( t0=$(date +%s); echo "tiny-llama d_flatquant_svd_gptq $($QS quantize $COMMON $FQ --gptq --skip-baseline --json $W/fq/fq_tl_d_svd.json 2>$W/fq/fq_tl_d_svd.progress | grep -i 'perplexity after\|error' | head -2) wall $(( $(date +%s) - t0 )) s" > $W/fq/log.txt ) &
( Q="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype fp32 --skip-baseline --quiet --format int --asym --w-group-size 128 --method gptq --dynamic-groups --gptq-block-size 2048"
  for b in 4 3; do for d in 0.0099 0.0101; do
    echo "QS tiny-llama W$b gptq_inc_block2048 rel-damp $d $($Q --w-bits $b --rel-damp $d 2>&1 | grep -i 'perplexity after\|error' | head -2)" >> $W/gptq/log.txt
  done; done
  for v in "128|--gptq-block-size 128" ; do n=${v%%|*}; f=${v#*|}
    for b in 4 3; do echo "QS tiny-llama W$b gptq_classic_block$n $($QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype fp32 --skip-baseline --quiet --format int --asym --w-group-size 128 --method gptq --dynamic-groups $f --w-bits $b 2>&1 | grep -i 'perplexity after\|error' | head -2)" >> $W/gptq/log.txt; done
  done ) &
[ -f bench/gpu/fp8_table.sh ] && ( OUT=$W/fp8 bash bench/gpu/fp8_table.sh > $W/fp8/stdout.txt 2>&1 ) &
[ -f bench/gpu/task_check.sh ] && ( OUT=$W/tasks PART="check table" MODELS=tl bash bench/gpu/task_check.sh > $W/tasks/stdout.txt 2>&1 ) &
wait
cat $W/gpu.txt $W/fq/log.txt $W/gptq/log.txt > $OUT/session4-tl-summary.txt
cp $W/fp8/fp8-table.txt $W/tasks/task-check.txt $W/tasks/task-recovery.md $OUT/ 2>/dev/null
tar -C $W -czf $OUT/session4-tl.tar.gz .
cat $OUT/session4-tl-summary.txt; tail -12 $W/fp8/fp8-table.txt; tail -8 $W/tasks/task-check.txt
