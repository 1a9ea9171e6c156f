#!/usr/bin/python3
"""Generate the PyTorch reference fixtures for the train package tests.

Run from the repository root with Debian's torch (python3-torch, 1.13):

    /usr/bin/python3 train/testdata/gen_fixtures.py

Writes into train/testdata/:

  optim.json          parameter trajectories of torch.optim.Adam, AdamW and
                      SGD (momentum, dampening, Nesterov, weight decay) fed
                      fixed gradients, with clip_grad_norm_ and a LambdaLR
                      learning rate, including a parameter whose grad is None
                      on one step; AdamW and Adam+L2 with weight decay
                      on matrices only (two parameter groups)
  schedules.json      the learning rate LambdaLR hands the optimizer at each
                      update, for the Noam and warm-up/decay schedules
  cross_entropy.json  F.cross_entropy's loss and gradient on spread-out
                      logits, with ignore_index and label smoothing
  mse.json            F.mse_loss's loss and gradient (mean reduction)

(safetensors/testdata/gen_fixtures.py writes the safetensors fixture.)

The output is deterministic (fixed seeds, one thread).
"""

import json
import math
import os

import torch
import torch.nn.functional as F

OUT = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def tens(t):
    return {"shape": list(t.shape), "data": flat(t)}


def dump(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")


def noam(d_model, warmup, factor):
    return lambda s: factor * d_model ** -0.5 * min(s ** -0.5, s * warmup ** -1.5)


def warmup_decay(peak, lo, warmup, total, cosine):
    def f(s):
        if s <= warmup:
            return peak * s / warmup
        p = min(1.0, (s - warmup) / (total - warmup))
        g = 0.5 * (1 + math.cos(math.pi * p)) if cosine else 1 - p
        return lo + (peak - lo) * g
    return f


def optim_fixture():
    torch.manual_seed(1234)
    steps = 6
    init = {
        "w": torch.randn(3, 4),
        "b": torch.randn(4) * 0.1,
        "c": torch.randn(2, 2),
    }
    grads = []
    for s in range(steps):
        g = {k: torch.randn_like(v) * (0.5 + s) for k, v in init.items()}
        if s == 2:
            g["c"] = None  # takes no part in this step's loss
        grads.append(g)
    sched = noam(16, 3, 2.0)
    runs = {}
    cases = {
        "adam": (torch.optim.Adam, dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0), None),
        "adam_l2": (torch.optim.Adam, dict(betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05), 1.5),
        "adamw": (torch.optim.AdamW, dict(betas=(0.9, 0.98), eps=1e-9, weight_decay=0.1), 2.0),
        "sgd": (torch.optim.SGD, dict(momentum=0.9, dampening=0.1, weight_decay=0.01), 3.0),
        "sgd_nesterov": (torch.optim.SGD, dict(momentum=0.8, nesterov=True, weight_decay=0.0), None),
        "sgd_plain": (torch.optim.SGD, dict(), 1.0),
        # Decay on matrices only (nanoGPT: p.dim() >= 2), optionally not
        # on names ending in a NoDecay suffix: two parameter groups.
        "adamw_matrices": (torch.optim.AdamW, dict(betas=(0.9, 0.98), eps=1e-9, weight_decay=0.1), 2.0),
        "adam_l2_matrices": (torch.optim.Adam, dict(betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05), 1.5),
        "adamw_matrices_nodecay": (torch.optim.AdamW, dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.2), 1.0),
    }
    policies = {
        "adamw_matrices": dict(decay_matrices_only=True, no_decay=[]),
        "adam_l2_matrices": dict(decay_matrices_only=True, no_decay=[]),
        "adamw_matrices_nodecay": dict(decay_matrices_only=True, no_decay=["c"]),
    }
    for name, (cls, kw, clip) in cases.items():
        params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
        policy = policies.get(name)
        if policy is None:
            opt = cls(list(params.values()), lr=1.0, **kw)
        else:
            def decays(k, p):
                return p.dim() >= 2 and not any(k.endswith(s) for s in policy["no_decay"])
            wd = kw.pop("weight_decay")
            groups = [
                {"params": [p for k, p in params.items() if decays(k, p)], "weight_decay": wd},
                {"params": [p for k, p in params.items() if not decays(k, p)], "weight_decay": 0.0},
            ]
            opt = cls(groups, lr=1.0, **kw)
            kw = dict(kw, weight_decay=wd, **policy)
        lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: sched(e + 1))
        traj, lrs, norms = [], [], []
        for s in range(steps):
            for k, p in params.items():
                p.grad = None if grads[s][k] is None else grads[s][k].clone()
            live = [p for p in params.values() if p.grad is not None]
            if clip is not None:
                norms.append(float(torch.nn.utils.clip_grad_norm_(live, clip)))
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            lr_sched.step()
            traj.append({k: flat(p) for k, p in params.items()})
        kw = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}
        runs[name] = {"options": kw, "clip": clip, "lrs": lrs, "norms": norms, "params": traj}
    dump("optim.json", {
        "init": {k: tens(v) for k, v in init.items()},
        "grads": [{k: (None if v is None else flat(v)) for k, v in g.items()} for g in grads],
        "schedule": {"d_model": 16, "warmup": 3, "factor": 2.0},
        "runs": runs,
    })


