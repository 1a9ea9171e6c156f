#!/usr/bin/python3
"""PyTorch reference timings for seq2gpt's GPT-1 benchmarks (gpt/bench_test.go).

Run on the CPU with the OpenMP OpenBLAS and 2 threads:

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 bench/torch_gpt.py [--size tiny|small|medium]

Sizes (the gpt.Tiny/Small/Medium presets; GELU, LayerNorm eps 1e-5, dropout 0.1):
  tiny    2 layers, d 64,  2 heads, ctx 32,  vocab 256,  batch 16
  small   4 layers, d 128, 4 heads, ctx 64,  vocab 1000, batch 16
  medium  6 layers, d 256, 8 heads, ctx 128, vocab 4000, batch 8

The model is HuggingFace's openai-gpt structure: Conv1D, ACT and the
post-LayerNorm layout come from gpt/testdata/gen_gpt.py (the parity
fixtures' generator); this script adds HF's dropouts (embeddings, attention
weights, both residual branches) and a key/value cache. Measurements, each a
median over rounds of ~round-s seconds:

  <size>_train_tok_s             one step on a full window batch: forward in train mode
                                 (dropout 0.1), cross-entropy, backward, clip_grad_norm_(1),
                                 torch.optim.AdamW(lr 1e-4, wd 0.01)
  <size>_forward_tok_s           eval mode, no_grad, logits of the same batch
  <size>_generate_tok_s          greedy, batch 1, hand-written KV cache, 1-token prompt,
                                 n_positions-1 new tokens (as gpt.Decoder)
  <size>_generate_nocache_tok_s  the same without a cache (whole prefix every token)
  <size>_build_ms                n/a: eager PyTorch has no graph to build or compile

All output is `key value` lines.
"""

import argparse
import importlib.util
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "gen_gpt", os.path.join(HERE, "..", "gpt", "testdata", "gen_gpt.py"))
gen_gpt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_gpt)
Conv1D, ACT = gen_gpt.Conv1D, gen_gpt.ACT

SIZES = {
    # n_layer, n_embd, n_head, n_positions, vocab_size, batch
    "tiny": (2, 64, 2, 32, 256, 16),
    "small": (4, 128, 4, 64, 1000, 16),
    "medium": (6, 256, 8, 128, 4000, 8),
}


def config(size):
    n_layer, n_embd, n_head, n_positions, vocab, batch = SIZES[size]
    return {
        "vocab_size": vocab, "n_positions": n_positions, "n_embd": n_embd, "n_layer": n_layer,
        "n_head": n_head, "afn": "gelu", "layer_norm_epsilon": 1e-5, "embd_pdrop": 0.1,
        "attn_pdrop": 0.1, "resid_pdrop": 0.1, "initializer_range": 0.02,
    }, batch


class Attention(gen_gpt.Attention):
    """gen_gpt.Attention plus HF's attn_dropout/resid_dropout and a KV cache."""

    def __init__(self, cfg):
        super().__init__(cfg["n_embd"], cfg["n_positions"], cfg["n_head"])
        self.attn_dropout = nn.Dropout(cfg["attn_pdrop"])
        self.resid_dropout = nn.Dropout(cfg["resid_pdrop"])

    def forward(self, x, past=None):
        q, k, v = self.c_attn(x).split(self.split_size, dim=2)
        q, k, v = self.split_heads(q), self.split_heads(k, k=True), self.split_heads(v)
        if past is not None:  # k [B, h, d_k, P], v [B, h, P, d_k]
            k = torch.cat((past[0], k), dim=-1)
            v = torch.cat((past[1], v), dim=-2)
        w = torch.matmul(q, k) / math.sqrt(v.size(-1))
        nq, nk = w.size(-2), w.size(-1)
        b = self.bias[:, :, nk - nq: nk, :nk]
        w = w * b + -1e4 * (1 - b)
        w = self.attn_dropout(F.softmax(w, dim=-1))
        a = torch.matmul(w, v).permute(0, 2, 1, 3).contiguous()
        a = a.view(*(a.size()[:-2] + (a.size(-2) * a.size(-1),)))
        return self.resid_dropout(self.c_proj(a)), (k, v)


class MLP(gen_gpt.MLP):
    def __init__(self, cfg):
        super().__init__(4 * cfg["n_embd"], cfg["n_embd"], cfg["afn"])
        self.dropout = nn.Dropout(cfg["resid_pdrop"])

    def forward(self, x):
        return self.dropout(super().forward(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        nx = cfg["n_embd"]
        self.attn = Attention(cfg)
        self.ln_1 = nn.LayerNorm(nx, eps=cfg["layer_norm_epsilon"])
        self.mlp = MLP(cfg)
        self.ln_2 = nn.LayerNorm(nx, eps=cfg["layer_norm_epsilon"])

    def forward(self, x, past=None):
        a, present = self.attn(x, past)
        n = self.ln_1(x + a)
        return self.ln_2(n + self.mlp(n)), present


class GPT(nn.Module):
    """OpenAIGPTLMHeadModel (tied head) with dropout and a KV cache."""

    def __init__(self, cfg):
        super().__init__()
        self.tokens_embed = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
        self.positions_embed = nn.Embedding(cfg["n_positions"], cfg["n_embd"])
        self.drop = nn.Dropout(cfg["embd_pdrop"])
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg["n_layer"])])
        # HF's init: N(0, 0.02²) weights, zero biases, unit LayerNorm.
        for mod in self.modules():
            if isinstance(mod, (Conv1D, nn.Embedding)):
                nn.init.normal_(mod.weight, std=cfg["initializer_range"])
                if getattr(mod, "bias", None) is not None and isinstance(mod.bias, nn.Parameter):
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, nn.LayerNorm):
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)

    def forward(self, ids, past=None):
        start = 0 if past is None else past[0][1].size(-2)
        pos = torch.arange(start, start + ids.size(-1)).unsqueeze(0)
        h = self.drop(self.tokens_embed(ids) + self.positions_embed(pos))
        presents = []
        for i, block in enumerate(self.h):
            h, p = block(h, None if past is None else past[i])
            presents.append(p)
        return F.linear(h, self.tokens_embed.weight), presents


