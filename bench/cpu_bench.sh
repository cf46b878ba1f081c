#!/usr/bin/env bash
# CPU benchmarks on the 2-core development machine (needs ../shared). Writes bench/results/cpu-*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/QuantSharp.Cli -c Release -v q >/dev/null
QS="dotnet src/QuantSharp.Cli/bin/Release/net10.0/QuantSharp.Cli.dll"
S=../shared; R=bench/results; mkdir -p $R
# Issue 2: the 64-window eval on tiny-llama, wall time including start-up.
/usr/bin/time -f "%e" -o /tmp/eval_wall.txt $QS eval --model $S/models/tiny-llama --data $S/data/eval_a.txt --seq-len 512 --max-windows 64 --device cpu --quiet --json $R/cpu-eval-tiny-llama-64w.json
echo "{\"wall_seconds_including_startup\": $(cat /tmp/eval_wall.txt), \"machine\": \"$(nproc)-core $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\"}" > $R/cpu-eval-tiny-llama-64w-wall.json
# Issue 2: full eval_a at seq 512 for tiny-qwen3 (fp32, CPU).
$QS eval --model $S/models/tiny-qwen3 --data $S/data/eval_a.txt --seq-len 512 --device cpu --quiet --json $R/cpu-eval-tiny-qwen3-full.json
# Issue 3: nvfp W4A4 MR-GPTQ on tiny-qwen3, calibration 128 x 512, on this CPU.
/usr/bin/time -f "%e" -o /tmp/q_wall.txt $QS quantize --model $S/models/tiny-qwen3 --preset mr-gptq --calib $S/data/calib.txt --eval $S/data/eval_a.txt --eval-max-windows 64 --device cpu --quiet --json $R/cpu-quantize-tiny-qwen3-mrgptq.json
echo "{\"wall_seconds_including_startup_and_two_64_window_evals\": $(cat /tmp/q_wall.txt)}" > $R/cpu-quantize-tiny-qwen3-mrgptq-wall.json
