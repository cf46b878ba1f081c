"""Which layer-0 GPTQ Hessians are right? Computes them three ways on the same calibration windows and compares
their shapes (trace-normalised, so FP-Quant's per-sample vs our per-token normalisation drops out):
  true  - plain transformers forward, inputs of q_proj / o_proj / up_proj / down_proj of layer 0, rotated by the
          Sylvester Hadamard of group G exactly as FP-Quant's online transform does;
  fpq   - FP-Quant's GPTQ handles (fpquant_ref.py run in this process, GPTQ.quantize patched to save H);
  ours  - QuantSharp's dump (QUANTSHARP_DUMP_HESSIANS=<dir>, layer-0.safetensors, slots qkv/o/gate_up/down).
Also compares FP-Quant's first o_proj input (as its hook sees it) with the plain forward's.
usage (in an FP-Quant checkout, EVAL/CALIB set): python3 diag_hessians.py MODEL QS_DUMP NSEQ G <fpquant flags...>"""
import os, sys, random, runpy, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fpquant_stubs  # noqa: F401
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM
from safetensors.torch import load_file

model_dir, qs_dump, nseq, G = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fpq_flags = sys.argv[5:]
dev = "cuda"

def had(x, g):
    H = torch.ones(1, 1, dtype=torch.float64)
    while H.shape[0] < g: H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    H = (H / g ** 0.5).to(x.dtype).to(x.device)
    s = x.shape
    return (x.reshape(-1, g) @ H).reshape(s)

tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
ids = torch.tensor(tok.encode(open(os.environ["CALIB"], encoding="utf-8").read(), add_special_tokens=False).ids)
rng = random.Random(42)
wins = []
for _ in range(nseq):
    s = rng.randint(0, ids.numel() - 512 - 1)
    wins.append(ids[s:s + 512])

# 1. true Hessians from the plain model (bf16 forward, inputs rotated in bf16 as FP-Quant does, accumulated in fp32)
m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).to(dev).eval()
L0 = m.model.layers[0]
true = {k: None for k in ("qkv", "o", "gate_up", "down")}
first_o = {}
def hook(slot):
    def f(mod, args):
        x = had(args[0], G) if G > 1 else args[0]
        if slot == "o" and "x" not in first_o: first_o["x"] = x.detach().float().cpu()
        x = x.reshape(-1, x.shape[-1]).float()
        h = x.t() @ x
        h = h.cpu(); true[slot] = h if true[slot] is None else true[slot] + h
    return f
hs = [L0.self_attn.q_proj.register_forward_pre_hook(hook("qkv")), L0.self_attn.o_proj.register_forward_pre_hook(hook("o")),
      L0.mlp.up_proj.register_forward_pre_hook(hook("gate_up")), L0.mlp.down_proj.register_forward_pre_hook(hook("down"))]
with torch.no_grad():
    for w in wins: m(w[None].to(dev))
for h in hs: h.remove()
del m; torch.cuda.empty_cache()

# 2. FP-Quant's handles
import src.quantization.gptq as g
saved, count, first_in = {}, [0], {}
orig_q, orig_u = g.GPTQ.quantize, g.GPTQ.update
def quantize(self):
    i = count[0]; count[0] += 1
    if i < 7: saved[i] = self.H.detach().float().cpu().clone()
    return orig_q(self)
def update(self, inp):
    first_in.setdefault(id(self), inp.detach().float().cpu().clone())
    return orig_u(self, inp)
g.GPTQ.quantize, g.GPTQ.update = quantize, update
sys.argv = ["fpquant_ref.py", "--model_name_or_path", model_dir, "--dataset_name_or_path", "local", "--num_sequences", str(nseq),
            "--sequence_length", "512", "--seed", "42"] + fpq_flags
try:
    runpy.run_path("fpquant_ref.py", run_name="__main__")
except SystemExit:
    pass

ours = load_file(os.path.join(qs_dump, "layer-0.safetensors")) if os.path.exists(os.path.join(qs_dump, "layer-0.safetensors")) else {}
def shape_diff(a, b):
    a = a.double() / a.double().trace(); b = b.double() / b.double().trace()
    return ((a - b).norm() / b.norm()).item()
idx = {"qkv": 0, "o": 3, "gate_up": 4, "down": 6}   # FP-Quant handle order: q, k, v, o, up, gate, down
for slot, i in idx.items():
    t = true[slot]
    line = f"DIAG slot {slot:8s} true-trace/token {t.trace().item() / (nseq * 512):.4e}"
    if i in saved:
        f = saved[i]
        line += f" | fpq trace*nseq/(2*tokens) {f.trace().item() / 2 / 512:.4e} shape-diff-vs-true {shape_diff(f, t):.3e}"
    if slot in ours:
        o = ours[slot].float()
        line += f" | ours trace/2 {o.trace().item() / 2:.4e} shape-diff-vs-true {shape_diff(o, t):.3e}"
    print(line, flush=True)
handles = list(first_in.values())
if len(handles) > 3:
    a, b = handles[3].reshape(-1, handles[3].shape[-1]), first_o["x"].reshape(-1, first_o["x"].shape[-1])
    print(f"DIAG o_proj first input: fpq rms {a.pow(2).mean().sqrt():.4e} true rms {b.pow(2).mean().sqrt():.4e} "
          f"rel diff {(a - b).norm() / b.norm():.3e} shapes {tuple(a.shape)} {tuple(b.shape)}", flush=True)
