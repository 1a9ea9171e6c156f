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

import argparse
import json
import math
import os
import struct
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


def write_safetensors(path, tensors):
    """The safetensors format by hand (8-byte header length, JSON header,
    little-endian F32 data): Debian has no python3-safetensors."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        a, b = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[a:b]), dtype=torch.float32).reshape(e["shape"])
    return out


def save_dir(model, cfg, out):
    """A model directory as a torch user writes one: config.json and the
    full state dict (a tied module lists tgt_embed.weight and
    generator.weight again)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(dict(cfg, model_type="transformer", architectures=["Translator"]), f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(out, "model.safetensors"), model.state_dict())


def load_dir(path):
    """A directory the Go side saved, into the torch Translator: each shared
    tensor is saved once, so load_state_dict is given its second names."""
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    model = Translator(cfg)
    sd = read_safetensors(os.path.join(path, "model.safetensors"))
    if cfg["share_embeddings"]:
        sd["tgt_embed.weight"] = sd["src_embed.weight"]
    if cfg["tie_output"]:
        sd["generator.weight"] = sd["tgt_embed.weight" if not cfg["share_embeddings"] else "src_embed.weight"]
    model.load_state_dict(sd)
    return model.eval()


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
SOURCES = [[3, 4, 5, 6, 2], [8, 9, 2], [2]]  # each ends with EOS (Model.Source)
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
    5, 3, 1 and targets of 4, 2, 3 (both ending with EOS, as Model.Source
    and Model.Target make them). tgt_in is BOS then the
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
    if cfg["share_embeddings"]:
        save_dir(model, cfg, os.path.join(OUT_DIR, "torch-shared-tied"))


def check(path):
    """Run a model directory the Go side saved (with reference.json beside
    it: sources, decoder inputs and Go's logits) in torch and print the
    largest logit difference."""
    model = load_dir(path)
    with open(os.path.join(path, "reference.json")) as f:
        ref = json.load(f)
    src, tgt_in = torch.tensor(ref["src"]), torch.tensor(ref["tgt_in"])
    with torch.no_grad():
        logits = model(src, torch.tensor(ref["src_lengths"]), tgt_in)
    diff = (logits - torch.tensor(ref["logits"]).reshape(logits.shape)).abs().max().item()
    print("max_logit_difference", diff)
    return diff


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", metavar="DIR", help="run a Go-saved model directory in torch instead")
    args = ap.parse_args()
    if args.check:
        raise SystemExit(0 if check(args.check) < 1e-4 else 1)
    core_case("core_post_relu", config())
    core_case("core_pre_gelu", config(norm_first=True, activation="gelu"))
    model_case("model_post", config())
    model_case("model_pre_shared_tied_learned", config(
        src_vocab_size=13, norm_first=True, activation="gelu", positions="learned",
        share_embeddings=True, tie_output=True))


if __name__ == "__main__":
    main()
