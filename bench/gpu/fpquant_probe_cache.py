"""Probes FP-Quant's calibration forward under transformers 5.x: does the attention reuse a KV cache across calibration
samples (keys growing past one window), and how large are the o_proj inputs per sample compared with q_proj's?
usage (in an FP-Quant checkout): python3 fpquant_probe_cache.py <fpquant_ref.py args>"""
import os, runpy, sys, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fpquant_stubs  # noqa: F401  (before any FP-Quant import)
import transformers.cache_utils as cu
longest = [0]
for cls in [c for c in vars(cu).values() if isinstance(c, type) and hasattr(c, "update")]:
    orig = cls.update
    def update(self, key_states, value_states, *a, _orig=orig, **k):
        out = _orig(self, key_states, value_states, *a, **k)
        try:
            longest[0] = max(longest[0], out[0].shape[-2])
        except Exception:
            pass
        return out
    cls.update = update
import src.quantization.gptq as g
calls = {}
orig_update = g.GPTQ.update
def gupdate(self, inp):
    n = calls.setdefault(id(self), [])
    if len(n) < 4: n.append(inp.float().pow(2).mean().sqrt().item())
    return orig_update(self, inp)
g.GPTQ.update = gupdate
sys.argv = ["fpquant_ref.py"] + sys.argv[1:]
try:
    runpy.run_path("fpquant_ref.py", run_name="__main__")
finally:
    print("PROBE longest key length seen by any cache update:", longest[0], flush=True)
    for i, (k, v) in enumerate(list(calls.items())[:7]):
        print(f"PROBE block0 handle {i} (q,k,v,o,up,gate,down order) input RMS of first samples: {[round(x, 4) for x in v]}", flush=True)