def schedules_fixture():
    out = {}
    cases = {
        "noam": ({"d_model": 512, "warmup": 40, "factor": 1.0}, noam(512, 40, 1.0)),
        "cosine": ({"peak": 2.5e-4, "min": 1e-5, "warmup": 20, "total": 100},
                   warmup_decay(2.5e-4, 1e-5, 20, 100, True)),
        "linear": ({"peak": 6.25e-5, "min": 0.0, "warmup": 10, "total": 60},
                   warmup_decay(6.25e-5, 0.0, 10, 60, False)),
    }
    for name, (cfg, f) in cases.items():
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=1.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e, f=f: f(e + 1))
        lrs = []
        for _ in range(120):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out[name] = {"config": cfg, "lrs": lrs}
    dump("schedules.json", out)


def cross_entropy_fixture():
    torch.manual_seed(99)
    cases = {}
    for name, n, v, ignore, smooth, scale in [
        ("smooth_ignore", 9, 7, -100, 0.1, 30.0),
        ("pad0", 8, 11, 0, 0.0, 50.0),
        ("plain", 5, 4, -100, 0.0, 1.0),
    ]:
        logits = (torch.randn(n, v) * scale).requires_grad_(True)
        targets = torch.randint(0, v, (n,))
        if ignore == -100:
            targets[1] = ignore
            targets[n - 2] = ignore
        else:
            targets[0] = ignore
            targets[3] = ignore
        loss = F.cross_entropy(logits, targets, ignore_index=ignore, label_smoothing=smooth)
        loss.backward()
        cases[name] = {"ignore_index": ignore, "smoothing": smooth,
                       "logits": tens(logits), "targets": [int(t) for t in targets],
                       "loss": float(loss), "grad": flat(logits.grad)}
    dump("cross_entropy.json", cases)


def mse_fixture():
    torch.manual_seed(5)
    cases = {}
    for name, shape, scale in [("matrix", (4, 3), 2.0), ("vector", (7,), 10.0), ("column", (5, 1), 0.5)]:
        pred = (torch.randn(*shape) * scale).requires_grad_(True)
        target = torch.randn(*shape) * scale
        loss = F.mse_loss(pred, target)
        loss.backward()
        cases[name] = {"pred": tens(pred), "target": tens(target), "loss": float(loss), "grad": flat(pred.grad)}
    dump("mse.json", cases)


if __name__ == "__main__":
    optim_fixture()
    schedules_fixture()
    cross_entropy_fixture()
    mse_fixture()
    for f in sorted(os.listdir(OUT)):
        print("%-24s %7d bytes" % (f, os.path.getsize(os.path.join(OUT, f))))
