#!/usr/bin/env python3
"""Issue #8 side-by-side: per-question log-likelihoods of the eval_a tasks from a plain transformers forward pass,
and their comparison with QuantSharp's `eval --tasks ... --json` output.

  task_check.py reference MODEL_DIR TASKS_DATA_DIR eval_a_next,eval_a_lastword OUT.json [--device cuda] [--limit N]
      (needs torch + transformers) one full forward per (context, continuation), no cache, no batching, fp32
  task_check.py compare QUANTSHARP.json REFERENCE.json [--tol 1e-3]
      (stdlib only) max |delta| of every log-likelihood, accuracy of both, PASS/FAIL

Scoring follows lm-eval (and QuantSharp): trailing context spaces move to the continuation, whole string and context
are encoded separately without special tokens, the continuation is the whole encoding past the context's length;
multiple choice: continuation = " " + choice, acc = argmax of the sums, acc_norm = argmax of sum / len(choice);
last word: context = text before the last space, continuation = " " + last word, acc = every token the argmax,
perplexity = exp(-mean log-likelihood).
"""
import json
import math
import os
import sys


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def encode_pair(encode, context, continuation):
    n = len(context) - len(context.rstrip())
    if n:
        continuation = context[-n:] + continuation
        context = context[:-n]
    whole = encode(context + continuation)
    ctx = encode(context)
    return ctx, whole[len(ctx):]


def requests_of(doc):
    """(requests, gold, choice texts) of one document: multiple choice if it has choices, else last word."""
    if "choices" in doc:
        return [(doc["context"], " " + c) for c in doc["choices"]], int(doc["label"]), doc["choices"]
    text = doc["text"].rstrip()
    cut = text.rfind(" ")
    return [(text[:cut], " " + text[cut + 1:])], 0, [text[cut + 1:]]


def argmax(values):
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def reference(model_dir, data_dir, tasks, out, device="cuda", limit=None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    tok = AutoTokenizer.from_pretrained(model_dir)
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    except TypeError:
        model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model = model.to(device=device, dtype=torch.float32).eval()  # fp32 whatever the default dtype of this transformers
    encode = lambda s: tok(s, add_special_tokens=False)["input_ids"]
    max_length = model.config.max_position_embeddings
    report = {"model": os.path.abspath(model_dir), "dtype": "fp32", "device": device, "scorer": "transformers", "results": {}, "samples": {}}
    for task in tasks:
        docs = read_jsonl(os.path.join(data_dir, task, "test.jsonl"))[:limit]
        samples = []
        for i, doc in enumerate(docs):
            reqs, gold, choices = requests_of(doc)
            lls, greedy = [], []
            for context, continuation in reqs:
                ctx, cont = encode_pair(encode, context, continuation)
                # lm-eval's left truncation to the model's window: keep the last max_length + 1 tokens, score the
                # continuation at the end (QuantSharp's scorer does the same).
                full = (ctx + cont)[-(max_length + 1):]
                ids = torch.tensor([full[:-1]], device=device)
                with torch.no_grad():
                    logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
                start = len(full) - 1 - len(cont)
                pos = torch.arange(start, start + len(cont), device=device)
                target = torch.tensor(cont, device=device)
                lls.append(float(logp[pos, target].double().sum()))
                greedy.append(bool((logp[pos].argmax(-1) == target).all()))
            normed = [ll / max(1, len(c)) for ll, c in zip(lls, choices)]
            samples.append({"doc": i, "gold": gold, "loglikelihoods": lls, "pred": argmax(lls), "pred_norm": argmax(normed),
                            "gold_is_greedy": greedy[gold]})
        n = len(samples)
        if "choices" in docs[0]:
            res = {"acc": sum(s["pred"] == s["gold"] for s in samples) / n,
                   "acc_norm": sum(s["pred_norm"] == s["gold"] for s in samples) / n}
        else:
            res = {"acc": sum(s["gold_is_greedy"] for s in samples) / n,
                   "perplexity": math.exp(-sum(s["loglikelihoods"][0] for s in samples) / n)}
        res["n"] = n
        report["results"][task] = res
        report["samples"][task] = samples
        print(f"transformers {task}: " + "  ".join(f"{k} {v:.4f}" for k, v in res.items() if k != "n") + f"  ({n} docs)")
    with open(out, "w") as f:
        json.dump(report, f, indent=1)


def compare(qs_path, ref_path, tol=1e-3):
    qs, ref = json.load(open(qs_path)), json.load(open(ref_path))
    ok = True
    for task, ref_samples in ref["samples"].items():
        if task not in qs.get("samples", {}):
            print(f"{task}: missing from {qs_path}")
            ok = False
            continue
        qs_samples = {s["doc"]: s for s in qs["samples"][task]}
        worst, worst_doc, pred_diff, count = 0.0, None, 0, 0
        for r in ref_samples:
            q = qs_samples.get(r["doc"])
            if q is None:
                print(f"{task}: doc {r['doc']} missing from {qs_path}")
                ok = False
                continue
            for a, b in zip(q["loglikelihoods"], r["loglikelihoods"]):
                count += 1
                if abs(a - b) > worst:
                    worst, worst_doc = abs(a - b), r["doc"]
            if q["pred"] != r["pred"] or q.get("pred_norm") != r.get("pred_norm") or q["gold_is_greedy"] != r["gold_is_greedy"]:
                pred_diff += 1
        acc_q, acc_r = qs["results"][task]["acc"], ref["results"][task]["acc"]
        passed = worst <= tol and pred_diff == 0 and acc_q == acc_r
        ok &= passed
        print(f"{task}: {len(ref_samples)} docs, {count} log-likelihoods, max |delta| {worst:.3e} (doc {worst_doc}), "
              f"acc QuantSharp {acc_q:.4f} transformers {acc_r:.4f}, docs with a different pick {pred_diff}: "
              f"{'PASS' if passed else 'FAIL'} (tolerance {tol:g})")
    print("SIDE-BY-SIDE " + ("PASS" if ok else "FAIL"))
    return ok


def main(argv):
    def opt(name, default, cast=str):
        return cast(argv[argv.index(name) + 1]) if name in argv else default
    if len(argv) >= 5 and argv[0] == "reference":
        reference(argv[1], argv[2], argv[3].split(","), argv[4], opt("--device", "cuda"), opt("--limit", None, int))
        return 0
    if len(argv) >= 3 and argv[0] == "compare":
        return 0 if compare(argv[1], argv[2], opt("--tol", 1e-3, float)) else 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
