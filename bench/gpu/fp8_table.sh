#!/usr/bin/env bash
# Issue #11 table on a warm machine whose bundle is unpacked (stage 1 of README.md) and that carries .gpu/tl (packed
# tiny-llama): eval_a seq 512 all windows, calibration 128 x 512 of calib.txt seed 42, bf16 on CUDA:
#   bf16 | INT4 GPTQ W4A16 (int, symmetric, group 128) | FP8-aware GPTQ W4A16 (same INT settings, OCP; saved in the
#   quantsharp format and scored again from disk) | FP8-aware GPTQ W4A8 (eval --w4a8 --measure, 128 x 512) |
#   W8A8 FP8 (per-channel weights, dynamic per-token activations) | quantize-on-load mxfp4 vs quantize --method rtn mxfp4
#   (Hadamard 32), plus the FP8-aware rows with --fp8-variant gaudi.
# Targets: FP8-aware within 1% of INT4 GPTQ; W4A8 within 1% of FP8-aware W4A16; W8A8 within 0.5% of bf16;
# on-load equal to rtn (±0.05%). CPU check here: QS=<cli> MODEL=testdata/models/micro-qwen3 DEVICE=cpu DTYPE=fp32
# EVAL_MAX=4 NSEQ=8 SEQ=128 OUT=/tmp/x bash bench/gpu/fp8_table.sh
set -uo pipefail
if [ -z "${QS:-}" ]; then source bench/gpu/env.sh; fi
[ -x "$QS" ] || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
D=testdata/data
M=${MODEL:-.gpu/models/tiny-llama}
[ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
DEV=${DEVICE:-cuda}; DT=${DTYPE:-bf16}; NSEQ=${NSEQ:-128}; SEQ=${SEQ:-512}
QMAX=${EVAL_MAX:+--eval-max-windows $EVAL_MAX}; EMAX=${EVAL_MAX:+--max-windows $EVAL_MAX}
TMP=${TMPDIR:-/tmp}/fp8_table; rm -rf $TMP; mkdir -p $TMP
LOG=$OUT/fp8-table.txt; : >$LOG
COMMON="--model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 $QMAX --num-sequences $NSEQ --seq-len $SEQ --seed 42 --device $DEV --dtype $DT --skip-baseline --quiet"
GPTQ="--method gptq --format int --w-bits 4 --w-group-size 128"
EVAL="--data $D/eval_a.txt --seq-len 512 --batch-size 16 $EMAX --device $DEV --dtype $DT"
pick() { grep -E "perplexity( after:)? [0-9.]+( |$)|error" | tail -1; }   # the result line (not k/n progress), or the error
(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo cpu) | tee -a $LOG
t0=$(date +%s)
echo "bf16 $($QS eval --model $M $EVAL --json $OUT/fp8_bf16.json 2>&1 | pick)" | tee -a $LOG
echo "int4_gptq_w4a16 $($QS quantize $COMMON $GPTQ --json $OUT/fp8_gptq.json 2>&1 | pick)" | tee -a $LOG
for v in ocp gaudi; do
  J=$([ $v = ocp ] && echo "--json $OUT/fp8_dpq.json")
  echo "fp8aware_${v}_gptq_w4a16 $($QS quantize $COMMON $GPTQ --fp8-aware --fp8-variant $v --save $TMP/dpq_$v --export quantsharp --overwrite $J 2>&1 | pick)" | tee -a $LOG
  echo "fp8aware_${v}_w4a16_from_disk $($QS eval --model $TMP/dpq_$v $EVAL 2>&1 | pick)" | tee -a $LOG
  J=$([ $v = ocp ] && echo "--json $OUT/fp8_w4a8.json")
  echo "fp8aware_${v}_gptq_w4a8 $($QS eval --model $TMP/dpq_$v $EVAL --w4a8 --measure $D/calib.txt --measure-num-sequences $NSEQ --measure-seq-len $SEQ $J 2>&1 | pick)" | tee -a $LOG
done
echo "w8a8_fp8_dynamic $($QS quantize $COMMON --method rtn --format fp8 --w-bits 8 --a-bits 8 --w-group-size -1 --a-group-size -1 --json $OUT/fp8_w8a8.json 2>&1 | pick)" | tee -a $LOG
echo "mxfp4_on_load $($QS eval --model $M $EVAL --quantize-on-load mxfp4 --hadamard-group-size 32 --json $OUT/fp8_onload.json 2>&1 | pick)" | tee -a $LOG
echo "mxfp4_quantize_rtn $($QS quantize $COMMON --method rtn --format mxfp --w-bits 4 --a-bits 4 --transform hadamard --transform-group-size 32 --json $OUT/fp8_rtn_mxfp4.json 2>&1 | pick)" | tee -a $LOG
echo "wall $(( $(date +%s) - t0 )) s" | tee -a $LOG
rm -rf $TMP
