#!/usr/bin/python3
"""Generate the PyTorch reference fixtures for the blocks package tests.

Run from the repository root with Debian's torch (python3-torch, 1.13):

    /usr/bin/python3 blocks/testdata/gen_fixtures.py

Writes one JSON file per case into blocks/testdata/<case>.json. The output is
deterministic: each case seeds torch from a CRC32 of its name, the process is
single-threaded, and the JSON is written with sorted tensor keys in a fixed
layout, so two runs give byte-identical files. See README.md for the format.
"""

import json
import math
import os
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

OUT_DIR = os.path.dirname(os.path.abspath(__file__))

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)


def seed(name):
    torch.manual_seed(zlib.crc32(name.encode("utf-8")))


def flat(t):
    t = t.detach().contiguous().cpu()
    if t.dtype.is_floating_point:
        return [float(x) for x in t.to(torch.float32).reshape(-1).tolist()]
    return [int(x) for x in t.reshape(-1).tolist()]


def write(case, meta, tensors):
    # One tensor per line keeps diffs readable; keys are sorted for stability.
    lines = []
    for key in sorted(tensors):
        t = tensors[key]
        entry = {"shape": list(t.shape), "data": flat(t)}
        lines.append("  %s: %s" % (json.dumps(key), json.dumps(entry, separators=(",", ":"))))
    body = "{\n%s: %s,\n%s: %s,\n%s: {\n%s\n}\n}\n" % (
        json.dumps("case"), json.dumps(case),
        json.dumps("meta"), json.dumps(meta, sort_keys=True, separators=(",", ":")),
        json.dumps("tensors"), ",\n".join(lines))
    json.loads(body)  # sanity: must be valid JSON
    path = os.path.join(OUT_DIR, case + ".json")
    with open(path, "w") as f:
        f.write(body)
    print("%-14s %6d bytes  %d tensors" % (case, len(body), len(tensors)))


def run_case(case, module, inputs, forward, upstream_outputs, meta=None):
    """Generic driver.

    inputs: dict name -> tensor (float inputs get requires_grad and a
    grad:input entry; integer inputs are stored as-is).
    forward: callable(inputs) -> dict name -> output tensor.
    upstream_outputs: names of outputs that get a random upstream R and
    enter the loss L = sum (out * R).sum().
    """
    tensors = {}
    if module is not None:
        for name, p in module.state_dict().items():
            tensors["param:" + name] = p
    leaf = {}
    for name, t in inputs.items():
        if t.dtype.is_floating_point:
            t = t.detach().clone().requires_grad_(True)
        leaf[name] = t
        tensors["input:" + name] = t
    outs = forward(leaf)
    loss = None
    for name in upstream_outputs:
        o = outs[name]
        r = torch.randn(o.shape)
        tensors["upstream:" + name] = r
        term = (o * r).sum()
        loss = term if loss is None else loss + term
    for name, o in outs.items():
        tensors["output:" + name] = o
    if loss is not None:
        loss.backward()
        if module is not None:
            for name, p in module.named_parameters():
                tensors["grad:param:" + name] = p.grad if p.grad is not None else torch.zeros_like(p)
        for name, t in leaf.items():
            if t.dtype.is_floating_point:
                tensors["grad:input:" + name] = t.grad if t.grad is not None else torch.zeros_like(t)
    write(case, meta or {}, tensors)


def pad_mask(lengths, T):
    # True where the position is padding (position >= length).
    return torch.arange(T)[None, :] >= lengths[:, None]


# ---------------------------------------------------------------- cases


def case_linear():
    c = "linear"
    seed(c)
    m = nn.Linear(5, 4)
    x = torch.randn(2, 3, 5)
    run_case(c, m, {"x": x}, lambda i: {"y": m(i["x"])}, ["y"],
             {"in_features": 5, "out_features": 4})


def case_embedding():
    c = "embedding"
    seed(c)
    m = nn.Embedding(10, 6)
    ids = torch.tensor([[1, 3, 3, 9], [0, 1, 7, 3]], dtype=torch.int64)
    run_case(c, m, {"ids": ids}, lambda i: {"y": m(i["ids"])}, ["y"],
             {"num_embeddings": 10, "embedding_dim": 6})


def case_lstm_cell():
    c = "lstm_cell"
    seed(c)
    m = nn.LSTMCell(5, 7)
    x = torch.randn(3, 5)
    h0 = torch.randn(3, 7)
    c0 = torch.randn(3, 7)

    def fwd(i):
        h1, c1 = m(i["x"], (i["h0"], i["c0"]))
        return {"h1": h1, "c1": c1}

    run_case(c, m, {"x": x, "h0": h0, "c0": c0}, fwd, ["h1", "c1"],
             {"input_size": 5, "hidden_size": 7})


