#!/usr/bin/python3
"""Writes small random fine-tuned BERTs in HuggingFace's
BertForSequenceClassification and BertForMultipleChoice layouts, with
torch's logits and losses on padded batches with segment ids, for the
parity tests of tasks' BERT body.

The encoder is bert/testdata/gen_bert.py's BertModel (modules written to
transformers' modeling_bert.py); the heads follow modeling_bert.py too:
dropout on the pooled output, then classifier = nn.Linear(d, num_labels)
(sequence classification) or nn.Linear(d, 1) on each choice's pooled
output, viewed as [B, C] (multiple choice); CrossEntropyLoss on the
logits.

Run from the repository root with Debian's torch:
    /usr/bin/python3 tasks/testdata/gen_bert_heads.py
"""
import json
import os
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bert", "testdata"))
from gen_bert import BertModel, write_safetensors  # noqa: E402

PAD, CLS, SEP = 0, 1, 2


class BertForSequenceClassification(nn.Module):
    def __init__(self, c, num_labels):
        super().__init__()
        self.bert = BertModel(c)
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])
        self.classifier = nn.Linear(c["hidden_size"], num_labels)

    def forward(self, ids, seg, mask):
        _, pooled = self.bert(ids, seg, mask)
        return self.classifier(self.dropout(pooled))


class BertForMultipleChoice(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.dropout = nn.Dropout(c["hidden_dropout_prob"])
        self.classifier = nn.Linear(c["hidden_size"], 1)

    def forward(self, ids, seg, mask):
        C = ids.size(1)
        flat = lambda x: x.view(-1, x.size(-1))
        _, pooled = self.bert(flat(ids), flat(seg), flat(mask))
        return self.classifier(self.dropout(pooled)).view(-1, C)


def config(arch, labels):
    c = {
        "vocab_size": 50, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 48, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 40, "type_vocab_size": 2,
        "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": PAD,
        "position_embedding_type": "absolute", "model_type": "bert", "architectures": [arch],
        "classifier_dropout": None,
    }
    if labels:
        c["id2label"] = {str(i): l for i, l in enumerate(labels)}
        c["label2id"] = {l: i for i, l in enumerate(labels)}
    return c


def randomize(model):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("LayerNorm.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))


def pair(a, b):
    """[CLS] a [SEP] b [SEP] and its segment ids."""
    ids = [CLS] + a + [SEP] + b + [SEP]
    return ids, [0] * (len(a) + 2) + [1] * (len(b) + 1)


def pad(rows, T):
    ids = torch.full((len(rows), T), PAD, dtype=torch.long)
    seg = torch.zeros(len(rows), T, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for r, (i, s) in enumerate(rows):
        ids[r, :len(i)] = torch.tensor(i)
        seg[r, :len(s)] = torch.tensor(s)
        mask[r, :len(i)] = 1
    return ids, seg, mask


def words(n):
    return [int(x) for x in torch.randint(4, 50, (n,))]


def save(model, c, name, ref):
    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(out, "model.safetensors"), model.state_dict())
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, sort_keys=True)
        f.write("\n")


def seqcls():
    torch.manual_seed(3)
    labels = ["contradiction", "entailment", "neutral"]
    c = config("BertForSequenceClassification", labels)
    model = BertForSequenceClassification(c, 3).eval()
    randomize(model)
    rows = [pair(words(5), words(4)), pair(words(2), words(7)), pair(words(3), words(1))]
    ids, seg, mask = pad(rows, 12)
    y = torch.tensor([1, 0, 2])
    logits = model(ids, seg, mask)
    loss = nn.CrossEntropyLoss()(logits, y)
    save(model, c, "hf-bert-seqcls", {"seqs": [r[0] for r in rows], "types": [r[1] for r in rows],
                                      "labels": y.tolist(), "logits": logits.detach().flatten().tolist(), "loss": float(loss)})


def choice():
    torch.manual_seed(4)
    c = config("BertForMultipleChoice", None)
    model = BertForMultipleChoice(c).eval()
    randomize(model)
    B, C, T = 2, 3, 12
    items = [[pair(words(4), words(n)) for n in (2, 4, 1)], [pair(words(2), words(n)) for n in (3, 3, 5)]]
    ids = torch.full((B, C, T), PAD, dtype=torch.long)
    seg = torch.zeros(B, C, T, dtype=torch.long)
    mask = torch.zeros(B, C, T, dtype=torch.long)
    for b in range(B):
        ids[b], seg[b], mask[b] = pad(items[b], T)
    y = torch.tensor([2, 0])
    logits = model(ids, seg, mask)
    loss = nn.CrossEntropyLoss()(logits, y)
    save(model, c, "hf-bert-mc", {"seqs": [[r[0] for r in it] for it in items], "types": [[r[1] for r in it] for it in items],
                                  "labels": y.tolist(), "logits": logits.detach().flatten().tolist(), "loss": float(loss)})


if __name__ == "__main__":
    torch.set_num_threads(1)
    seqcls()
    choice()
