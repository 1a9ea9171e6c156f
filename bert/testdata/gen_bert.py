#!/usr/bin/python3
"""Writes a small random BERT in HuggingFace's BertForPreTraining layout,
with torch's outputs and gradients on a padded batch with segment ids, for
seq2gpt's parity tests.

The torch modules below follow transformers' modeling_bert.py
(BertEmbeddings, BertSelfAttention, BertSelfOutput, BertIntermediate,
BertOutput, BertLayer, BertPooler, BertPredictionHeadTransform,
BertLMPredictionHead with its decoder tied to the word embeddings and its
bias shared, BertPreTrainingHeads, BertForPreTraining and its loss; the
attention mask extended as (1 − mask)·finfo.min), so the state dict has
exactly HF's names and layouts. transformers itself is not needed. The
safetensors files are written by hand (an 8-byte little-endian header
length, a JSON header, raw little-endian data), as save_pretrained writes
them: the tied cls.predictions.decoder.weight and .bias are left out.

Run from the repository root with Debian's torch:
    apt-get install -y python3-torch
    /usr/bin/python3 bert/testdata/gen_bert.py
"""
import json
import math
import os
import struct

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))

ACT = {
    "gelu": nn.GELU(),
    "gelu_new": nn.GELU(approximate="tanh"),
    "relu": nn.ReLU(),
}


class BertEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=c["pad_token_id"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, input_ids, token_type_ids):
        pos = torch.arange(input_ids.size(1)).unsqueeze(0)
        e = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids) + self.position_embeddings(pos)
        return self.dropout(self.LayerNorm(e))


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h = c["num_attention_heads"]
        self.dk = c["hidden_size"] // self.h
        d = c["hidden_size"]
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.dropout = nn.Dropout(c["attention_probs_dropout_prob"])

    def transpose_for_scores(self, x):
        return x.view(x.size()[:-1] + (self.h, self.dk)).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q = self.transpose_for_scores(self.query(x))
        k = self.transpose_for_scores(self.key(x))
        v = self.transpose_for_scores(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dk) + mask
        probs = self.dropout(nn.functional.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (self.h * self.dk,))


class BertSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, h, x):
        return self.LayerNorm(self.dropout(self.dense(h)) + x)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertSelfOutput(c)

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.act = ACT[c["hidden_act"]]

    def forward(self, x):
        return self.act(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["intermediate_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])

    def forward(self, h, x):
        return self.LayerNorm(self.dropout(self.dense(h)) + x)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def forward(self, x, mask):
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x, mask):
        for l in self.layer:
            x = l(x, mask)
        return x


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.activation = nn.Tanh()

    def forward(self, h):
        return self.activation(self.dense(h[:, 0]))


class BertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = BertEmbeddings(c)
        self.encoder = BertEncoder(c)
        self.pooler = BertPooler(c)

    def forward(self, input_ids, token_type_ids, attention_mask):
        ext = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        h = self.encoder(self.embeddings(input_ids, token_type_ids), ext)
        return h, self.pooler(h)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.transform_act_fn = ACT[c["hidden_act"]]
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, h):
        return self.LayerNorm(self.transform_act_fn(self.dense(h)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transform = BertPredictionHeadTransform(c)
        self.decoder = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.bias = nn.Parameter(torch.zeros(c["vocab_size"]))
        self.decoder.bias = self.bias

    def forward(self, h):
        return self.decoder(self.transform(h))


class BertPreTrainingHeads(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.predictions = BertLMPredictionHead(c)
        self.seq_relationship = nn.Linear(c["hidden_size"], 2)

    def forward(self, h, pooled):
        return self.predictions(h), self.seq_relationship(pooled)


class BertForPreTraining(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.cls = BertPreTrainingHeads(c)
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, token_type_ids, attention_mask, labels=None, next_sentence_label=None):
        h, pooled = self.bert(input_ids, token_type_ids, attention_mask)
        scores, nsp = self.cls(h, pooled)
        out = {"hidden": h, "pooled": pooled, "logits": scores, "nsp_logits": nsp}
        if labels is not None:
            ce = nn.CrossEntropyLoss()
            out["loss"] = ce(scores.view(-1, scores.size(-1)), labels.view(-1)) + ce(nsp.view(-1, 2), next_sentence_label.view(-1))
        return out


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


def make(name, act, seed):
    torch.manual_seed(seed)
    cfg = {
        "vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 48, "hidden_act": act, "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 40, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "position_embedding_type": "absolute", "model_type": "bert", "architectures": ["BertForPreTraining"],
    }
    model = BertForPreTraining(cfg).eval()
    with torch.no_grad():  # nothing at its default: random weights, gains and biases
        for n, p in model.named_parameters():
            if n.endswith("LayerNorm.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("cls.predictions.decoder.")}
    write_safetensors(os.path.join(out, "model.safetensors"), sd)

    # A padded batch: rows of 12, 9 and 5 tokens, segments A and B.
    B, T = 3, 12
    lengths = [12, 9, 5]
    ids = torch.randint(1, cfg["vocab_size"], (B, T))
    seg = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, n:] = cfg["pad_token_id"]
        mask[b, :n] = 1
        seg[b, n // 2:n] = 1
    labels = torch.full((B, T), -100, dtype=torch.long)
    for b, pos in enumerate([[1, 4, 10], [2, 7], [3]]):
        for i in pos:
            labels[b, i] = int(torch.randint(0, cfg["vocab_size"], ()))
    nsp_labels = torch.tensor([0, 1, 0])
    res = model(ids, seg, mask, labels, nsp_labels)
    res["loss"].backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    write_safetensors(os.path.join(out, "grads.safetensors"), grads)
    ref = {
        "ids": ids.flatten().tolist(), "segments": seg.flatten().tolist(), "lengths": lengths,
        "batch": B, "steps": T, "labels": labels.flatten().tolist(), "nsp_labels": nsp_labels.tolist(),
        "loss": float(res["loss"]),
    }
    for k in ("hidden", "pooled", "logits", "nsp_logits"):
        ref[k] = [float(x) for x in res[k].detach().flatten().tolist()]
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    make("hf-bert", "gelu", 1)
    make("hf-bert-gelu-new", "gelu_new", 2)