def case_lstm(layers):
    c = "lstm_%dlayer" % layers
    seed(c)
    m = nn.LSTM(5, 6, num_layers=layers, batch_first=True)
    x = torch.randn(3, 5, 5)
    lengths = torch.tensor([5, 3, 1], dtype=torch.int64)

    def fwd(i):
        packed = pack_padded_sequence(i["x"], i["lengths"], batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = m(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=5)
        return {"out": out, "h_n": h_n, "c_n": c_n}

    run_case(c, m, {"x": x, "lengths": lengths}, fwd, ["out", "h_n", "c_n"],
             {"input_size": 5, "hidden_size": 6, "num_layers": layers, "total_length": 5})


def case_lstm_bi():
    c = "lstm_bi_2layer"
    seed(c)
    m = nn.LSTM(5, 6, num_layers=2, batch_first=True, bidirectional=True)
    x = torch.randn(3, 5, 5)
    lengths = torch.tensor([5, 3, 1], dtype=torch.int64)

    def fwd(i):
        packed = pack_padded_sequence(i["x"], i["lengths"], batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = m(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=5)
        return {"out": out, "h_n": h_n, "c_n": c_n}

    run_case(c, m, {"x": x, "lengths": lengths}, fwd, ["out", "h_n", "c_n"],
             {"input_size": 5, "hidden_size": 6, "num_layers": 2, "bidirectional": 1, "total_length": 5})


def randomize_mha(m):
    with torch.no_grad():
        m.in_proj_bias.copy_(torch.randn_like(m.in_proj_bias) * 0.5)
        m.out_proj.bias.copy_(torch.randn_like(m.out_proj.bias) * 0.5)


def case_mha_self(causal):
    c = "mha_causal" if causal else "mha_self"
    seed(c)
    m = nn.MultiheadAttention(8, 2, batch_first=True)
    randomize_mha(m)
    T = 5
    x = torch.randn(2, T, 8)
    key_lengths = torch.tensor([5, 4] if causal else [5, 3], dtype=torch.int64)
    attn_mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1) if causal else None

    def fwd(i):
        out, w = m(i["x"], i["x"], i["x"], key_padding_mask=pad_mask(i["key_lengths"], T),
                   need_weights=True, attn_mask=attn_mask, average_attn_weights=False)
        return {"out": out, "weights": w}

    meta = {"embed_dim": 8, "num_heads": 2, "causal": 1 if causal else 0}
    run_case(c, m, {"x": x, "key_lengths": key_lengths}, fwd, ["out"], meta)


def case_mha_cross():
    c = "mha_cross"
    seed(c)
    m = nn.MultiheadAttention(8, 2, batch_first=True)
    randomize_mha(m)
    query = torch.randn(2, 4, 8)
    memory = torch.randn(2, 6, 8)
    key_lengths = torch.tensor([6, 3], dtype=torch.int64)

    def fwd(i):
        out, w = m(i["query"], i["memory"], i["memory"],
                   key_padding_mask=pad_mask(i["key_lengths"], 6),
                   need_weights=True, average_attn_weights=False)
        return {"out": out, "weights": w}

    run_case(c, m, {"query": query, "memory": memory, "key_lengths": key_lengths}, fwd, ["out"],
             {"embed_dim": 8, "num_heads": 2, "causal": 0})


def case_layernorm():
    c = "layernorm"
    seed(c)
    m = nn.LayerNorm(6, eps=1e-5)
    with torch.no_grad():
        m.weight.copy_(1.0 + torch.randn(6) * 0.5)
        m.bias.copy_(torch.randn(6) * 0.5)
    x = torch.randn(2, 3, 6) * 3 + 1
    run_case(c, m, {"x": x}, lambda i: {"y": m(i["x"])}, ["y"],
             {"normalized_shape": 6, "eps": 1e-5})


def case_ffn(act):
    c = "ffn_" + act
    seed(c)
    a = nn.ReLU() if act == "relu" else nn.GELU(approximate="tanh")
    m = nn.Sequential(nn.Linear(6, 16), a, nn.Linear(16, 6))
    x = torch.randn(2, 3, 6)
    run_case(c, m, {"x": x}, lambda i: {"y": m(i["x"])}, ["y"],
             {"d_model": 6, "d_ff": 16})


def case_sdpa(causal):
    c = "sdpa_causal" if causal else "sdpa"
    seed(c)
    Tq = 5 if causal else 4
    Tk = 5
    q = torch.randn(2, 2, Tq, 3)
    k = torch.randn(2, 2, Tk, 3)
    v = torch.randn(2, 2, Tk, 4)
    key_lengths = torch.tensor([5, 4] if causal else [5, 3], dtype=torch.int64)

    def fwd(i):
        scores = i["q"] @ i["k"].transpose(-1, -2) / math.sqrt(3)
        mask = pad_mask(i["key_lengths"], Tk)[:, None, None, :]
        if causal:
            cm = torch.triu(torch.ones(Tq, Tk, dtype=torch.bool), diagonal=1)
            mask = mask | cm[None, None, :, :]
        scores = scores.masked_fill(mask, float("-inf"))
        w = torch.softmax(scores, -1)
        return {"out": w @ i["v"], "weights": w}

    run_case(c, None, {"q": q, "k": k, "v": v, "key_lengths": key_lengths}, fwd, ["out"],
             {"d_k": 3, "d_v": 4, "causal": 1 if causal else 0})


class Additive(nn.Module):
    def __init__(self):
        super().__init__()
        self.W = nn.Linear(6, 8, bias=False)
        self.U = nn.Linear(7, 8, bias=False)
        self.v = nn.Linear(8, 1, bias=False)

    def forward(self, s, h, pad):
        e = self.v(torch.tanh(self.W(s)[:, None, :] + self.U(h))).squeeze(-1)
        e = e.masked_fill(pad, float("-inf"))
        alpha = torch.softmax(e, -1)
        context = (alpha[:, :, None] * h).sum(1)
        return context, alpha


def case_additive():
    c = "additive"
    seed(c)
    m = Additive()
    s = torch.randn(2, 6)
    h = torch.randn(2, 5, 7)
    key_lengths = torch.tensor([5, 3], dtype=torch.int64)

    def fwd(i):
        context, alpha = m(i["s"], i["h"], pad_mask(i["key_lengths"], 5))
        return {"context": context, "alpha": alpha}

    run_case(c, m, {"s": s, "h": h, "key_lengths": key_lengths}, fwd, ["context", "alpha"],
             {"dec_dim": 6, "enc_dim": 7, "attn_dim": 8})


class Multiplicative(nn.Module):
    """Luong et al. (2015) global attention, dot and general scores."""

    def __init__(self, general, dec_dim, enc_dim):
        super().__init__()
        self.general = general
        if general:
            self.W_a = nn.Linear(enc_dim, dec_dim, bias=False)

    def forward(self, s, h, pad):
        k = self.W_a(h) if self.general else h
        e = torch.bmm(k, s[:, :, None]).squeeze(-1)
        e = e.masked_fill(pad, float("-inf"))
        alpha = torch.softmax(e, -1)
        context = (alpha[:, :, None] * h).sum(1)
        return context, alpha


def case_multiplicative(general):
    c = "luong_general" if general else "luong_dot"
    seed(c)
    enc = 7 if general else 6
    m = Multiplicative(general, 6, enc)
    s = torch.randn(2, 6)
    h = torch.randn(2, 5, enc)
    key_lengths = torch.tensor([5, 3], dtype=torch.int64)

    def fwd(i):
        context, alpha = m(i["s"], i["h"], pad_mask(i["key_lengths"], 5))
        return {"context": context, "alpha": alpha}

    run_case(c, m, {"s": s, "h": h, "key_lengths": key_lengths}, fwd, ["context", "alpha"],
             {"dec_dim": 6, "enc_dim": enc, "general": 1 if general else 0})


def case_sinusoidal():
    c = "sinusoidal"
    max_len, d = 10, 6
    # Computed in float64 from the closed form, then rounded to float32.
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    i2 = torch.arange(0, d, 2, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), i2 / d)
    pe = torch.zeros(max_len, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    write(c, {"max_len": max_len, "d_model": d}, {"output:table": pe.to(torch.float32)})


def case_gelu(approx):
    c = "gelu_erf" if approx == "none" else "gelu_tanh"
    seed(c)
    m = nn.GELU(approximate=approx)
    x = torch.randn(2, 7) * 3
    run_case(c, None, {"x": x}, lambda i: {"y": m(i["x"])}, ["y"],
             {"tanh": 0 if approx == "none" else 1})


def case_cross_entropy():
    c = "cross_entropy"
    seed(c)
    logits = torch.randn(6, 5) * 4
    logits[1] += 60.0
    logits[4] -= 60.0
    targets = torch.tensor([2, 0, -100, 4, 1, 3], dtype=torch.int64)
    tensors = {"input:logits": logits, "input:targets": targets}

    x = logits.clone().requires_grad_(True)
    loss = F.cross_entropy(x, targets, ignore_index=-100)
    loss.backward()
    tensors["output:loss"] = loss
    tensors["grad:input:logits"] = x.grad

    xs = logits.clone().requires_grad_(True)
    loss_s = F.cross_entropy(xs, targets, ignore_index=-100, label_smoothing=0.1)
    loss_s.backward()
    tensors["output:loss_smooth"] = loss_s
    tensors["grad:input:logits_smooth"] = xs.grad

    write(c, {"ignore_index": -100, "label_smoothing": 0.1, "num_classes": 5}, tensors)


def main():
    print("torch", torch.__version__, file=sys.stderr)
    case_linear()
    case_embedding()
    case_lstm_cell()
    case_lstm(1)
    case_lstm(2)
    case_lstm_bi()
    case_mha_self(False)
    case_mha_self(True)
    case_mha_cross()
    case_layernorm()
    case_ffn("relu")
    case_ffn("gelu")
    case_sdpa(False)
    case_sdpa(True)
    case_additive()
    case_multiplicative(False)
    case_multiplicative(True)
    case_sinusoidal()
    case_gelu("none")
    case_gelu("tanh")
    case_cross_entropy()


if __name__ == "__main__":
    main()
