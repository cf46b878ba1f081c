"""PyTorch eager forward throughput of a Hugging Face model folder, for comparison with `quantsharp bench forward`.

Same protocol as QuantSharp's ForwardBenchmark: random token ids, 2 warm-up passes, mean of N timed full-sequence
forwards (logits of every position), then batch-1 greedy decoding with transformers' KV cache after a 128-token
prefill, synchronising the GPU around each timed region.
usage: python3 torch_forward.py MODEL_DIR [--seq-len 2048] [--decode-tokens 128] [--json OUT]
"""
import argparse, json, time
import torch
from transformers import AutoModelForCausalLM

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("--seq-len", type=int, default=2048)
p.add_argument("--batch-size", type=int, default=1)
p.add_argument("--decode-tokens", type=int, default=128)
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--json")
a = p.parse_args()

t0 = time.time()
model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
load = time.time() - t0
g = torch.Generator().manual_seed(1234)
ids = torch.randint(0, model.config.vocab_size, (a.batch_size, a.seq_len), generator=g).cuda()
with torch.no_grad():
    for _ in range(2):
        model(ids, use_cache=False)
    torch.cuda.synchronize()
    t = time.time()
    for _ in range(a.repeats):
        model(ids, use_cache=False)
    torch.cuda.synchronize()
    prefill = (time.time() - t) / a.repeats

    out = model(ids[:1, :128], use_cache=True)
    past = out.past_key_values
    step = ids[:1, :1]
    torch.cuda.synchronize()
    t = time.time()
    for _ in range(a.decode_tokens):
        out = model(step, past_key_values=past, use_cache=True)
        past = out.past_key_values
        step = out.logits[:, -1:].argmax(-1)
        step.item()
    torch.cuda.synchronize()
    decode = time.time() - t

res = dict(framework=f"pytorch {torch.__version__} eager (sdpa)", gpu=torch.cuda.get_device_name(), load_seconds=load,
           seq_len=a.seq_len, batch=a.batch_size, prefill_seconds=prefill,
           prefill_tokens_per_second=a.batch_size * a.seq_len / prefill, decode_tokens=a.decode_tokens,
           decode_tokens_per_second=a.decode_tokens / decode)
print(json.dumps(res))
if a.json:
    json.dump(res, open(a.json, "w"), indent=2)
