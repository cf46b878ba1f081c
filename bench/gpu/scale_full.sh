#!/usr/bin/env bash
# Issue #10, QuantSharp alone: the full 32-layer Llama-3.1-8B-shaped model with the MR-GPTQ config (wall time including
# load and the pseudoquant write), 2 layers of Llama-3.1-70B shape (80-layer projection), and the 4-layer 8B-shaped
# model with calibration activations offloaded to CPU (peak GPU memory); the full and 70B-shaped models again with layers
# streamed from CPU memory (--cpu-offload-modules --cpu-offload-activations). $OUT returns at most 8 files: the JSON of
# the last runs may not all come back; the console lines carry the numbers. Vocab 8192, calibration 128 x 2048 of calib.txt.
set -uo pipefail
source bench/gpu/env.sh
D=$PWD/testdata/data; T=testdata/models/micro-qwen3
RAW=$OUT/scale-full.txt; : >$RAW
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a $RAW
Q="$QS quantize --calib $D/calib.txt --eval $D/eval_a.txt --eval-max-windows 1 --num-sequences 128 --seq-len 2048 --device cuda --dtype bf16 --skip-baseline --quiet"
PART=${PART:-all}  # a: the 32-layer runs, b: 70B-shaped and 4-layer runs, m: 70B-shaped only (one call is at most 10 minutes)
if [ "$PART" = a ] || [ "$PART" = all ]; then
echo "SYNTH 8b-32 $( { /usr/bin/time -f %e $QS synth --overwrite --like llama-3.1-8b --layers 32 --vocab 8192 --out /tmp/l8b32 --tokenizer $T >/dev/null; } 2>&1 | tail -1) s" | tee -a $RAW
echo "QS 8b-32 mrgptq+save $(peak /tmp/q8b.log $Q --model /tmp/l8b32 --preset mr-gptq --save /tmp/o8b --export pseudoquant --json $OUT/qs_8b32_mrgptq.json)" | tee -a $RAW
tail -3 /tmp/q8b.log | tee -a $RAW; du -sh /tmp/o8b | tee -a $RAW
echo "QS 8b-32 mrgptq streamed $(peak /tmp/q8s.log $Q --model /tmp/l8b32 --preset mr-gptq --cpu-offload-modules --cpu-offload-activations --calib-batch-size 4 --json $OUT/qs_8b32_mrgptq_streamed.json)" | tee -a $RAW
tail -3 /tmp/q8s.log | tee -a $RAW
rm -rf /tmp/l8b32 /tmp/o8b
fi
if [ "$PART" != a ]; then
$QS synth --overwrite --like llama-3.1-70b --layers 2 --vocab 8192 --out /tmp/l70b --tokenizer $T >/dev/null 2>&1
echo "QS 70b-2 mrgptq $(peak /tmp/q70.log $Q --model /tmp/l70b --preset mr-gptq --json $OUT/qs_70b2_mrgptq.json)" | tee -a $RAW
tail -3 /tmp/q70.log | tee -a $RAW
echo "QS 70b-2 mrgptq streamed $(peak /tmp/q70s.log $Q --model /tmp/l70b --preset mr-gptq --cpu-offload-modules --cpu-offload-activations --calib-batch-size 4 --json $OUT/qs_70b2_mrgptq_streamed.json)" | tee -a $RAW
tail -3 /tmp/q70s.log | tee -a $RAW; rm -rf /tmp/l70b
fi
if [ "$PART" = b ] || [ "$PART" = all ]; then
$QS synth --overwrite --like llama-3.1-8b --layers 4 --vocab 8192 --out /tmp/l8b --tokenizer $T >/dev/null 2>&1
echo "QS 8b-4 mrgptq offload $(peak /tmp/qo.log $Q --model /tmp/l8b --preset mr-gptq --cpu-offload-activations --calib-batch-size 4 --json $OUT/qs_8b4_mrgptq_offload.json)" | tee -a $RAW
echo "QS 8b-4 mrgptq $(peak /tmp/qm.log $Q --model /tmp/l8b --preset mr-gptq --json $OUT/qs_8b4_mrgptq.json)" | tee -a $RAW
echo "QS 8b-4 gptq $(peak /tmp/qg.log $Q --model /tmp/l8b --format int --w-bits 4 --w-group-size 128 --gptq --json $OUT/qs_8b4_gptq.json)" | tee -a $RAW
echo "QS 8b-4 rtn $(peak /tmp/qr.log $Q --model /tmp/l8b --format nvfp --w-bits 4 --json $OUT/qs_8b4_rtn.json)" | tee -a $RAW
echo "QS 8b-4 load-only $(peak /tmp/ql.log $QS eval --model /tmp/l8b --data $D/eval_a.txt --seq-len 2048 --max-windows 1 --device cuda --dtype bf16 --quiet)" | tee -a $RAW
fi
for f in $OUT/qs_*.json; do python3 -c "
import json,sys; d=json.load(open('$f')); print('$(basename $f)', 'quantize_s', round(d['quantize_seconds'],2), {k: round(v,2) for k,v in d['phase_seconds'].items()}, 'layer_gpu_GiB', [round(x/2**30,2) for x in d.get('layer_gpu_bytes') or []][:40])" | tee -a $RAW; done