def mapped_blas():
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6:
                    base = os.path.basename(parts[5])
                    if "blas" in base or "lapack" in base:
                        real = os.path.realpath(parts[5])
                        libs.add(real + ("" if real == parts[5] else " (" + parts[5] + ")"))
    except OSError as e:
        libs.add("unreadable: %s" % e)
    return sorted(libs)


def bench(step, rounds, round_s, warmup_s):
    """Median seconds per call of step() over rounds of ~round_s seconds."""
    t0 = time.perf_counter()
    n = 0
    while True:
        step()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= warmup_s and n >= 2:
            break
    iters = max(1, int(round_s / (dt / n)))
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - t0) / iters)
    return statistics.median(times), times


def run_size(size, args):
    cfg, batch = config(size)
    T, V = cfg["n_positions"], cfg["vocab_size"]
    torch.manual_seed(1)
    model = GPT(cfg)
    data = torch.randint(0, V, (batch, T + 1))
    ids, targets = data[:, :T].contiguous(), data[:, 1:].contiguous()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    out = []

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        logits, _ = model(ids)
        loss = F.cross_entropy(logits.view(-1, V), targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def forward_step():
        model.eval()
        with torch.no_grad():
            model(ids)

    n_new = T - 1  # 1-token prompt + n_new = n_positions

    def generate_cached():
        model.eval()
        with torch.no_grad():
            tok = torch.tensor([[1]])
            past = None
            for _ in range(n_new):
                logits, past = model(tok, past)
                tok = logits[:, -1].argmax(-1, keepdim=True)

    def generate_nocache():
        model.eval()
        with torch.no_grad():
            seq = torch.tensor([[1]])
            for _ in range(n_new):
                logits, _ = model(seq)
                seq = torch.cat((seq, logits[:, -1].argmax(-1, keepdim=True)), dim=1)

    # The cache must give the same greedy tokens as recomputing everything.
    model.eval()
    with torch.no_grad():
        a, past, seq = torch.tensor([[1]]), None, torch.tensor([[1]])
        for _ in range(min(n_new, 8)):
            lc, past = model(a, past)
            ln, _ = model(seq)
            assert torch.allclose(lc[:, -1], ln[:, -1], atol=1e-4), "KV cache disagrees with the full forward"
            a = lc[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat((seq, a), dim=1)

    cases = [
        ("train_tok_s", train_step, batch * T),
        ("forward_tok_s", forward_step, batch * T),
        ("generate_tok_s", generate_cached, n_new),
        ("generate_nocache_tok_s", generate_nocache, n_new),
    ]
    for name, step, tokens in cases:
        if args.only and name.rsplit("_tok_s", 1)[0] not in args.only.split(","):
            continue
        med, times = bench(step, args.rounds, args.round_s, args.warmup_s)
        print("%s_%s_rounds %s" % (size, name, ",".join("%.0f" % (tokens / t) for t in times)))
        out.append(("%s_%s" % (size, name), "%.0f" % (tokens / med)))
    out.append(("%s_build_ms" % size, "n/a"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["all"] + list(SIZES), default="all")
    ap.add_argument("--only", default="", help="comma-separated subset of train,forward,generate,generate_nocache")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--round-s", type=float, default=0.5, help="target seconds per round")
    ap.add_argument("--warmup-s", type=float, default=0.5)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    print("torch", torch.__version__)
    print("threads", torch.get_num_threads())
    print("LD_LIBRARY_PATH", os.environ.get("LD_LIBRARY_PATH", "") or "-")
    try:
        print("loadavg_start", open("/proc/loadavg").read().split()[0])
    except OSError:
        pass
    results = []
    for size in (list(SIZES) if args.size == "all" else [args.size]):
        results += run_size(size, args)
    libs = mapped_blas()  # mapped lazily on first use: report after running
    for lib in libs:
        print("blas_mapped", lib)
    if not any("openblas" in l for l in libs):
        print("WARNING OpenBLAS not mapped; run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp",
              file=sys.stderr)
    try:
        print("loadavg_end", open("/proc/loadavg").read().split()[0])
    except OSError:
        pass
    print("generation_note generate_tok_s uses a hand-written KV cache; generate_nocache_tok_s recomputes the prefix")
    for k, v in results:
        print(k, v)


if __name__ == "__main__":
    main()
