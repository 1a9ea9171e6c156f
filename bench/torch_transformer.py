#!/usr/bin/python3
"""PyTorch reference timings for seq2gpt's Transformer benchmark
(transformer/bench_test.go, BenchmarkTransformer).

Run on the CPU with the OpenMP OpenBLAS and 2 threads:

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 bench/torch_transformer.py

Size: nn.Transformer(batch_first=True), 2 + 2 layers, d_model 128, 4 heads,
d_ff 512, dropout 0.1, ReLU, post-LN; vocabulary 1,000 on each side (separate
embeddings, an untied generator), sinusoidal positions; batch 32, sources and
targets of 32 tokens. The model is the Translator of
transformer/testdata/gen_transformer.py (the parity fixtures' generator: the
Go model as a torch module). Measurements, each a median over rounds of
~round-s seconds:

  train_tok_s               one step on 32 pairs: forward in train mode, cross-entropy with
                            label smoothing 0.1, backward, clip_grad_norm_(1), Adam(lr 1e-4,
                            betas (0.9, 0.98), eps 1e-9): target tokens/s
  greedy_recompute_sent_s   greedy decoding of the 32 sources at batch 32, 32 new tokens each (no
                            end token), as PyTorch's translation tutorial writes it: the encoder
                            once, then the whole target prefix through the decoder for every
                            token: sentences/s
  greedy_cached_sent_s      the same with a hand-written incremental decoder (as the Go Decoder):
                            cross-attention K, V once per source, each layer's self-attention keys
                            and values cached; checked to give the recompute loop's tokens
  greedy_full_sent_s        the same recomputing the encoder too for every token (the Go
                            DecoderConfig.NoCache)
  build_ms                  n/a: eager PyTorch has no graph to build or compile

All output is `key value` lines.
"""

import argparse
import importlib.util
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "gen_transformer", os.path.join(HERE, "..", "transformer", "testdata", "gen_transformer.py"))
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

B, T, V = 32, 32, 1000
CFG = gen.config(src_vocab_size=V, tgt_vocab_size=V, d_model=128, nhead=4, num_encoder_layers=2,
                 num_decoder_layers=2, dim_feedforward=512, dropout=0.1, max_position_embeddings=256,
                 label_smoothing=0.1)
BOS = CFG["bos_token_id"]


# The timing loop and the BLAS report are torch_gpt.py's.
_spec = importlib.util.spec_from_file_location("torch_gpt", os.path.join(HERE, "torch_gpt.py"))
torch_gpt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(torch_gpt)
bench, mapped_blas = torch_gpt.bench, torch_gpt.mapped_blas


def encode(model, src, lengths):
    pad = torch.arange(src.size(1))[None, :] >= lengths[:, None]
    return model.encoder(model.embed(src, "src"), src_key_padding_mask=pad), pad


def decode_full(model, memory, pad, ys):
    """The decoder over the whole prefix ys; logits of its last position."""
    causal = model.generate_square_subsequent_mask(ys.size(1))
    h = model.decoder(model.embed(ys, "tgt"), memory, tgt_mask=causal, memory_key_padding_mask=pad)
    return model.generator(h[:, -1])


def heads(x, h):
    b, t, d = x.shape
    return x.view(b, t, h, d // h).transpose(1, 2)  # [B, h, T, d_k]


def attend(q, k, v, mask=None):
    w = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))
    if mask is not None:
        w = w.masked_fill(mask, float("-inf"))
    ctx = F.softmax(w, dim=-1) @ v
    b, h, t, dk = ctx.shape
    return ctx.transpose(1, 2).reshape(b, t, h * dk)


