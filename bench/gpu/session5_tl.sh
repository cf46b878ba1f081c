#!/usr/bin/env bash
# Session 5, one warm call carrying .gpu/tl after a first call that unpacked the bundle and INC's source
# (`tar -C /root -xzf .gpu/inc.tar.gz`). Independent jobs side by side on the one GPU (tiny models are launch-bound):
#   1. issue #12: Intel Neural Compressor's own GPTQ (source checkout, INC defaults, asym int g128, fp32) beside ours on
#      the same machine: seed 42 (the protocol) plus other calibration seeds at W3 and W4; INC's dequantized
#      weights scored by our eval and compared tensor by tensor with ours (bench/gpu/inc_beside.py).
#   2. issue #11: W8A8 FP8 variants (RTN as before, GPTQ with the FP8 element grid, weight-only/activation-only parts),
#      and the GPTQ W8A8 model through the compressed-tensors FP8 export, scored from disk.
# Everything lands in $OUT/session5-tl.tar.gz plus a summary.
set -uo pipefail
W=/tmp/s5; source bench/gpu/inc_env.sh
mkdir -p $W/qs $W/fp8 $W/dump
nvidia-smi --query-gpu=name --format=csv,noheader | tee $W/gpu.txt
QSG="$QS quantize --model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --device cuda --dtype fp32 --skip-baseline --quiet --format int --asym --w-group-size 128 --method gptq --dynamic-groups --gptq-block-size 2048"
# INC, two chains
( for b in 3 4; do inc $b 42 $W/dump/inc_w${b}_s42; done; for s in 1 2; do inc 3 $s; done ) > $W/inc/chain1.txt 2>&1 &
( for s in 3 4; do inc 3 $s; done; for s in 1 2; do inc 4 $s; done ) > $W/inc/chain2.txt 2>&1 &
# ours: the same seeds; seed 42 saved as pseudoquant fp32 for the tensor comparison
( for b in 3 4; do echo "QS W$b seed 42 $($QSG --w-bits $b --seed 42 --save $W/dump/qs_w${b}_s42 --export pseudoquant 2>&1 | pick)"; done
  for s in 1 2 3 4; do echo "QS W3 seed $s $($QSG --w-bits 3 --seed $s 2>&1 | pick)"; done
  for s in 1 2; do echo "QS W4 seed $s $($QSG --w-bits 4 --seed $s 2>&1 | pick)"; done ) > $W/qs/log.txt 2>&1 &
# FP8 W8A8 variants (bf16 as the table, plus fp32)
( C="--model $M --calib $D/calib.txt --eval $D/eval_a.txt --eval-seq-len 512 --eval-batch-size 16 --num-sequences 128 --seq-len 512 --seed 42 --device cuda --skip-baseline --quiet --format fp8 --w-group-size -1 --a-group-size -1"
  for dt in bf16 fp32; do
    echo "fp8 $dt rtn W8A8 $($QS quantize $C --dtype $dt --method rtn --w-bits 8 --a-bits 8 2>&1 | pick)"
    echo "fp8 $dt gptq W8A8 $($QS quantize $C --dtype $dt --method gptq --w-bits 8 --a-bits 8 2>&1 | pick)"
    echo "fp8 $dt rtn W8A16 $($QS quantize $C --dtype $dt --method rtn --w-bits 8 --a-bits 16 2>&1 | pick)"
    echo "fp8 $dt gptq W8A16 $($QS quantize $C --dtype $dt --method gptq --w-bits 8 --a-bits 16 2>&1 | pick)"
    echo "fp8 $dt rtn W16A8 $($QS quantize $C --dtype $dt --method rtn --w-bits 16 --a-bits 8 2>&1 | pick)"
  done
  echo "fp8 bf16 gptq W8A8 act-order $($QS quantize $C --dtype bf16 --method gptq --quantization-order activation --w-bits 8 --a-bits 8 2>&1 | pick)"
  echo "fp8 bf16 gptq W8A8 export $($QS quantize $C --dtype bf16 --method gptq --w-bits 8 --a-bits 8 --save $W/fp8/ct --export compressed-tensors-fp8 2>&1 | pick)"
  echo "fp8 bf16 gptq W8A8 from disk $($QS eval --model $W/fp8/ct --data $D/eval_a.txt --seq-len 512 --batch-size 16 --device cuda --dtype bf16 2>&1 | pick)"
  echo "fp32 baseline $($QS eval --model $M --data $D/eval_a.txt --seq-len 512 --batch-size 16 --device cuda --dtype fp32 2>&1 | pick)"
  rm -rf $W/fp8/ct ) > $W/fp8/log.txt 2>&1 &
wait
# INC's weights scored by our eval, and compared with ours tensor by tensor
for b in 3 4; do
  [ -d $W/dump/inc_w${b}_s42 ] && echo "QS eval of INC W$b seed 42 weights $($QS eval --model $W/dump/inc_w${b}_s42 --data $D/eval_a.txt --seq-len 512 --batch-size 16 --device cuda --dtype fp32 2>&1 | pick)" >> $W/qs/log.txt
  [ -d $W/dump/inc_w${b}_s42 ] && [ -d $W/dump/qs_w${b}_s42 ] && python3 bench/gpu/inc_beside.py compare $W/dump/inc_w${b}_s42 $W/dump/qs_w${b}_s42 > $W/compare_w$b.txt 2>&1
done
rm -rf $W/dump
cat $W/gpu.txt $W/inc/chain*.txt $W/qs/log.txt $W/fp8/log.txt > $OUT/session5-tl-summary.txt
cp $W/compare_w3.txt $W/compare_w4.txt $OUT/ 2>/dev/null
tar -C $W -czf $OUT/session5-tl.tar.gz .
cat $OUT/session5-tl-summary.txt; head -30 $W/compare_w3.txt 2>/dev/null
