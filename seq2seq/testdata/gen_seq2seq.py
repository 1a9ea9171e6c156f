#!/usr/bin/python3
"""PyTorch reference of seq2seq/: the same two models as plain torch modules.

Run from the repository root with Debian's torch (python3-torch, 1.13):

    /usr/bin/python3 seq2seq/testdata/gen_seq2seq.py

Seq2Seq below is the documentation of how this package's weights map to
PyTorch: a directory saved by seq2seq.Model.Save (model.safetensors +
config.json) loads into it with

    cfg = json.load(open(dir + "/config.json"))
    m = Seq2Seq(cfg)
    m.load_state_dict(safetensors.torch.load_file(dir + "/model.safetensors"))

(strict: the names and shapes are the same) and trains on from there;
load_dir below does the same without the safetensors package.

For each case it writes <case>.json: the config (the Go Config's JSON), the
parameters under their state-dict names, a padded batch of sources and
targets of different lengths, the teacher-forced loss and the gradient of
every parameter, and the greedy decode (ids and α per step) of each source.
The output is deterministic (each case seeds torch from a CRC32 of its name,
single-threaded, sorted keys): two runs give byte-identical files.

    /usr/bin/python3 seq2seq/testdata/gen_seq2seq.py --load DIR 12,7,99 5,6

loads a saved model directory into the torch module (strict load_state_dict)
and prints its greedy translation ids of each source (comma-separated ids).
"""

import json
import os
import struct
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
PAD, BOS, EOS = 0, 1, 2

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)


class AdditiveAttention(nn.Module):
    """Bahdanau et al. (2015): e_ij = v^T tanh(W s_{i-1} + U h_j)."""

    def __init__(self, dec_dim, enc_dim, attn_dim):
        super().__init__()
        self.W = nn.Linear(dec_dim, attn_dim, bias=False)
        self.U = nn.Linear(enc_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def keys(self, h):
        return self.U(h)  # once per source

    def scores(self, s, keys):
        return self.v(torch.tanh(self.W(s)[:, None, :] + keys)).squeeze(-1)


class MultiplicativeAttention(nn.Module):
    """Luong et al. (2015): e_ij = s^T h_j (dot) or s^T W_a h_j (general)."""

    def __init__(self, dec_dim, enc_dim, general):
        super().__init__()
        if general:
            self.W_a = nn.Linear(enc_dim, dec_dim, bias=False)
        self.general = general

    def keys(self, h):
        return self.W_a(h) if self.general else h

    def scores(self, s, keys):
        return torch.bmm(keys, s[:, :, None]).squeeze(-1)


class Seq2Seq(nn.Module):
    """seq2seq.Model in torch, from the Go Config's JSON keys."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        arch, E, H, L = cfg["arch"], cfg["embed_dim"], cfg["hidden_size"], cfg["num_layers"]
        self.attn = arch == "attention"
        bi = self.attn and not cfg["unidirectional"]
        self.drop = nn.Dropout(cfg["dropout"])
        self.src_embed = nn.Embedding(cfg["src_vocab_size"], E)
        self.tgt_embed = nn.Embedding(cfg["tgt_vocab_size"], E)
        self.encoder = nn.LSTM(E, H, L, batch_first=True, dropout=cfg["dropout"], bidirectional=bi)
        d_h = 2 * H if bi else H
        dec_in = E
        if self.attn:
            dec_in += d_h
            if cfg["score"] == "additive":
                self.attention = AdditiveAttention(H, d_h, cfg["attention_dim"])
            else:
                self.attention = MultiplicativeAttention(H, d_h, cfg["score"] == "general")
            self.bridge = nn.Linear(H, L * H)
            d_o = H + d_h
        elif cfg["feed_context"]:
            dec_in += H
            d_o = 2 * H
        else:
            d_o = H
        self.decoder = nn.LSTM(dec_in, H, L, batch_first=True, dropout=cfg["dropout"])
        self.tied = cfg["tie_embeddings"]
        if self.tied:
            if d_o != E:
                self.out_proj = nn.Linear(d_o, E, bias=False)
            self.out = nn.Module()
            self.out.bias = nn.Parameter(torch.empty(cfg["tgt_vocab_size"]).uniform_(-E ** -0.5, E ** -0.5))
        else:
            self.out = nn.Linear(d_o, cfg["tgt_vocab_size"])

    def encode(self, src, lengths):
        """src [B, S] in Source's form (reversed if so configured, then EOS)."""
        B, S = src.shape
        x = self.drop(self.src_embed(src))
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, c_n) = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        if not self.attn:
            return {"context": h_n[-1], "state": (h_n, c_n)}
        L, H = self.cfg["num_layers"], self.cfg["hidden_size"]
        # h_n[-1]: the top layer's backward state h<-_1 (h->_m unidirectional)
        s0 = torch.tanh(self.bridge(h_n[-1])).view(B, L, H).transpose(0, 1).contiguous()
        pad = torch.arange(S)[None, :] >= lengths[:, None]
        return {"memory": out, "keys": self.attention.keys(out), "pad": pad,
                "state": (s0, torch.zeros_like(s0))}

    def attend(self, enc, s):
        e = self.attention.scores(s, enc["keys"]).masked_fill(enc["pad"], float("-inf"))
        alpha = torch.softmax(e, -1)
        return torch.bmm(alpha[:, None, :], enc["memory"]).squeeze(1), alpha

    def readout(self, o):
        x = self.drop(o)
        if not self.tied:
            return self.out(x)
        if hasattr(self, "out_proj"):
            x = self.out_proj(x)
        return F.linear(x, self.tgt_embed.weight, self.out.bias)

    def step(self, enc, y, state):
        """One decoder step: y [B] the previous tokens."""
        emb = self.drop(self.tgt_embed(y))
        ctx, alpha = None, None
        if self.attn:
            ctx, alpha = self.attend(enc, state[0][-1])
        elif self.cfg["feed_context"]:
            ctx = enc["context"]
        x = emb if ctx is None else torch.cat([emb, ctx], -1)
        out, state = self.decoder(x[:, None, :], state)
        o = out[:, 0] if ctx is None else torch.cat([out[:, 0], ctx], -1)
        return self.readout(o), state, alpha

    def forward(self, src, lengths, tgt_in):
        """Teacher-forced logits [B, T, V]."""
        enc = self.encode(src, lengths)
        state = enc["state"]
        logits = []
        for i in range(tgt_in.shape[1]):
            l, state, _ = self.step(enc, tgt_in[:, i], state)
            logits.append(l)
        return torch.stack(logits, 1)

    @torch.no_grad()
    def greedy(self, src, lengths, max_len):
        enc = self.encode(src, lengths)
        state = enc["state"]
        y = torch.full((src.shape[0],), BOS, dtype=torch.int64)
        ids = [[] for _ in range(src.shape[0])]
        alphas = [[] for _ in range(src.shape[0])]
        done = [False] * src.shape[0]
        for _ in range(max_len):
            logits, state, alpha = self.step(enc, y, state)
            y = logits.argmax(-1)
            for b in range(src.shape[0]):
                if done[b]:
                    continue
                ids[b].append(int(y[b]))
                if alpha is not None:
                    alphas[b].append(alpha[b, :int(lengths[b])])
                done[b] = int(y[b]) == EOS
        return ids, alphas


