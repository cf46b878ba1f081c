#!/usr/bin/env bash
# quantize --layer-wise (low-memory mode) against the normal mode on a ~2 GB random-weight model (CPU).
# Usage: bench/layerwise_lowmem.sh [WORKDIR] [LAYERS] [METHOD]
#   LAYERS default 16 = 2.08 GB bf16 (2 for a quick check); METHOD rtn (default) or gptq (16 x 128 calibration
#   windows of testdata/data/calib.txt, act order, static groups: one decoder layer at a time).
# Writes WORKDIR/layerwise-lowmem[-gptq].json; peak memory is the kernel's VmHWM (GNU time's maximum RSS and the CLI's
# own reading), the layer-wise run under a GC heap limit (GC_LIMIT, default 0x20000000 = 512 MiB). RTN needs ~2 GB
# RAM for the layer-wise run, ~4.5 GB for the normal one, ~5 GB disk, and about 10 minutes on 2 cores; GPTQ about
# twice the time.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/lwbench}
layers=${2:-16}
method=${3:-rtn}
gc_limit=${GC_LIMIT:-0x20000000}
mkdir -p "$work"
# QS_DLL: a copy of the built CLI to run instead (so the tree can be rebuilt while a long run goes on).
if [ -z "${QS_DLL:-}" ]; then
    dotnet build "$repo/src/QuantSharp.Cli" -c Release -m:1 -v q >/dev/null
    QS_DLL="$repo/src/QuantSharp.Cli/bin/Release/net10.0/QuantSharp.Cli.dll"
fi
QS=(dotnet "$QS_DLL")
model="$work/m-$layers"
[ -f "$model/config.json" ] || "${QS[@]}" synth --like llama-3.2-1b --vocab 32000 --layers "$layers" \
    --tokenizer "$repo/testdata/models/micro-qwen3" --out "$model"
flags=(--model "$model" --method "$method" --format int --w-bits 4 --w-group-size 128 --asym --dtype bf16 --export quantsharp --overwrite --quiet)
suffix=""
if [ "$method" = gptq ]; then
    flags+=(--calib "$repo/testdata/data/calib.txt" --num-sequences 16 --seq-len 128 --quantization-order activation)
    suffix="-gptq"
fi

DOTNET_GCHeapHardLimit=$gc_limit /usr/bin/time -v "${QS[@]}" quantize "${flags[@]}" --layer-wise \
    --save "$work/lw$suffix" --json "$work/lw$suffix.json" 2> "$work/lw$suffix.time"
/usr/bin/time -v "${QS[@]}" quantize "${flags[@]}" --device cpu --skip-baseline --eval-seq-len 128 --eval-max-windows 1 \
    --skip-memory-check --save "$work/normal$suffix" --json "$work/normal$suffix.json" 2> "$work/normal$suffix.time"

python3 - "$work" "$model" "$suffix" "$gc_limit" <<'PY'
import hashlib, json, os, re, sys
work, model, suffix, gc_limit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def hwm(path):
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(path).read()).group(1)) * 1024
def hashes(d):
    out = {}
    for f in sorted(os.listdir(d)):
        h = hashlib.sha256()
        with open(os.path.join(d, f), "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 24), b""): h.update(chunk)
        out[f] = h.hexdigest()
    return out
lw, normal = json.load(open(f"{work}/lw{suffix}.json")), json.load(open(f"{work}/normal{suffix}.json"))
lw.pop("layers", None)
hl, hn = hashes(f"{work}/lw{suffix}"), hashes(f"{work}/normal{suffix}")
result = {
    "model": {"shape": "llama-3.2-1b, vocab 32000", "layers": json.load(open(f"{model}/config.json"))["num_hidden_layers"],
              "input_bytes": lw["input_bytes"], "dtype": "bf16"},
    "quantization": ("gptq int4 g128 asym, act order, static groups, 16 x 128 calibration tokens" if suffix else "rtn int4 g128 asym"),
    "layer_wise": {**lw, "gnu_time_max_rss_bytes": hwm(f"{work}/lw{suffix}.time"), "dotnet_gc_heap_hard_limit": gc_limit},
    "normal": {"gnu_time_max_rss_bytes": hwm(f"{work}/normal{suffix}.time"), "peak_memory_bytes": normal["peak_memory_bytes"],
               "measured_quantize_peak_cpu_bytes": normal["measured_quantize_peak_cpu_bytes"],
               "quantize_seconds": normal["quantize_seconds"], "total_seconds": normal["total_seconds"],
               "phase_seconds": normal["phase_seconds"]},
    "sha256_layer_wise": hl, "sha256_normal": hn, "identical": hl == hn,
}
json.dump(result, open(f"{work}/layerwise-lowmem{suffix}.json", "w"), indent=1)
mib = 1 << 20
print(f"layer-wise peak RSS {result['layer_wise']['gnu_time_max_rss_bytes']/mib:.0f} MiB "
      f"(runtime alone {lw['runtime_baseline_rss_bytes']/mib:.0f} MiB), normal {result['normal']['gnu_time_max_rss_bytes']/mib:.0f} MiB, "
      f"identical: {result['identical']}")
PY
