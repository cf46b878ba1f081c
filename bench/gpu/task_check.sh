#!/usr/bin/env bash
# Issue #8 on a warm machine whose bundle is unpacked (stage 1 of README.md), carrying .gpu/tl (and .gpu/tq for the
# table). Tasks: eval_a_next (200 multiple-choice questions) and eval_a_lastword (200 LAMBADA-style passages), both
# made from eval_a by bench/tasks/make_eval_a_tasks.py and committed under testdata/tasks-data.
#   PART=check  tiny-llama fp32 on CUDA: QuantSharp's per-question log-likelihoods beside a plain transformers
#               forward (task_check.py); passes when max |delta| <= 1e-3 and every pick (acc, acc_norm, greedy) agrees.
#   PART=table  recovery table (quantsharp compare) of bf16 vs W4A16 RTN (int4 g128) and W4A4 MR-GPTQ (nvfp4,
#               --preset mr-gptq), each quantized with calib.txt 128 x 512 seed 42, saved as pseudoquant and scored
#               from disk by eval --tasks. MODELS="tl tq" by default.
# PART="check table" by default. $OUT gets task-check.txt (the log), task-recovery.md, qs_tl_fp32.json,
# hf_tl_fp32.json and task-runs.tar.gz (every run's JSON with per-question samples).
# CPU rehearsal without a GPU or transformers: DEVICE=cpu LIMIT=5 NSEQ=4 MODEL_OVERRIDE=testdata/models/micro-qwen3
# QS=... OUT=/tmp/x PART=table bash bench/gpu/task_check.sh
set -uo pipefail
if [ -z "${QS:-}" ]; then source bench/gpu/env.sh; fi
[ -x "${QS%% *}" ] || command -v "${QS%% *}" >/dev/null || { echo "bundle not unpacked: run stage 1 first on a warm machine"; exit 3; }
DEVICE=${DEVICE:-cuda}; NSEQ=${NSEQ:-128}
D=testdata/data; TD=testdata/tasks-data; TASKS=eval_a_next,eval_a_lastword
LIMIT_ARG=${LIMIT:+--limit $LIMIT}
LOG=$OUT/task-check.txt; : >$LOG
PARTS=" ${PART:-check table} "
model() { # model tl|tq: sets name and M (unpacked on first use)
  case $1 in tl) name=tiny-llama;; tq) name=tiny-qwen3;; esac
  if [ -n "${MODEL_OVERRIDE:-}" ]; then M=$MODEL_OVERRIDE; return; fi
  M=.gpu/models/$name
  [ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/$1 $M
}
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name --format=csv,noheader | tee -a $LOG

if [[ $PARTS == *" check "* ]]; then
  model tl; t0=$(date +%s)
  $QS eval --model $M --tasks $TASKS --tasks-data $TD --dtype fp32 --device $DEVICE $LIMIT_ARG --quiet --json $OUT/qs_tl_fp32.json 2>&1 | sed "s/^/QS $name fp32: /" | tee -a $LOG
  python3 bench/gpu/task_check.py reference $M $TD $TASKS $OUT/hf_tl_fp32.json --device $DEVICE ${LIMIT:+--limit $LIMIT} 2>&1 | tail -5 | tee -a $LOG
  python3 bench/gpu/task_check.py compare $OUT/qs_tl_fp32.json $OUT/hf_tl_fp32.json 2>&1 | tee -a $LOG
  echo "check wall $(( $(date +%s) - t0 )) s" | tee -a $LOG
fi

if [[ $PARTS == *" table "* ]]; then
  R=$(mktemp -d /tmp/task_runs.XXXXXX)   # per invocation: the session scripts may run two at once
  TABLE=$OUT/task-recovery.md; : >$TABLE
  for m in ${MODELS:-tl tq}; do
    model $m; t0=$(date +%s)
    EV="--tasks $TASKS --tasks-data $TD --dtype bf16 --device $DEVICE $LIMIT_ARG --quiet"
    $QS eval --model $M $EV --json $R/${m}_bf16.json 2>&1 | sed "s/^/QS $name bf16: /" | tee -a $LOG
    Q="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-max-windows 16 --num-sequences $NSEQ --seq-len 512 --seed 42 --device $DEVICE --dtype bf16 --skip-baseline --quiet --export pseudoquant --overwrite"
    for v in "w4a16_rtn|--format int --w-bits 4 --w-group-size 128 --method rtn" "w4a4_mrgptq|--preset mr-gptq"; do
      n=${v%%|*}; f=${v#*|}; S=/tmp/task_q_${m}_$n
      $Q $f --save $S 2>&1 | grep -i 'perplexity\|error' | sed "s/^/QS $name $n quantize: /" | tee -a $LOG
      $QS eval --model $S $EV --json $R/${m}_$n.json 2>&1 | sed "s/^/QS $name $n: /" | tee -a $LOG
      { echo "### $name: bf16 vs $n"; echo; $QS compare $R/${m}_bf16.json $R/${m}_$n.json --labels bf16,$n 2>&1; echo; } >>$TABLE
      rm -rf $S
    done
    echo "$name table wall $(( $(date +%s) - t0 )) s" | tee -a $LOG
  done
  tar -C $R -czf $OUT/task-runs.tar.gz .
  cat $TABLE | tee -a $LOG
fi
