#!/usr/bin/env bash
# Issue #5 acceptance table on a warm machine whose bundle is unpacked (stage 1 of README.md) and that carries the
# packed models (.gpu/tl = tiny-llama, .gpu/tq = tiny-qwen3, from pack_model.py): W4A4KV4 perplexity of
#   (a) RTN, no transform   (b) RTN + Hadamard rotations (QuaRot-style, KV rotated per head)
#   (c) FlatQuant, RTN weights   (d) FlatQuant, GPTQ weights
# beside bf16, eval_a seq 512 all windows, calibration 128 x 512 of calib.txt seed 42. MODELS="tl tq" by default.
# ROWS="bf16 a b c d" (default all) picks rows, so one model fits a 10-minute call or is split over two.
# (c) is also saved as flatquant-int4 and evaluated from disk, which must match the in-memory number (±0.5%).
set -uo pipefail
source bench/gpu/env.sh
[ -x "$QS" ] || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
D=testdata/data
LOG=$OUT/flatquant-table.txt; : >$LOG
ROWS=" ${ROWS:-bf16 a b c d} "
row() { [[ "$ROWS" == *" $1 "* ]]; }
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a $LOG
for m in ${MODELS:-tl tq}; do
  case $m in tl) name=tiny-llama;; tq) name=tiny-qwen3;; esac
  M=.gpu/models/$name
  [ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/$m $M
  case $m in tl) HG=512;; tq) HG=4096;; esac   # Hadamard orders: tiny-llama ffn 1408 = 2·512 + a 384 tail
  COMMON="--model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype bf16"
  KV="--w-bits 4 --a-bits 4 --k-bits 4 --v-bits 4 --kv-asym --kv-group-size 128"
  row bf16 && echo "$name bf16 $($QS eval --model $M --data $D/eval_a.txt --seq-len 512 --batch-size 16 --device cuda --dtype bf16 --json $OUT/fq_${m}_bf16.json 2>&1 | grep -i 'perplexity\|error' | tail -1)" | tee -a $LOG
  row a && echo "$name a_rtn $($QS quantize $COMMON $KV --format int --w-group-size -1 --skip-baseline --quiet --json $OUT/fq_${m}_a.json 2>&1 | grep -i 'perplexity after\|error' | head -2)" | tee -a $LOG
  row b && echo "$name b_rtn_hadamard $($QS quantize $COMMON $KV --format int --w-group-size -1 --transform hadamard --transform-group-size $HG --skip-baseline --quiet --json $OUT/fq_${m}_b.json 2>&1 | grep -i 'perplexity after\|error' | head -2)" | tee -a $LOG
  FQ="--method flatquant $KV --epochs 15 --lr 5e-3 --lwc --lac --add-diag"
  if row c; then
  t0=$(date +%s)
  echo "$name c_flatquant $($QS quantize $COMMON $FQ --skip-baseline --save $OUT/fq_${m}_c --overwrite --json $OUT/fq_${m}_c.json 2>$OUT/fq_${m}_c.progress | grep -i 'perplexity after\|error' | head -2) wall $(( $(date +%s) - t0 )) s" | tee -a $LOG
  echo "$name c_flatquant_from_disk $($QS eval --model $OUT/fq_${m}_c --data $D/eval_a.txt --seq-len 512 --batch-size 16 --device cuda --dtype bf16 2>&1 | grep -i 'perplexity\|error' | tail -1)" | tee -a $LOG
  rm -rf $OUT/fq_${m}_c   # keep $OUT small; the JSON and the progress log stay
  fi
  row d && t0=$(date +%s) && \
  echo "$name d_flatquant_gptq $($QS quantize $COMMON $FQ --gptq --skip-baseline --quiet --json $OUT/fq_${m}_d.json 2>&1 | grep -i 'perplexity after\|error' | head -2) wall $(( $(date +%s) - t0 )) s" | tee -a $LOG
done
