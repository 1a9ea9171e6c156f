#!/usr/bin/python3
"""Writes small random GPT-1 models in HuggingFace's openai-gpt layout, with
reference logits and greedy continuations, for seq2gpt's parity tests.

The torch modules below follow transformers' modeling_openai.py
(OpenAIGPTLMHeadModel: Conv1D projections stored [in, out], post-LayerNorm
blocks, its ACT_FNS table of activations, a causal mask applied as w*b - 1e4*(1-b), lm_head tied to
tokens_embed), so the state dict has exactly HF's names and layouts.
The safetensors files are written by hand (the format is an 8-byte
little-endian header length, a JSON header and raw little-endian data), so
only torch is needed.

Run from the repository root with Debian's torch:
    apt-get install -y python3-torch
    /usr/bin/python3 gpt/testdata/gen_gpt.py
"""
import json
import math
import os
import struct

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class Conv1D(nn.Module):
    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.2)
        self.bias = nn.Parameter(torch.randn(nf) * 0.1)

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
        return x.view(size_out)


def gelu_new(x):
    """transformers' NewGELUActivation (activations.py), the tanh approximation."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


# modeling_openai.py's table: its "gelu" is the tanh approximation, and it
# has no "gelu_new" key.
ACT = {"relu": nn.ReLU(), "silu": nn.functional.silu, "gelu": gelu_new, "swish": nn.functional.silu}
# Not HF's: the name older configs here used for the tanh form (gpt reads
# it as "gelu"); kept so generators that import this module still run.
ACT["gelu_new"] = gelu_new


class Attention(nn.Module):
    def __init__(self, nx, n_positions, n_head):
        super().__init__()
        self.register_buffer("bias", torch.tril(torch.ones(n_positions, n_positions)).view(1, 1, n_positions, n_positions), persistent=False)
        self.n_head = n_head
        self.split_size = nx
        self.c_attn = Conv1D(nx * 3, nx)
        self.c_proj = Conv1D(nx, nx)

    def split_heads(self, x, k=False):
        x = x.view(*(x.size()[:-1] + (self.n_head, x.size(-1) // self.n_head)))
        return x.permute(0, 2, 3, 1) if k else x.permute(0, 2, 1, 3)

    def forward(self, x):
        q, k, v = self.c_attn(x).split(self.split_size, dim=2)
        q, k, v = self.split_heads(q), self.split_heads(k, k=True), self.split_heads(v)
        w = torch.matmul(q, k) / math.sqrt(v.size(-1))
        b = self.bias[:, :, : w.size(-2), : w.size(-1)]
        w = w * b + -1e4 * (1 - b)
        w = nn.functional.softmax(w, dim=-1)
        self.last_w = w  # the attention weights, for the reference
        a = torch.matmul(w, v).permute(0, 2, 1, 3).contiguous()
        a = a.view(*(a.size()[:-2] + (a.size(-2) * a.size(-1),)))
        return self.c_proj(a)


class MLP(nn.Module):
    def __init__(self, n_state, nx, afn):
        super().__init__()
        self.c_fc = Conv1D(n_state, nx)
        self.c_proj = Conv1D(nx, n_state)
        self.act = ACT[afn]

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        nx = cfg["n_embd"]
        self.attn = Attention(nx, cfg["n_positions"], cfg["n_head"])
        self.ln_1 = nn.LayerNorm(nx, eps=cfg["layer_norm_epsilon"])
        self.mlp = MLP(4 * nx, nx, cfg["afn"])
        self.ln_2 = nn.LayerNorm(nx, eps=cfg["layer_norm_epsilon"])
        for ln in (self.ln_1, self.ln_2):
            with torch.no_grad():
                ln.weight.add_(torch.randn(nx) * 0.2)
                ln.bias.add_(torch.randn(nx) * 0.1)

    def forward(self, x):
        n = self.ln_1(x + self.attn(x))
        return self.ln_2(n + self.mlp(n))


class OpenAIGPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tokens_embed = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
        self.positions_embed = nn.Embedding(cfg["n_positions"], cfg["n_embd"])
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg["n_layer"])])

    def forward(self, ids):
        pos = torch.arange(ids.size(-1)).unsqueeze(0)
        h = self.tokens_embed(ids) + self.positions_embed(pos)
        for block in self.h:
            h = block(h)
        return h


class OpenAIGPTLMHeadModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.transformer = OpenAIGPTModel(cfg)
        self.lm_head = nn.Linear(cfg["n_embd"], cfg["vocab_size"], bias=False)
        self.lm_head.weight = self.transformer.tokens_embed.weight

    def forward(self, ids):
        return self.lm_head(self.transformer(ids))


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(torch.float32)
        data = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
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


def greedy(model, prompt, n):
    ids = list(prompt)
    for _ in range(n):
        logits = model(torch.tensor([ids]))
        ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt):]


def make(name, afn, seed):
    torch.manual_seed(seed)
    cfg = {
        "vocab_size": 50, "n_positions": 40, "n_embd": 32, "n_layer": 2, "n_head": 4,
        "afn": afn, "layer_norm_epsilon": 1e-5, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
        "resid_pdrop": 0.1, "initializer_range": 0.02, "model_type": "openai-gpt",
        "architectures": ["OpenAIGPTLMHeadModel"],
    }
    model = OpenAIGPTLMHeadModel(cfg).eval()
    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    sd = {("transformer." + k if not k.startswith(("transformer.", "lm_head.")) else k): v for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(out, "model.safetensors"), sd)

    ids = torch.randint(0, cfg["vocab_size"], (2, 32))
    with torch.no_grad():
        logits = model(ids)
        prompts = [[3, 14, 15, 9, 2, 6], [27, 1, 8]]
        model(torch.tensor([prompts[0]]))
        attention = [block.attn.last_w[0].flatten().tolist() for block in model.transformer.h]
        cont = [greedy(model, p, 12) for p in prompts]
    ref = {
        "ids": ids.flatten().tolist(),
        "shape": list(logits.shape),
        "logits": [float(x) for x in logits.flatten().tolist()],
        "prompts": prompts,
        "greedy": cont,
        # Each layer's softmax weights [n_head, T, T] for prompts[0].
        "attention": [[float(x) for x in a] for a in attention],
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    # hf-gelu has the weights of the former hf-gelu-new (seed 2, tanh GELU),
    # so the generation ids pinned in generate-b314e47.json still apply.
    make("hf-gelu", "gelu", 2)
    make("hf-silu", "silu", 1)
