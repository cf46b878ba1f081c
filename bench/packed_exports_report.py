"""Summarises bench/packed_exports.sh runs: perplexities, file sizes and bits per weight from the written folders."""
import json, os, struct, sys, platform, subprocess

out, dest = sys.argv[1], sys.argv[2]
raw = os.path.join(out, "raw")
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SIZES = {"F64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I64": 8, "I16": 2, "I8": 1, "U8": 1, "F8_E4M3": 1, "BOOL": 1}


def headers(folder):
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors") and f != "quantsharp_weight_params.safetensors":
            with open(os.path.join(folder, f), "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
                h = json.loads(fh.read(n))
            h.pop("__metadata__", None)
            yield from h.items()


def linear_of(name):
    parts = name.split(".")
    return ".".join(parts[:5]) if len(parts) >= 6 and parts[0] == "model" and parts[1] == "layers" and parts[4] in LINEARS else None


def sizes(folder, config):
    total, packed, weights = 0, 0, 0
    cfg = json.load(open(os.path.join(config, "config.json")))
    h, ffn = cfg["hidden_size"], cfg["intermediate_size"]
    hd = cfg.get("head_dim") or h // cfg["num_attention_heads"]
    qo, kv = cfg["num_attention_heads"] * hd, cfg.get("num_key_value_heads", cfg["num_attention_heads"]) * hd
    per_layer = qo * h + 2 * kv * h + h * qo + 3 * h * ffn
    weights = per_layer * cfg["num_hidden_layers"]
    for name, info in headers(folder):
        b = info["data_offsets"][1] - info["data_offsets"][0]
        total += b
        if linear_of(name) and not name.endswith(".bias"):
            packed += b
    return total, packed, weights


rows = []
machine = f"{os.cpu_count()}-core " + next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
for line in open(os.path.join(raw, "runs.txt")):
    model, recipe, fmt = line.split()
    q = json.load(open(os.path.join(raw, f"{model}.{recipe}.quantize.json")))
    e = json.load(open(os.path.join(raw, f"{model}.{recipe}.eval.json")))
    base = json.load(open(os.path.join(raw, f"{model}.base.eval.json")))
    folder = os.path.join(out, f"{model}.{recipe}")
    total, packed, weights = sizes(folder, folder)
    rows.append({
        "model": model, "recipe": recipe, "format": fmt,
        "method": q["config"]["method"], "w_bits": q["config"]["w_bits"], "a_bits": q["config"]["a_bits"],
        "perplexity_unquantized": base["perplexity"],
        "perplexity_fake_quant": q["perplexity_after"],
        "perplexity_packed_reload": e["perplexity"],
        "reload_vs_fake_quant_percent": (e["perplexity"] / q["perplexity_after"] - 1) * 100,
        "checkpoint_bytes": total,
        "linear_weight_bytes": packed,
        "linear_weight_count": weights,
        "bits_per_weight": packed * 8 / weights,
        "eval_windows": e["windows"], "seq_len": e["seq_len"],
    })

meta = {"machine": machine, "device": "cpu", "dtype": "fp32",
        "protocol": "eval_a.txt, first %d windows of %d tokens (--eval-max-windows), calibration %s" % (rows[0]["eval_windows"], rows[0]["seq_len"], "calib.txt (32 windows)"),
        "rows": rows}
json.dump(meta, open(dest + ".json", "w"), indent=2)

md = ["# Packed exports: fake-quant vs packed-reload perplexity, size, bits per weight", "",
      f"Measured on {machine}, CPU, fp32, by `bench/packed_exports.sh` (raw numbers: `packed-exports.json`).",
      f"Perplexity: testdata/data/eval_a.txt, the first {rows[0]['eval_windows']} windows of {rows[0]['seq_len']} tokens only "
      "(`--eval-max-windows`, to keep CPU time reasonable), so the values are not comparable with full-file numbers. "
      "Calibration: testdata/data/calib.txt, 32 windows (GPTQ Hessians, NVFP4 activation scales).",
      "", "*fake-quant* is the in-memory quantized model (`quantize`'s perplexity after); *packed reload* is `quantsharp eval` "
      "on the exported folder, which dequantizes the packed weights at load (and restores the rotations and activation "
      "quantizers of fp-quant / NVFP4 W4A4). Bits per weight = bytes of every tensor of the quantized linears "
      "(codes, scales, zeros, g_idx, global scales, rotation matrices) × 8 / their weight count; the checkpoint size "
      "also holds the unquantized embeddings, norms and (untied) lm_head.", "",
      "| model | recipe | format | method | W/A | unquantized | fake-quant | packed reload | Δ | checkpoint | bits/weight |",
      "|---|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    md.append(f"| {r['model']} | {r['recipe']} | {r['format']} | {r['method']} | W{r['w_bits']}A{r['a_bits']} | "
              f"{r['perplexity_unquantized']:.4f} | {r['perplexity_fake_quant']:.4f} | {r['perplexity_packed_reload']:.4f} | "
              f"{r['reload_vs_fake_quant_percent']:+.4f}% | {r['checkpoint_bytes']/1e6:.2f} MB | {r['bits_per_weight']:.3f} |")
md += ["", "fp-quant-pseudoquant stores dequantized weights (dqweight, fp32 here), so its bits/weight is the model dtype's. "
       "GPTQ and AWQ store float16 scales, so their reload differs from the fp32 fake-quant model by that rounding only; "
       "every other format reloads bit-identical weights. The layouts are checked against hand-computed known-answer "
       "vectors (tests/QuantSharp.Tests/Export); vLLM, transformers' fp_quant and QuTLASS cannot run on this machine."]
open(dest + ".md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
