"""Run Intel Neural Compressor's GPTQ (from a source checkout, INC defaults, asymmetric int group 128) on a model with
../shared's protocol (128 windows x 512 of calib.txt drawn with random.Random(SEED), eval_a seq 512 all windows, fp32),
print its perplexity and, with DUMP=dir, write the dequantized model as a plain Hugging Face float checkpoint so that
QuantSharp can score INC's weights and compare them tensor by tensor with its own (compare mode below).
Same protocol as ../shared/peers/inc_ref.py (which stays the reference harness); this script only adds the seed and
the dump.
usage: INC_SRC=<checkout> EVAL=... CALIB=... python3 inc_beside.py run MODEL_DIR BITS SEED [DUMP_DIR]
       python3 inc_beside.py compare INC_DIR OURS_DIR        # per-layer share of differing weights"""
import os, sys, json, math, random, shutil, time, types
import torch, torch.nn.functional as F


def run(mdir, bits, seed, dump):
    for name in ("prettytable", "pydantic"):
        try:
            __import__(name)
        except ImportError:
            m = types.ModuleType(name)
            if name == "prettytable":
                class _T:
                    def __init__(self, *a, **k): self.rows, self.field_names, self.title = [], [], ""
                    def add_row(self, r, *a, **k): self.rows.append(r)
                    def add_rows(self, rs): self.rows += list(rs)
                    def get_string(self, *a, **k): return "\n".join(map(str, self.rows))
                    __str__ = get_string
                m.PrettyTable = _T
            else:
                class BaseModel:
                    def __init__(self, **kw): self.__dict__.update(kw)
                m.BaseModel = BaseModel
            sys.modules[name] = m
    sys.path.insert(0, os.environ["INC_SRC"])
    from neural_compressor.torch.quantization import prepare, convert, GPTQConfig
    from transformers import AutoModelForCausalLM
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(f"{mdir}/tokenizer.json")
    enc = lambda p: torch.tensor(tok.encode(open(p, encoding="utf-8").read(), add_special_tokens=False).ids)
    ev, ca = enc(os.environ["EVAL"]), enc(os.environ["CALIB"])
    rng = random.Random(seed)
    calib = [ca[s:s + 512] for s in (rng.randint(0, ca.numel() - 513) for _ in range(128))]
    dev = "cuda"
    model = AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32).to(dev).eval()
    t0 = time.time()
    mse = os.environ.get("INC_MSE") == "1"   # INC's use_mse_search (off by default)
    model = prepare(model, GPTQConfig(bits=bits, group_size=128, use_sym=False, use_mse_search=mse))
    with torch.no_grad():
        for c in calib:
            model(c[None].to(dev))
    model = convert(model)
    q = time.time() - t0
    with torch.no_grad():
        n, nll, cnt = ev.numel() // 512, 0.0, 0
        for i in range(0, n, 16):
            b = torch.stack([ev[j * 512:(j + 1) * 512] for j in range(i, min(n, i + 16))]).to(dev)
            lg = model(b).logits.float()
            nll += F.cross_entropy(lg[:, :-1].reshape(-1, lg.size(-1)), b[:, 1:].reshape(-1), reduction="sum").item()
            cnt += b[:, 1:].numel()
    print(json.dumps({"who": "INC", "algo": "gptq-mse" if mse else "gptq", "bits": bits, "seed": seed, "perplexity": math.exp(nll / cnt),
                      "quantize_s": round(q, 1)}), flush=True)
    if dump:
        from safetensors.torch import save_file
        state = {}
        for name, mod in model.named_modules():
            if hasattr(mod, "recover") and hasattr(mod, "in_features"):
                state[name + ".weight"] = mod.recover().float().cpu().contiguous()
        for name, p in model.named_parameters():
            state.setdefault(name, p.detach().float().cpu().contiguous())
        os.makedirs(dump, exist_ok=True)
        save_file(state, f"{dump}/model.safetensors", metadata={"format": "pt"})
        for f in os.listdir(mdir):
            if f.endswith(".json") and f not in ("model.safetensors.index.json",) and not f.startswith("golden"):
                shutil.copy(f"{mdir}/{f}", f"{dump}/{f}")
        cfg = json.load(open(f"{dump}/config.json"))
        cfg.pop("quantization_config", None)
        cfg["torch_dtype"] = cfg["dtype"] = "float32"
        json.dump(cfg, open(f"{dump}/config.json", "w"), indent=2)


def load_dir(d):
    from safetensors.torch import load_file
    state = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".safetensors"):
            state.update(load_file(f"{d}/{f}"))
    return state


def compare(inc_dir, ours_dir):
    a, b = load_dir(inc_dir), load_dir(ours_dir)
    rows = []
    for k in sorted(a):
        if ".layers." not in k or not k.endswith("proj.weight") or k not in b:
            continue
        x, y = a[k].float(), b[k].float()
        if x.shape != y.shape:
            rows.append((k, "shape", tuple(x.shape), tuple(y.shape)))
            continue
        tol = 1e-4 * x.abs().amax(dim=1, keepdim=True) + 1e-12
        differ = ((x - y).abs() > tol).float().mean().item()
        rel = ((x - y).norm() / x.norm()).item()
        rows.append((k, differ, rel))
    # Code flips (a difference of a sizeable part of a quantization step, not the fp16 rounding of INC's stored scales)
    # in layer 0, whose inputs are identical for both: where in each row the first flip happens tells a semantic
    # difference (flips from the first columns on) from float-order chaos (one late flip cascading along its row).
    for k in sorted(a):
        if not k.startswith("model.layers.0.") or not k.endswith("proj.weight") or k not in b:
            continue
        x, y = a[k].float(), b[k].float()
        flip = (x - y).abs() > 0.05 * x.abs().amax(dim=1, keepdim=True)
        rows_hit = flip.any(dim=1).nonzero().flatten().tolist()
        firsts = [int(flip[r].nonzero()[0]) for r in rows_hit]
        counts = [int(flip[r].sum()) for r in rows_hit]
        print(f"FLIPS {k}: {len(rows_hit)} of {x.shape[0]} rows; (row, first column, flipped columns): "
              + ", ".join(f"({r},{f},{c})" for r, f, c in list(zip(rows_hit, firsts, counts))[:12]))
    for r in rows:
        if r[1] == "shape":
            print(f"{r[0]:48s} SHAPE {r[2]} vs {r[3]}")
        else:
            print(f"{r[0]:48s} differing {100 * r[1]:7.3f}%  rel-fro {r[2]:.2e}")


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None)
    else:
        compare(sys.argv[2], sys.argv[3])
