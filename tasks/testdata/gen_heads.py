#!/usr/bin/python3
"""Writes small random GPT-1 task models in HuggingFace's layouts, with
reference outputs, for the parity tests of seq2gpt's tasks package.

The torch modules follow transformers' modeling_openai.py:
OpenAIGPTDoubleHeadsModel (the body under "transformer.", lm_head tied to
the token embedding, multiple_choice_head an OpenAIGPTSequenceSummary with
summary_type "cls_index", summary_use_proj and summary_proj_to_labels with
num_labels 1, summary_first_dropout before the projection) and
OpenAIGPTForSequenceClassification ("score", no bias, pooled at the last
token that is not pad_token_id; cross-entropy, or MSE when num_labels is 1).
The body is gpt/testdata/gen_gpt.py's OpenAIGPTModel, imported, so the two
fixtures share one transcription of HF's blocks. transformers itself is not
needed (nor installed); config.json has the keys transformers writes.

Run from the repository root with Debian's torch:
    apt-get install -y python3-torch
    /usr/bin/python3 tasks/testdata/gen_heads.py

With --check DIR it instead loads a directory seq2gpt wrote (config.json,
model.safetensors and the reference.json beside them) into these modules
with strict state-dict loading and prints the largest difference between
their outputs and the ones seq2gpt recorded.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "gpt", "testdata"))
from gen_gpt import OpenAIGPTModel, write_safetensors  # noqa: E402

BASE = 56  # text ids 0..55; then the special tokens
START, DELIM, EXTRACT, PAD = BASE, BASE + 1, BASE + 2, BASE + 3


class SequenceSummary(nn.Module):
    """OpenAIGPTSequenceSummary with summary_type "cls_index"."""

    def __init__(self, cfg):
        super().__init__()
        self.summary = nn.Linear(cfg["n_embd"], cfg["num_labels"])
        p = cfg["summary_first_dropout"]
        self.first_dropout = nn.Dropout(p) if p > 0 else nn.Identity()
        with torch.no_grad():
            self.summary.weight.normal_(0, 0.5)
            self.summary.bias.normal_(0, 0.5)

    def forward(self, hidden_states, cls_index):
        cls_index = cls_index.unsqueeze(-1).unsqueeze(-1)
        cls_index = cls_index.expand((-1,) * (cls_index.dim() - 1) + (hidden_states.size(-1),))
        output = hidden_states.gather(-2, cls_index).squeeze(-2)
        return self.summary(self.first_dropout(output))


class OpenAIGPTDoubleHeadsModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.transformer = OpenAIGPTModel(cfg)
        self.lm_head = nn.Linear(cfg["n_embd"], cfg["vocab_size"], bias=False)
        self.lm_head.weight = self.transformer.tokens_embed.weight
        self.multiple_choice_head = SequenceSummary(cfg)

    def forward(self, input_ids, mc_token_ids, labels, mc_labels):
        b, c, t = input_ids.shape
        hidden = self.transformer(input_ids.view(-1, t)).view(b, c, t, -1)
        lm_logits = self.lm_head(hidden)
        mc_logits = self.multiple_choice_head(hidden, mc_token_ids).squeeze(-1)
        mc_loss = nn.CrossEntropyLoss()(mc_logits.view(-1, mc_logits.size(-1)), mc_labels.view(-1))
        shift_logits = lm_logits[..., :-1, :].contiguous()
        shift_labels = labels[..., 1:].contiguous()
        lm_loss = nn.CrossEntropyLoss()(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1))
        return mc_logits, mc_loss, lm_loss


class OpenAIGPTForSequenceClassification(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.num_labels = cfg["num_labels"]
        self.pad_token_id = cfg["pad_token_id"]
        self.transformer = OpenAIGPTModel(cfg)
        self.score = nn.Linear(cfg["n_embd"], self.num_labels, bias=False)
        with torch.no_grad():
            self.score.weight.normal_(0, 0.5)

    def forward(self, input_ids, labels):
        logits = self.score(self.transformer(input_ids))
        non_pad_mask = (input_ids != self.pad_token_id).to(torch.int32)
        token_indices = torch.arange(input_ids.shape[-1], dtype=torch.int32)
        last_non_pad_token = (token_indices * non_pad_mask).argmax(-1)
        pooled = logits[torch.arange(input_ids.shape[0]), last_non_pad_token]
        if self.num_labels == 1:
            loss = nn.MSELoss()(pooled.squeeze(), labels.squeeze())
        else:
            loss = nn.CrossEntropyLoss()(pooled.view(-1, self.num_labels), labels.view(-1))
        return pooled, loss


def config(arch, num_labels, labels=None, problem=None, task=None):
    cfg = {
        "vocab_size": BASE + 4, "n_positions": 16, "n_embd": 32, "n_layer": 2, "n_head": 4,
        "afn": "gelu", "layer_norm_epsilon": 1e-5, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
        "resid_pdrop": 0.0, "initializer_range": 0.02, "model_type": "openai-gpt", "n_ctx": 16,
        "architectures": [arch], "summary_type": "cls_index", "summary_use_proj": True,
        "summary_activation": None, "summary_proj_to_labels": True, "summary_first_dropout": 0.0,
        "pad_token_id": PAD, "tie_word_embeddings": True, "torch_dtype": "float32",
    }
    labels = labels or ["LABEL_%d" % i for i in range(num_labels)]
    cfg["id2label"] = {str(i): l for i, l in enumerate(labels)}
    cfg["label2id"] = {l: i for i, l in enumerate(labels)}
    if problem:
        cfg["problem_type"] = problem
    if task:
        cfg["finetuning_task"] = task
    return cfg


def layout(*segments, t):
    ids = [START]
    for i, s in enumerate(segments):
        if i:
            ids.append(DELIM)
        ids += s
    ids.append(EXTRACT)
    return ids + [PAD] * (t - len(ids)), len(ids) - 1


def text(n):
    return torch.randint(0, BASE, (n,)).tolist()


def save(name, model, cfg, ref):
    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({k: v for k, v in cfg.items() if k != "num_labels"}, f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(out, "model.safetensors"), model.state_dict())
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, sort_keys=True)
        f.write("\n")


def double_heads(seed):
    torch.manual_seed(seed)
    cfg = config("OpenAIGPTDoubleHeadsModel", 1)
    cfg["num_labels"] = 1
    model = OpenAIGPTDoubleHeadsModel(cfg).eval()
    b, c, t = 2, 3, 12
    ids, ext = [], []
    items = []
    for _ in range(b):
        ctx = text(4 + len(ids))
        answers = [text(1 + k) for k in range(c)]
        items.append({"context": ctx, "answers": answers})
        row, er = [], []
        for ans in answers:
            seq, e = layout(ctx, ans, t=t)
            row.append(seq)
            er.append(e)
        ids.append(row)
        ext.append(er)
    ids_t, ext_t = torch.tensor(ids), torch.tensor(ext)
    labels = ids_t.masked_fill(ids_t == PAD, -100)
    mc_labels = torch.tensor([2, 0])
    with torch.no_grad():
        mc_logits, mc_loss, lm_loss = model(ids_t, ext_t, labels, mc_labels)
    save("hf-double-heads", model, cfg, {
        "items": items, "ids": ids, "extract": ext, "mc_labels": mc_labels.tolist(),
        "mc_logits": [float(x) for x in mc_logits.flatten()], "mc_loss": float(mc_loss), "lm_loss": float(lm_loss),
    })


def sequence_classification(seed, num_labels, name):
    """A pair task in one order (HF's) and, for the regression, in both
    orders summed (seq2gpt's similarity transform, the same module run on
    A $ B and B $ A)."""
    torch.manual_seed(seed)
    regression = num_labels == 1
    cfg = config("OpenAIGPTForSequenceClassification", num_labels,
                 labels=None if regression else ["contradiction", "entailment", "neutral"][:num_labels],
                 problem="regression" if regression else "single_label_classification", task=name)
    cfg["num_labels"] = num_labels
    model = OpenAIGPTForSequenceClassification(cfg).eval()
    t, segments = 12, []
    for a, b in ((3, 2), (6, 3), (1, 1), (5, 4)):  # 8, 12, 5 and 12 tokens
        segments.append([text(a), text(b)])
    ab = torch.tensor([layout(a, b, t=t)[0] for a, b in segments])
    ba = torch.tensor([layout(b, a, t=t)[0] for a, b in segments])
    labels = torch.tensor([1.5, 4.0, 0.25, 3.0]) if regression else torch.tensor([2, 0, 1, 1])
    with torch.no_grad():
        logits, loss = model(ab, labels)
        swapped, _ = model(ba, labels)
    ref = {"segments": segments, "ids": ab.tolist(), "labels": labels.tolist(),
           "logits": [float(x) for x in logits.flatten()], "loss": float(loss)}
    if regression:
        both = (logits + swapped).squeeze(-1)
        ref["logits_both_orders"] = [float(x) for x in both]
        ref["loss_both_orders"] = float(nn.MSELoss()(both, labels))
    save("hf-" + name, model, cfg, ref)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", e
        lo, hi = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[lo:hi]), dtype=torch.float32).reshape(e["shape"])
    return out


def check(d):
    """Loads a directory seq2gpt saved into the modules above (strict) and
    compares their outputs with the reference.json seq2gpt wrote there."""
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(d, "reference.json")) as f:
        ref = json.load(f)
    cfg["num_labels"] = len(cfg["id2label"])
    arch = cfg["architectures"][0]
    model = (OpenAIGPTDoubleHeadsModel if arch == "OpenAIGPTDoubleHeadsModel" else OpenAIGPTForSequenceClassification)(cfg)
    model.load_state_dict(read_safetensors(os.path.join(d, "model.safetensors")), strict=True)
    model.eval()
    with torch.no_grad():
        if arch == "OpenAIGPTDoubleHeadsModel":
            ids = torch.tensor(ref["ids"])
            labels = ids.masked_fill(ids == cfg["pad_token_id"], -100)
            out, _, _ = model(ids, torch.tensor(ref["extract"]), labels, torch.zeros(ids.shape[0], dtype=torch.long))
        else:
            ids = torch.tensor(ref["ids"])
            lab = torch.zeros(ids.shape[0]) if cfg["num_labels"] == 1 else torch.zeros(ids.shape[0], dtype=torch.long)
            out, _ = model(ids, lab)
            if "ids_swapped" in ref:  # a pair in both orders: seq2gpt's similarity transform
                out = out + model(torch.tensor(ref["ids_swapped"]), lab)[0]
    got = torch.tensor(ref["logits"]).reshape(out.shape)
    print("%s: %s loaded strictly; max |torch - seq2gpt| = %.3g" % (d, arch, float((out - got).abs().max())))


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
        sys.exit(0)
    double_heads(1)
    sequence_classification(2, 3, "mnli")
    sequence_classification(3, 1, "stsb")
