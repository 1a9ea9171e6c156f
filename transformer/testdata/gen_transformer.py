#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of the transformer package tests.

Run from the repository root with Debian's torch (python3-torch, 1.13):

    /usr/bin/python3 transformer/testdata/gen_transformer.py

Writes one JSON file per case into transformer/testdata/<case>.json (format in
README.md). Deterministic: each case seeds torch from a CRC32 of its name, the
process is single-threaded and keys are sorted, so two runs give
byte-identical files.

Translator below is the torch module whose state dict is the Go model's
(transformer package doc): nn.Transformer(batch_first=True) plus
src_embed, tgt_embed (the same module with share_embeddings),
src_pos_embed/tgt_pos_embed (learned positions) or a sinusoid buffer, and
generator (tied to tgt_embed with tie_output). It can load a model the Go
side saved (model.safetensors) with load_state_dict after adding the
duplicate names a tied torch module also carries.
"""

import json
import math
import os
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
IGNORE = -100

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)


def seed(name):
    torch.manual_seed(zlib.crc32(name.encode("utf-8")))


def sinusoids(max_len, d):
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(…), computed
    in float64 and rounded to float32 (as blocks.SinusoidalTable)."""
    pe = torch.zeros(max_len, d, dtype=torch.float64)
    for pos in range(max_len):
        for i in range(0, d, 2):
            angle = pos / math.pow(10000, i / d)
            pe[pos, i] = math.sin(angle)
            if i + 1 < d:
                pe[pos, i + 1] = math.cos(angle)
    return pe.to(torch.float32)


class Translator(nn.Transformer):
    """The Go transformer.Model as a torch module (same state-dict names)."""

    def __init__(self, cfg):
        super().__init__(
            d_model=cfg["d_model"], nhead=cfg["nhead"],
            num_encoder_layers=cfg["num_encoder_layers"], num_decoder_layers=cfg["num_decoder_layers"],
            dim_feedforward=cfg["dim_feedforward"], dropout=cfg["dropout"], activation=cfg["activation"],
            layer_norm_eps=cfg["layer_norm_eps"], batch_first=True, norm_first=cfg["norm_first"])
        self.cfg = cfg
        d = cfg["d_model"]
        self.src_embed = nn.Embedding(cfg["src_vocab_size"], d)
        self.tgt_embed = self.src_embed if cfg["share_embeddings"] else nn.Embedding(cfg["tgt_vocab_size"], d)
        if cfg["positions"] == "learned":
            self.src_pos_embed = nn.Embedding(cfg["max_position_embeddings"], d)
            self.tgt_pos_embed = nn.Embedding(cfg["max_position_embeddings"], d)
        else:
            self.register_buffer("pe", sinusoids(cfg["max_position_embeddings"], d), persistent=False)
        self.generator = nn.Linear(d, cfg["tgt_vocab_size"])
        if cfg["tie_output"]:
            self.generator.weight = self.tgt_embed.weight
        self.drop = nn.Dropout(cfg["dropout"])

    def embed(self, ids, side):
        """x₀ = Dropout(E[ids]·√d_model + PE)."""
        pos = torch.arange(ids.size(1))
        table = self.src_embed if side == "src" else self.tgt_embed
        if self.cfg["positions"] == "learned":
            pe = (self.src_pos_embed if side == "src" else self.tgt_pos_embed)(pos)
        else:
            pe = self.pe[pos]
        return self.drop(table(ids) * math.sqrt(self.cfg["d_model"]) + pe)

    def forward(self, src, src_lengths, tgt_in):
        S, T = src.size(1), tgt_in.size(1)
        pad = torch.arange(S)[None, :] >= src_lengths[:, None]
        causal = self.generate_square_subsequent_mask(T)
        h = super().forward(self.embed(src, "src"), self.embed(tgt_in, "tgt"), tgt_mask=causal,
                            src_key_padding_mask=pad, memory_key_padding_mask=pad)
        return self.generator(h)


def unique_state(module):
    """The state dict without the second names of shared tensors (a tied
    module lists tgt_embed.weight and generator.weight again): the names
    the Go store holds."""
    return dict(module.named_parameters())  # remove_duplicate: first name only


