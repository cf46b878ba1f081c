"""Gathers the per-run JSON files of a GPU bench into one results.json and prints a summary table."""
import json, os, sys, glob
src, dst = sys.argv[1], sys.argv[2]
out = {}
for f in sorted(glob.glob(os.path.join(src, "*.json"))):
    try:
        out[os.path.basename(f)[:-5]] = json.load(open(f))
    except Exception as e:
        out[os.path.basename(f)[:-5]] = {"error": str(e)}
try:
    import torch
    out["gpu"] = torch.cuda.get_device_name()
    out["torch"] = torch.__version__
except Exception:
    pass
json.dump(out, open(dst, "w"), indent=1)
for k, v in out.items():
    if not isinstance(v, dict):
        continue
    if "perplexity_after" in v:
        print(f"{k:40s} ppl {v['perplexity_after']:.4f}  quantize {v.get('quantize_seconds', 0):.1f}s")
    elif "perplexity" in v:
        print(f"{k:40s} ppl {v['perplexity']:.5f}  ({v['windows']} windows, {v['seconds']:.1f}s)")
    elif "prefill_tokens_per_second" in v:
        print(f"{k:40s} prefill {v['prefill_tokens_per_second']:.0f} tok/s  decode {v['decode_tokens_per_second']:.1f} tok/s")
