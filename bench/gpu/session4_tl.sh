#!/usr/bin/env bash
# Session 4, tiny-llama (warm machine with the bundle unpacked, .gpu/tl carried):
#  1. issue #12 GPTQ at INC's defaults, now bit-faithful: classic groups with INC's 2048-column block (every group of
#     a ≤ 2048-wide layer takes its scale from the weight before any update), W3 and W4, INC protocol (fp32, asym g128).
#  2. issue #5 FlatQuant rows (c) and (d) with the SVD/Cayley parameterisation (the reference's default).
set -uo pipefail
source bench/gpu/env.sh
[ -x "$QS" ] || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
M=.gpu/models/tiny-llama; D=testdata/data
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
LOG=$OUT/session4-tl.txt; : >$LOG
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a $LOG
Q="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype fp32 --skip-baseline --quiet --format int --asym --w-group-size 128 --method gptq"
for b in 4 3; do
  t0=$(date +%s)
  echo "QS tiny-llama W$b gptq_inc_block2048 $($Q --w-bits $b --dynamic-groups --gptq-block-size 2048 --json $OUT/gptq_inc_w$b.json 2>&1 | grep -i 'perplexity after\|error' | head -2) ($(( $(date +%s) - t0 )) s)" | tee -a $LOG
done
echo "QS tiny-llama W4 gptq_static $($Q --w-bits 4 2>&1 | grep -i 'perplexity after\|error' | head -2)" | tee -a $LOG
COMMON="--model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype bf16"
FQ="--method flatquant --w-bits 4 --a-bits 4 --k-bits 4 --v-bits 4 --kv-asym --kv-group-size 128 --epochs 15 --lr 5e-3 --lwc --lac --add-diag"
t0=$(date +%s)
echo "tiny-llama c_flatquant_svd $($QS quantize $COMMON $FQ --skip-baseline --json $OUT/fq_tl_c_svd.json 2>$OUT/fq_tl_c_svd.progress | grep -i 'perplexity after\|error' | head -2) wall $(( $(date +%s) - t0 )) s" | tee -a $LOG
t0=$(date +%s)
echo "tiny-llama d_flatquant_svd_gptq $($QS quantize $COMMON $FQ --gptq --skip-baseline --quiet --json $OUT/fq_tl_d_svd.json 2>&1 | grep -i 'perplexity after\|error' | head -2) wall $(( $(date +%s) - t0 )) s" | tee -a $LOG
