#!/usr/bin/env bash
# On the GPU machine, from the repo root. Stage "a" needs only the bundle (.gpu/bundle.tar.xz) and testdata/:
# golden perplexity of micro-qwen3 on CUDA, forward throughput vs PyTorch eager on an 8-layer Llama-3.1-8B-shaped
# random model, and an MR-GPTQ smoke run on CUDA. Stage "b" needs tiny-llama at .gpu/models/tiny-llama (the bundle
# unpacked by stage "a" is still there while the machine stays warm): golden perplexities, forward throughput, and
# the FP-Quant accuracy rows of the core issue (bf16, calibration 128 x 512 of calib.txt seed 42, eval_a seq 512).
# Each stage writes $OUT/results-<stage>.json and $OUT/log-<stage>.txt and prints a summary table last.
set -uo pipefail
STAGE=${1:?stage a or b}
source bench/gpu/env.sh
R=/tmp/qs-results-$STAGE; rm -rf $R; mkdir -p $R
D=testdata/data
LOG=$OUT/log-$STAGE.txt
run() { echo "+ $*" >>$LOG; "$@" >>$LOG 2>&1; echo "exit $?" >>$LOG; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a $LOG
if [ "$STAGE" = a ]; then
  run $QS eval --model testdata/models/micro-qwen3 --data $D/eval_a.txt --seq-len 512 --dtype fp32 --device cuda --batch-size 16 --quiet --json $R/eval_micro-qwen3_fp32.json
  run $QS synth --overwrite --like llama-3.1-8b --layers 8 --out /tmp/l8b --tokenizer testdata/models/micro-qwen3
  run $QS bench forward --model /tmp/l8b --seq-len 2048 --device cuda --json $R/fwd_qs_llama8b-8layers.json
  run python3 bench/gpu/torch_forward.py /tmp/l8b --seq-len 2048 --json $R/fwd_pt_llama8b-8layers.json
  run $QS quantize --device cuda --json $R/acc_micro-qwen3_mrgptq_default.json
else
  M=.gpu/models/tiny-llama
  [ -f $M/config.json ] || python3 bench/gpu/pack_model.py unpack .gpu/tl $M
  run $QS eval --model $M --data $D/eval_a.txt --seq-len 512 --dtype fp32 --device cuda --batch-size 16 --quiet --json $R/eval_tiny-llama_fp32.json
  run $QS eval --model $M --data $D/eval_a.txt --seq-len 512 --dtype bf16 --device cuda --batch-size 16 --quiet --json $R/eval_tiny-llama_bf16.json
  run $QS bench forward --model $M --seq-len 1024 --device cuda --json $R/fwd_qs_tiny-llama.json
  run python3 bench/gpu/torch_forward.py $M --seq-len 1024 --json $R/fwd_pt_tiny-llama.json
  Q="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype bf16 --skip-baseline --quiet"
  run $Q --format int --w-bits 4 --w-group-size 128 --json $R/acc_int4_g128_rtn.json
  run $Q --format int --w-bits 4 --w-group-size 128 --gptq --json $R/acc_int4_g128_gptq.json
  run $Q --format nvfp --w-bits 4 --json $R/acc_nvfp4_rtn.json
  run $Q --format mxfp --w-bits 4 --a-bits 4 --transform hadamard --hadamard-group-size 32 --json $R/acc_mxfp4_rtn_had32_w4a4.json
  run $Q --preset mr-gptq --json $R/acc_nvfp4_mrgptq_w4a4.json
fi
python3 bench/gpu/collect.py $R $OUT/results-$STAGE.json
tail -n 30 $LOG | grep -iE "error|exception" | head -5
