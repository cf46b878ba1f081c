#!/usr/bin/env bash
# One warm call (bundle unpacked, .gpu/tl carried): the issue #12 acceptance rows on tiny-llama (RTN/GPTQ/AWQ/HQQ at
# W3/W4, TEQ, AutoRound default and light), then the issue #10 CPU-vs-CUDA check (fp32, first 64 windows, the same
# commands as the CPU run in bench/results/cpu-vs-cuda.md). Per-run JSON stays on the machine; logs come back.
set -uo pipefail
REAL_OUT=$OUT; export OUT=/tmp/wo; mkdir -p $OUT
PART=a bash bench/gpu/wo_block_tiny_llama.sh
source bench/gpu/env.sh
M=.gpu/models/tiny-llama; D=testdata/data
Q="$QS quantize --model $M --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --device cuda --dtype fp32 --skip-baseline --quiet --format int --asym --w-group-size 128 --method hqq"
for b in 3 4; do echo "QS tiny-llama W$b hqq $($Q --w-bits $b 2>&1 | grep -i 'perplexity after\|error' | head -2)" | tee -a $OUT/wo-block-a.txt; done
PART=b bash bench/gpu/wo_block_tiny_llama.sh
C="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-max-windows 64 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --dtype float32 --skip-baseline --quiet"
for v in "int4_g128_rtn|--format int --w-bits 4 --w-group-size 128" "int4_g128_gptq|--format int --w-bits 4 --w-group-size 128 --gptq" "nvfp4_mrgptq_w4a4|--preset mr-gptq"; do
  n=${v%%|*}; f=${v#*|}
  echo "CUDA tiny-llama fp32 $n $($C $f 2>&1 | grep -i 'perplexity after\|error' | head -2)" | tee -a $OUT/cpu-vs-cuda.txt
done
cp $OUT/*.txt $REAL_OUT/
