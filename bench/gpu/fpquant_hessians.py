"""Runs the FP-Quant harness (fpquant_ref.py, from an FP-Quant checkout) while saving the Hessian of every GPTQ handle
of blocks 0 and 1 before GPTQ dampens it, then compares them with QuantSharp's dump (QUANTSHARP_DUMP_HESSIANS).
usage (in the FP-Quant checkout): DUMP=/tmp/fq QS_DUMP=/tmp/qs python3 fpquant_hessians.py <fpquant_ref.py args>"""
import os, runpy, sys, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fpquant_stubs  # noqa: F401  (before any FP-Quant import)
import src.quantization.gptq as g
saved, count = {}, [0]
orig = g.GPTQ.quantize
def quantize(self):
    i = count[0]; count[0] += 1
    if i < 14:
        saved[f"{i // 7}.{i % 7}"] = self.H.detach().float().cpu().clone()
    return orig(self)
g.GPTQ.quantize = quantize
sys.argv = ["fpquant_ref.py"] + sys.argv[1:]
try:
    runpy.run_path("fpquant_ref.py", run_name="__main__")
finally:
    from safetensors.torch import load_file
    # FP-Quant's handle order inside a block: q, k, v, o, up, gate, down (module definition order).
    slot_of = {0: "qkv", 3: "o", 4: "gate_up", 6: "down"}
    for layer in (0, 1):
        path = os.path.join(os.environ["QS_DUMP"], f"layer-{layer}.safetensors")
        if not os.path.exists(path): continue
        ours = load_file(path)
        for idx, slot in slot_of.items():
            theirs = saved.get(f"{layer}.{idx}")
            if theirs is None: continue
            a = ours[slot].float(); b = theirs
            rel = ((a - b).norm() / b.norm()).item()
            print(f"HESSIAN layer {layer} {slot:8s} rel.diff {rel:.3e}  |ours| {a.norm():.4e} |fpquant| {b.norm():.4e}  diag-mean ratio {(a.diag().mean()/b.diag().mean()).item():.4f}", flush=True)
