#!/usr/bin/env bash
# Issue #7, memory guards: the estimate `quantize` prints before loading (estimated_peak_gpu_bytes, estimated_peak_cpu_bytes)
# beside the measured peaks (peak_gpu_bytes: the largest device memory in use after a layer; the nvidia-smi peak of the
# whole process, CUDA context included; measured_peak_cpu_bytes: VmHWM of the whole run) on the 4-layer
# Llama-3.1-8B-shaped random model, MR-GPTQ, calibration 128 x 2048: plain, --cpu-offload-activations, and
# --cpu-offload-modules. Acceptance: estimate within 25% of the measured peak. About 2-3 minutes on an H200.
# CPU check of the command lines (no GPU): MODEL=testdata/models/micro-qwen3 DEVICE=cpu DTYPE=fp32 NSEQ=4 SEQLEN=64 \
#   QS=src/QuantSharp.Cli/bin/Release/net10.0/QuantSharp.Cli OUT=/tmp/me bash bench/gpu/memory_estimate.sh
set -uo pipefail
if [ -z "${QS:-}" ]; then source bench/gpu/env.sh; fi
OUT=${OUT:-/tmp/memory-estimate}; mkdir -p $OUT
D=$PWD/testdata/data; T=testdata/models/micro-qwen3
DEVICE=${DEVICE:-cuda}; DTYPE=${DTYPE:-bf16}; NSEQ=${NSEQ:-128}; SEQLEN=${SEQLEN:-2048}
RAW=$OUT/memory-estimate.txt; : >$RAW
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a $RAW
MODEL=${MODEL:-/tmp/l8b4}
[ -f $MODEL/config.json ] || $QS synth --overwrite --like llama-3.1-8b --layers 4 --vocab 8192 --out $MODEL --tokenizer $T >/dev/null 2>&1
Q="$QS quantize --model $MODEL --preset mr-gptq --calib $D/calib.txt --eval $D/eval_a.txt --eval-max-windows 1 --eval-seq-len 512 --num-sequences $NSEQ --seq-len $SEQLEN --device $DEVICE --dtype $DTYPE --skip-baseline --quiet"
for mode in plain offload-activations offload-modules; do
  case $mode in
    plain) extra="";;
    offload-activations) extra="--cpu-offload-activations";;
    offload-modules) extra="--cpu-offload-modules --cpu-offload-activations";;
  esac
  smi=""
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > $OUT/smi-$mode.txt & mon=$!
  fi
  $Q $extra --json $OUT/mem-$mode.json >>$RAW 2>&1; rc=$?
  if [ -n "${mon:-}" ]; then kill $mon; wait $mon 2>/dev/null; smi=$(sort -n $OUT/smi-$mode.txt | tail -1); rm -f $OUT/smi-$mode.txt; unset mon; fi
  [ $rc -eq 0 ] || { echo "$mode: quantize failed (rc $rc)" | tee -a $RAW; tail -5 $RAW; continue; }
  python3 - "$OUT/mem-$mode.json" "$mode" "$smi" <<'PY' | tee -a $RAW
import json, sys
d = json.load(open(sys.argv[1])); mode, smi = sys.argv[2], sys.argv[3]
G = lambda b: round(b / 2**30, 2)
eg, mg = d.get('estimated_peak_gpu_bytes'), d.get('peak_gpu_bytes')
ec, mc = d['estimated_peak_cpu_bytes'], d['measured_peak_cpu_bytes']
line = f"{mode}: CPU est {G(ec)} GiB measured {G(mc)} GiB ratio {ec / mc:.3f}"
if eg and mg:
    line += f" | GPU est {G(eg)} GiB measured (allocator, per layer) {G(mg)} GiB ratio {eg / mg:.3f}"
if smi:
    line += f" | nvidia-smi peak {round(int(smi) / 1024, 2)} GiB" + (f" ratio {eg / (int(smi) * 2**20):.3f}" if eg else "")
print(line)
print("  parts GiB", {k: G(v) for k, v in d['memory_estimate_parts'].items()})
PY
done
