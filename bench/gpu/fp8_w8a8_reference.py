"""Issue #11: an independent W8A8 FP8 reference in PyTorch (torch.float8_e4m3fn casts) on tiny-llama, to tell whether
QuantSharp's +0.73% over bf16 is the scheme or our code. Per-output-channel weight scales absmax/448, dynamic per-token
activation scales absmax/448 on the input of every decoder linear (lm_head kept), round-to-nearest-even by the cast,
bf16 compute, ../shared's perplexity protocol (eval_a, 512-token non-overlapping windows, no BOS).
usage: python3 fp8_w8a8_reference.py MODEL_DIR EVAL_TXT"""
import math, sys, torch, torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

mdir, evalp = sys.argv[1], sys.argv[2]
tok = Tokenizer.from_file(f"{mdir}/tokenizer.json")
ids = torch.tensor(tok.encode(open(evalp, encoding="utf-8").read(), add_special_tokens=False).ids)
model = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.bfloat16).cuda().eval()
F8 = 448.0

def fp8(x, dim):  # fake-quantize x to E4M3 with absmax scales along dim (kept), computed in float32
    x32 = x.float()
    s = x32.abs().amax(dim=dim, keepdim=True).clamp_min(1e-12) / F8
    return ((x32 / s).to(torch.float8_e4m3fn).float() * s).to(x.dtype)

@torch.no_grad()
def ppl(m, seq=512):
    n = ids.numel() // seq; nll = cnt = 0
    for i in range(0, n, 16):
        b = torch.stack([ids[j * seq:(j + 1) * seq] for j in range(i, min(n, i + 16))]).cuda()
        lg = m(b).logits.float()
        nll += F.cross_entropy(lg[:, :-1].reshape(-1, lg.size(-1)), b[:, 1:].reshape(-1), reduction="sum").item()
        cnt += b[:, 1:].numel()
    return math.exp(nll / cnt)

base = ppl(model)
with torch.no_grad():
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and ".layers." in name:
            mod.weight.copy_(fp8(mod.weight, 1))
            mod.register_forward_pre_hook(lambda m, a: (fp8(a[0], -1),))
q = ppl(model)
print(f"bf16 {base:.4f}  w8a8_fp8_torch {q:.4f}  (+{100 * (q / base - 1):.2f}%)")
