"""Stand-ins that let FP-Quant's modules import offline (the same ones ../shared/peers/fpquant_ref.py installs, which
re-installs them when it runs): fast_hadamard_transform as a product with the Sylvester matrix, lm_eval as empty
modules. Import this before any `src.*` module of an FP-Quant checkout."""
import os, sys, types, torch
sys.path.insert(0, os.getcwd())

def _stub(name, **attrs):
    m = types.ModuleType(name); m.__dict__.update(attrs); sys.modules[name] = m

def _hadamard(x, scale=1.0):
    n = x.shape[-1]; H = torch.ones(1, 1, dtype=torch.float64)
    while H.shape[0] < n: H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    return (x @ H.to(x.dtype).to(x.device)) * scale

_stub("fast_hadamard_transform", hadamard_transform=_hadamard)
_stub("lm_eval", simple_evaluate=None); _stub("lm_eval.utils", make_table=lambda *a, **k: "")
_stub("lm_eval.models"); _stub("lm_eval.models.huggingface", HFLM=object)
