"""Loads a folder QuantSharp wrote with plain transformers and prints its perplexity by ../shared's protocol (eval text
tokenized with the tokenizers library, non-overlapping windows, mean CE of tokens 2..n), to compare with
`quantsharp eval` on the same folder. usage: python3 transformers_check.py MODEL_DIR EVAL_TXT SEQ_LEN [MAX_WINDOWS]"""
import math, os, sys, torch, torch.nn.functional as F
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM
model_dir, text, seq = sys.argv[1], sys.argv[2], int(sys.argv[3])
maxw = int(sys.argv[4]) if len(sys.argv) > 4 else 0
ids = torch.tensor(Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json")).encode(open(text, encoding="utf-8").read(), add_special_tokens=False).ids)
n = ids.numel() // seq
if maxw: n = min(n, maxw)
m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).cuda().eval()
nll, cnt = 0.0, 0
with torch.no_grad():
    for i in range(0, n, 16):
        b = torch.stack([ids[j * seq:(j + 1) * seq] for j in range(i, min(n, i + 16))]).cuda()
        lg = m(b).logits.float()
        nll += F.cross_entropy(lg[:, :-1].reshape(-1, lg.size(-1)), b[:, 1:].reshape(-1), reduction="sum").item()
        cnt += b[:, 1:].numel()
print(f"TRANSFORMERS {model_dir} windows {n} perplexity {math.exp(nll / cnt):.4f}")