class CachedDecoder:
    """Incremental greedy decoding over a Translator's weights (eval mode,
    post-LN): the cross-attention's K, V of the memory once, and each
    layer's self-attention keys and values appended token by token."""

    def __init__(self, model, memory, pad):
        self.m, self.h, self.pad = model, model.cfg["nhead"], pad[:, None, None, :]
        d = model.cfg["d_model"]
        self.mem = []
        for layer in model.decoder.layers:
            a = layer.multihead_attn
            kv = F.linear(memory, a.in_proj_weight[d:], a.in_proj_bias[d:])
            k, v = kv.chunk(2, dim=-1)
            self.mem.append((heads(k, self.h), heads(v, self.h)))
        self.past = [None] * len(model.decoder.layers)
        self.t = 0

    def step(self, tok):
        m, d = self.m, self.m.cfg["d_model"]
        pos = torch.tensor([self.t])
        pe = m.pe[pos] if m.cfg["positions"] != "learned" else m.tgt_pos_embed(pos)
        x = m.tgt_embed(tok) * math.sqrt(d) + pe  # [B, 1, d]
        for i, layer in enumerate(m.decoder.layers):
            sa = layer.self_attn
            q, k, v = F.linear(x, sa.in_proj_weight, sa.in_proj_bias).chunk(3, dim=-1)
            q, k, v = heads(q, self.h), heads(k, self.h), heads(v, self.h)
            if self.past[i] is not None:
                k, v = torch.cat((self.past[i][0], k), 2), torch.cat((self.past[i][1], v), 2)
            self.past[i] = (k, v)
            x = layer.norm1(x + sa.out_proj(attend(q, k, v)))
            ca = layer.multihead_attn
            q = heads(F.linear(x, ca.in_proj_weight[:d], ca.in_proj_bias[:d]), self.h)
            x = layer.norm2(x + ca.out_proj(attend(q, *self.mem[i], self.pad)))
            x = layer.norm3(x + layer.linear2(layer.activation(layer.linear1(x))))
        self.t += 1
        return m.generator(m.decoder.norm(x))[:, -1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated subset of train,greedy_recompute,greedy_cached,greedy_full")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--round-s", type=float, default=1.0, help="target seconds per round")
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
    torch.manual_seed(1)
    model = gen.Translator(CFG)
    src = torch.randint(3, V, (B, T))
    src[:, -1] = CFG["eos_token_id"]
    lengths = torch.full((B,), T)
    tgt = torch.randint(3, V, (B, T))
    tgt_in = torch.cat((torch.full((B, 1), BOS), tgt[:, :-1]), dim=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        logits = model(src, lengths, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1), label_smoothing=0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def greedy_recompute():
        model.eval()
        with torch.no_grad():
            memory, pad = encode(model, src, lengths)
            ys = torch.full((B, 1), BOS)
            for _ in range(T):
                ys = torch.cat((ys, decode_full(model, memory, pad, ys).argmax(-1, keepdim=True)), dim=1)
            return ys[:, 1:]

    def greedy_full():
        model.eval()
        with torch.no_grad():
            ys = torch.full((B, 1), BOS)
            for _ in range(T):
                ys = torch.cat((ys, model(src, lengths, ys)[:, -1].argmax(-1, keepdim=True)), dim=1)
            return ys[:, 1:]

    def greedy_cached():
        model.eval()
        with torch.no_grad():
            memory, pad = encode(model, src, lengths)
            dec = CachedDecoder(model, memory, pad)
            tok, out = torch.full((B, 1), BOS), []
            for _ in range(T):
                tok = dec.step(tok).argmax(-1, keepdim=True)
                out.append(tok)
            return torch.cat(out, dim=1)

    # The cache must give the recompute loop's tokens.
    a, b = greedy_cached(), greedy_recompute()
    assert torch.equal(a, b), "the cached decoder disagrees with recomputing the prefix"

    cases = [
        ("train_tok_s", train_step, B * T),
        ("greedy_recompute_sent_s", greedy_recompute, B),
        ("greedy_cached_sent_s", greedy_cached, B),
        ("greedy_full_sent_s", greedy_full, B),
    ]
    results = []
    for name, step, n in cases:
        short = name.rsplit("_", 2)[0]
        if args.only and short not in args.only.split(","):
            continue
        med, times = bench(step, args.rounds, args.round_s, args.warmup_s)
        print("%s_rounds %s" % (name, ",".join("%.1f" % (n / t) for t in times)))
        results.append((name, "%.1f" % (n / med)))
    results.append(("build_ms", "n/a"))
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
    print("config d_model 128, nhead 4, layers 2+2, d_ff 512, vocab 1000, batch 32, length 32, dropout 0.1")
    for k, v in results:
        print(k, v)


if __name__ == "__main__":
    main()