def randomise(module):
    """LayerNorm gains and biases and the attention biases away from their
    initial 1 and 0, so that their gradients are exercised."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.endswith("norm3.weight") \
                    or name.endswith("norm.weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.3 * torch.randn_like(p))


def flat(t):
    t = t.detach().contiguous().cpu()
    if t.dtype.is_floating_point:
        return [float(x) for x in t.to(torch.float32).reshape(-1).tolist()]
    return [int(x) for x in t.reshape(-1).tolist()]


def write(case, cfg, extra, tensors):
    lines = []
    for key in sorted(tensors):
        t = tensors[key]
        entry = {"shape": list(t.shape), "data": flat(t)}
        lines.append("  %s: %s" % (json.dumps(key), json.dumps(entry, separators=(",", ":"))))
    head = {"case": case, "config": cfg}
    head.update(extra)
    body = "{\n" + ",\n".join("%s: %s" % (json.dumps(k), json.dumps(head[k], sort_keys=True, separators=(",", ":")))
                             for k in sorted(head))
    body += ",\n%s: {\n%s\n}\n}\n" % (json.dumps("tensors"), ",\n".join(lines))
    json.loads(body)
    with open(os.path.join(OUT_DIR, case + ".json"), "w") as f:
        f.write(body)
    print("%-22s %7d bytes  %d tensors" % (case, len(body), len(tensors)))


def config(**kw):
    cfg = {
        "src_vocab_size": 11, "tgt_vocab_size": 13, "d_model": 8, "nhead": 2,
        "num_encoder_layers": 2, "num_decoder_layers": 2, "dim_feedforward": 12,
        "dropout": 0.0, "activation": "relu", "layer_norm_eps": 1e-5, "norm_first": False,
        "max_position_embeddings": 16, "positions": "sinusoidal", "share_embeddings": False,
        "tie_output": False, "label_smoothing": 0.1, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
    }
    cfg.update(kw)
    return cfg


SRC_LENGTHS = [5, 3, 1]
SOURCES = [[3, 4, 5, 6, 7], [8, 9, 10], [5]]
TARGETS = [[3, 4, 5, 2], [6, 2], [7, 12, 2]]


def key_padding(lengths, S):
    return torch.arange(S)[None, :] >= torch.tensor(lengths)[:, None]


def core_case(name, cfg):
    """nn.Transformer itself on embedded inputs: src [3, 5, d], tgt [3, 4, d],
    source lengths 5, 3, 1 (src_key_padding_mask and
    memory_key_padding_mask), causal tgt_mask. Train mode with dropout 0
    (torch's slow path, the one with gradients); the eval-mode (no_grad)
    outputs are stored too: there torch 1.13 runs the encoder on nested
    tensors and its memory is LN_enc(0) at padded positions."""
    seed(name)
    model = Translator(cfg)
    randomise(model)
    core = nn.Transformer.forward
    B, S, T, d = 3, 5, 4, cfg["d_model"]
    src = torch.randn(B, S, d, requires_grad=True)
    tgt = torch.randn(B, T, d, requires_grad=True)
    pad = key_padding(SRC_LENGTHS, S)
    causal = nn.Transformer.generate_square_subsequent_mask(T)
    model.train()
    out = core(model, src, tgt, tgt_mask=causal, src_key_padding_mask=pad, memory_key_padding_mask=pad)
    upstream = torch.randn_like(out)
    (out * upstream).sum().backward()
    params = {n: p for n, p in unique_state(model).items() if n.startswith(("encoder.", "decoder."))}
    tensors = {"input:src": src, "input:tgt": tgt, "output:out": out, "upstream:out": upstream,
               "grad:input:src": src.grad, "grad:input:tgt": tgt.grad}
    for n, p in params.items():
        tensors["param:" + n] = p
        tensors["grad:param:" + n] = p.grad
    model.eval()
    with torch.no_grad():
        memory = model.encoder(src, src_key_padding_mask=pad)
        tensors["output:memory_eval"] = memory
        tensors["output:out_eval"] = model.decoder(tgt, memory, tgt_mask=causal, memory_key_padding_mask=pad)
    write(name, cfg, {"src_lengths": SRC_LENGTHS}, tensors)


def model_case(name, cfg):
    """The whole Translator: ids through embeddings, positions, both stacks
    and the generator, and the training loss (cross-entropy with label
    smoothing ε_ls, ignore_index at padded targets), on sources of lengths
    5, 3, 1 and targets of 4, 2, 3 (with EOS). tgt_in is BOS then the
    target, cut to T = 4 and padded."""
    seed(name)
    model = Translator(cfg)
    randomise(model)
    B, S, T = 3, 5, 4
    pad_id, bos = cfg["pad_token_id"], cfg["bos_token_id"]
    src = torch.full((B, S), pad_id, dtype=torch.long)
    tgt_in = torch.full((B, T), pad_id, dtype=torch.long)
    targets = torch.full((B, T), IGNORE, dtype=torch.long)
    for b in range(B):
        src[b, :len(SOURCES[b])] = torch.tensor(SOURCES[b])
        row = ([bos] + TARGETS[b])[:T]
        tgt_in[b, :len(row)] = torch.tensor(row)
        targets[b, :len(TARGETS[b])] = torch.tensor(TARGETS[b])
    lengths = torch.tensor(SRC_LENGTHS)
    V = cfg["tgt_vocab_size"]
    model.train()
    logits = model(src, lengths, tgt_in)
    loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=IGNORE,
                           label_smoothing=cfg["label_smoothing"])
    loss.backward()
    tensors = {"input:src": src, "input:src_lengths": lengths, "input:tgt_in": tgt_in, "input:targets": targets,
               "output:logits": logits, "output:loss": loss}
    for n, p in unique_state(model).items():
        tensors["param:" + n] = p
        tensors["grad:param:" + n] = p.grad
    model.eval()
    with torch.no_grad():
        ev = model(src, lengths, tgt_in)
        tensors["output:logits_eval"] = ev
        tensors["output:nll_eval"] = F.cross_entropy(ev.reshape(-1, V), targets.reshape(-1), ignore_index=IGNORE)
        # Greedy decoding as torch users write it: the whole prefix again
        # for every token, up to 6 new tokens.
        ys = torch.full((B, 1), bos, dtype=torch.long)
        for _ in range(6):
            nxt = model(src, lengths, ys)[:, -1].argmax(-1, keepdim=True)
            ys = torch.cat((ys, nxt), dim=1)
        tensors["output:greedy"] = ys[:, 1:]
    write(name, cfg, {"src_lengths": SRC_LENGTHS, "sources": SOURCES, "targets": TARGETS}, tensors)


def main():
    core_case("core_post_relu", config())
    core_case("core_pre_gelu", config(norm_first=True, activation="gelu"))
    model_case("model_post", config())
    model_case("model_pre_shared_tied_learned", config(
        src_vocab_size=13, norm_first=True, activation="gelu", positions="learned",
        share_embeddings=True, tie_output=True))


if __name__ == "__main__":
    main()