def load_safetensors(path):
    """A model.safetensors file as a state dict (pure Python; the format is an
    8-byte header length, a JSON header, then the tensors' bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        b, e = v["data_offsets"]
        dt = {"F32": torch.float32, "F64": torch.float64}[v["dtype"]]
        out[name] = torch.frombuffer(bytearray(data[8 + n + b:8 + n + e]), dtype=dt).reshape(v["shape"]).clone()
    return out


def load_dir(path):
    """A directory saved by seq2seq.Model.Save, as the torch module."""
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    m = Seq2Seq(cfg)
    m.load_state_dict(load_safetensors(os.path.join(path, "model.safetensors")))  # strict
    return m.eval()


def seed(name):
    torch.manual_seed(zlib.crc32(name.encode("utf-8")))


def flat(t):
    t = t.detach().contiguous().cpu()
    if t.dtype.is_floating_point:
        return [float(x) for x in t.to(torch.float32).reshape(-1).tolist()]
    return [int(x) for x in t.reshape(-1).tolist()]


def padded(rows):
    T = max(len(r) for r in rows)
    return torch.tensor([r + [PAD] * (T - len(r)) for r in rows], dtype=torch.int64)


def source_form(cfg, tokens):
    t = list(reversed(tokens)) if cfg.get("reverse_source") else list(tokens)
    return t + [cfg["src_eos_token_id"]]


def run_case(case, cfg, src_lens, tgt_lens, max_len=7):
    seed(case)
    cfg = dict(cfg)
    cfg.update({"model_type": "seq2seq", "pad_token_id": PAD, "bos_token_id": BOS,
                "eos_token_id": EOS, "src_eos_token_id": EOS})
    for k, v in {"dropout": 0.0, "reverse_source": False, "feed_context": False,
                 "unidirectional": False, "tie_embeddings": False}.items():
        cfg.setdefault(k, v)
    m = Seq2Seq(cfg)
    with torch.no_grad():  # livelier than torch's defaults, so greedy ids vary by row and step
        for p in m.parameters():
            p.mul_(3)
        m.out.bias.normal_(0, 1.0)
    Vs, Vt = cfg["src_vocab_size"], cfg["tgt_vocab_size"]
    raw_src = [torch.randint(3, Vs, (n,)).tolist() for n in src_lens]
    raw_tgt = [torch.randint(3, Vt, (n,)).tolist() for n in tgt_lens]
    src_rows = [source_form(cfg, r) for r in raw_src]
    tgt_rows = [r + [EOS] for r in raw_tgt]
    src, lengths = padded(src_rows), torch.tensor([len(r) for r in src_rows])
    tgt = padded(tgt_rows)
    tgt_in = torch.cat([torch.full((len(tgt_rows), 1), BOS), tgt[:, :-1]], 1)
    tlen = torch.tensor([len(r) for r in tgt_rows])
    tgt_in = torch.where(torch.arange(tgt.shape[1])[None, :] < tlen[:, None], tgt_in, torch.full_like(tgt_in, PAD))
    targets = tgt.masked_fill(torch.arange(tgt.shape[1])[None, :] >= tlen[:, None], -100)

    logits = m(src, lengths, tgt_in)
    loss = F.cross_entropy(logits.reshape(-1, Vt), targets.reshape(-1), ignore_index=-100)
    loss.backward()
    tensors = {"output:loss": loss.detach(), "output:logits": logits.detach(),
               "input:src": src, "input:src_lengths": lengths, "input:tgt": tgt, "input:tgt_lengths": tlen,
               "raw:src": padded(raw_src), "raw:src_lengths": torch.tensor(src_lens)}
    for name, p in m.state_dict().items():
        tensors["param:" + name] = p
    for name, p in m.named_parameters():
        tensors["grad:param:" + name] = p.grad
    raw = padded(raw_src)
    ids, alphas = m.greedy(src, lengths, max_len)
    for b, row in enumerate(ids):
        tensors["greedy:ids:%d" % b] = torch.tensor(row, dtype=torch.int64)
        if alphas[b]:
            tensors["greedy:alpha:%d" % b] = torch.stack(alphas[b])
    meta = {"max_len": max_len}
    lines = []
    for key in sorted(tensors):
        t = tensors[key]
        lines.append("  %s: %s" % (json.dumps(key), json.dumps({"shape": list(t.shape), "data": flat(t)}, separators=(",", ":"))))
    body = "{\n%s: %s,\n%s: %s,\n%s: %s,\n%s: {\n%s\n}\n}\n" % (
        json.dumps("case"), json.dumps(case),
        json.dumps("config"), json.dumps(cfg, sort_keys=True, separators=(",", ":")),
        json.dumps("meta"), json.dumps(meta, sort_keys=True),
        json.dumps("tensors"), ",\n".join(lines))
    json.loads(body)
    with open(os.path.join(OUT_DIR, case + ".json"), "w") as f:
        f.write(body)
    print("%-24s %7d bytes  loss %.6f  greedy %s" % (case, len(body), loss.item(), ids))


def check_dir(path, sentences):
    """--load DIR IDS...: load a saved model and print its greedy ids for
    each source given as comma-separated token ids (to compare with Go)."""
    m = load_dir(path)
    for s in sentences:
        toks = [int(x) for x in s.split(",")] if s else []
        row = source_form(m.cfg, toks)
        ids, _ = m.greedy(torch.tensor([row]), torch.tensor([len(row)]), 30)
        print(",".join(str(i) for i in ids[0]))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--load":
        check_dir(sys.argv[2], sys.argv[3:])
        sys.exit(0)
    base = {"src_vocab_size": 11, "tgt_vocab_size": 13, "embed_dim": 5, "hidden_size": 6}
    src_lens, tgt_lens = [5, 2, 4], [3, 4, 1]
    run_case("fixed", dict(base, arch="fixed", num_layers=2, reverse_source=True, feed_context=True), src_lens, tgt_lens)
    run_case("fixed_tied", dict(base, arch="fixed", num_layers=1, tie_embeddings=True), src_lens, tgt_lens)
    run_case("attention", dict(base, arch="attention", num_layers=2, score="additive", attention_dim=7), src_lens, tgt_lens)
    run_case("attention_general_tied", dict(base, arch="attention", num_layers=1, score="general",
                                            attention_dim=0, tie_embeddings=True), src_lens, tgt_lens)
    run_case("attention_dot_uni", dict(base, arch="attention", num_layers=1, score="dot", attention_dim=0,
                                       unidirectional=True), src_lens, tgt_lens)
