#!/usr/bin/env bash
# Issue #10 side by side, one GPU run: the fused GPTQ kernel checked against the tensor-op loop, then QuantSharp and
# the FP-Quant harness (.gpu/fpq) on the same 4-layer random model with Llama-3.1-8B layer shapes (vocab 8192),
# calibration 128 x 2048 of calib.txt, three configs. FP-Quant seconds per layer = (wall - load-only wall) / 4.
# Peak GPU memory of each process from nvidia-smi sampling. Raw outputs go to $OUT; collect_scale.py builds the tables.
set -uo pipefail
source bench/gpu/env.sh
D=$PWD/testdata/data; M=/tmp/l8b; L=${LAYERS:-4}
export EVAL=$D/eval_a.txt CALIB=$D/calib.txt PYTHONUNBUFFERED=1
RAW=$OUT/scale-raw.txt; : >$RAW
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a $RAW
for f in "nvfp 4096 4096" "nvfp 4096 14336" "int4 4096 4096"; do set -- $f
  $QS bench gptq --format $1 --rows $2 --columns $3 --device cuda 2>&1 | tee -a $RAW; done
[ -f $M/config.json ] || $QS synth --overwrite --like llama-3.1-8b --layers $L --vocab 8192 --out $M --tokenizer testdata/models/micro-qwen3 >>$RAW 2>&1
declare -A QSF=( [nvfp4_rtn_w4a16]="--format nvfp --w-bits 4" [int4_g128_gptq_w4a16]="--format int --w-bits 4 --w-group-size 128 --gptq"
                 [nvfp4_mrgptq_w4a4]="--preset mr-gptq" )
declare -A FQF=( [nvfp4_rtn_w4a16]="--format nvfp --w_bits 4" [int4_g128_gptq_w4a16]="--format int --w_bits 4 --w_group_size 128 --w_granularity group --gptq"
                 [nvfp4_mrgptq_w4a4]="--format nvfp --w_bits 4 --a_bits 4 --transform_class hadamard --hadamard_group_size 16 --gptq --w_observer mse --quantization_order activation" )
for c in nvfp4_rtn_w4a16 int4_g128_gptq_w4a16 nvfp4_mrgptq_w4a4; do
  echo "QS $c $(peak $OUT/qs_l8b_$c.log $QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-max-windows 1 --num-sequences 128 \
     --seq-len 2048 --device cuda --dtype bf16 --skip-baseline --quiet ${QSF[$c]} --json $OUT/qs_l8b_$c.json)" | tee -a $RAW
done
cd .gpu/fpq
FQ="python3 fpquant_ref.py --model_name_or_path $M --dataset_name_or_path local --num_sequences 128 --sequence_length 2048 --seed 42"
echo "FPQ load_only $(peak $OUT/fpq_load_only.log $FQ --w_bits 16 --a_bits 16)" | tee -a $RAW
for c in int4_g128_gptq_w4a16 nvfp4_mrgptq_w4a4 nvfp4_rtn_w4a16; do
  echo "FPQ $c $(peak $OUT/fpq_l8b_$c.log $FQ ${FQF[$c]})" | tee -a $RAW
done
