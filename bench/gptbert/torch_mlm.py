#!/usr/bin/python3
"""Masked-LM pre-training of the comparison's tiny BERT in PyTorch, as a check
on seq2gpt's: the modules of bert/testdata/gen_bert.py (HF's modeling_bert
structure), HF's initialisation, the same text and tokens (sotuids), the same
recipe as "seq2gpt mlm train --preset tiny" (windows of 30 tokens between
[CLS] and [SEP], 15% chosen, 80/10/10, batch 16, AdamW lr 2e-3 with weight
decay 0.01 on matrices, warm-up over 5% of the steps then linear decay to
lr/10, clipping at 1, dropout 0.1). Every 500 steps it prints the validation
MLM loss and the accuracy at [MASK]s on 320 validation windows.

    go run ./bench/gptbert/sotuids /tmp/gptbert/tok/last /tmp/sotu
    /usr/bin/python3 bench/gptbert/torch_mlm.py /tmp/sotu [STEPS [LR]]
"""
import importlib.util, math, os, sys, time, struct, random
import torch, torch.nn as nn
torch.set_num_threads(1)
spec = importlib.util.spec_from_file_location(
    "gen_bert", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bert", "testdata", "gen_bert.py"))
gb = importlib.util.module_from_spec(spec); spec.loader.exec_module(gb)
torch.manual_seed(1); random.seed(1)
PAD, CLS, SEP, MASK = 1256, 1257, 1258, 1259
c = dict(vocab_size=1260, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256, hidden_act="gelu",
         hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, max_position_embeddings=32, type_vocab_size=2,
         layer_norm_eps=1e-12, pad_token_id=PAD)
m = gb.BertForPreTraining(c)
for mod in m.modules():
    if isinstance(mod, (nn.Linear, nn.Embedding)):
        mod.weight.data.normal_(0, 0.02)
    if isinstance(mod, nn.Linear) and mod.bias is not None:
        mod.bias.data.zero_()
m.cls.predictions.bias.data.zero_()
def load(p):
    b = open(p, "rb").read(); return torch.tensor(struct.unpack("<%di" % (len(b) // 4), b))
tr, va = load(sys.argv[1] + "-train.i32"), load(sys.argv[1] + "-valid.i32")
W = 30
def windows(ids): n = len(ids) // W; return ids[: n * W].view(n, W)
trw, vaw = windows(tr), windows(va)
def mask_batch(w, g):
    B = w.size(0)
    x = torch.cat([torch.full((B, 1), CLS), w, torch.full((B, 1), SEP)], 1)
    labels = torch.full_like(x, -100); ismask = torch.zeros_like(x, dtype=torch.bool)
    k = max(1, round(0.15 * W))
    for b in range(B):
        pos = torch.randperm(W, generator=g)[:k] + 1
        labels[b, pos] = x[b, pos]
        for p in pos.tolist():
            r = torch.rand(1, generator=g).item()
            if r < 0.8: x[b, p] = MASK; ismask[b, p] = True
            elif r < 0.9: x[b, p] = torch.randint(0, 1256, (1,), generator=g).item()
    return x, labels, ismask
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
lr = float(sys.argv[3]) if len(sys.argv) > 3 else 2e-3
decay = [p for n, p in m.named_parameters() if p.dim() >= 2]; nod = [p for n, p in m.named_parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": nod, "weight_decay": 0}], lr=lr)
warm = steps // 20
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else 1 - 0.9 * (s - warm) / max(1, steps - warm))
g = torch.Generator().manual_seed(1); ge = torch.Generator().manual_seed(2)
tt = torch.zeros(16, 32, dtype=torch.long); am = torch.ones(16, 32)
ce = nn.CrossEntropyLoss()
def evaluate():
    m.eval(); tot = n = acc = 0
    with torch.no_grad():
        idx = torch.arange(0, min(len(vaw), 320))
        for i in range(0, len(idx), 16):
            x, lab, ism = mask_batch(vaw[idx[i:i+16]], ge)
            out = m(x, torch.zeros_like(x), torch.ones(x.shape))["logits"]
            sel = ism
            acc += (out[sel].argmax(-1) == lab[sel]).sum().item(); n += sel.sum().item()
            tot += ce(out.view(-1, 1260), lab.view(-1)).item()
    m.train(); return tot / (len(idx) / 16), acc / n
t0 = time.time()
for s in range(steps):
    b = torch.randint(0, len(trw), (16,), generator=g)
    x, lab, _ = mask_batch(trw[b], g)
    out = m(x, tt, am)["logits"]
    loss = ce(out.view(-1, 1260), lab.view(-1))
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); sched.step()
    if (s + 1) % 500 == 0:
        l, a = evaluate(); print("step %d train %.3f valid %.4f acc@[MASK] %.4f  %.0fs" % (s + 1, loss.item(), l, a, time.time() - t0), flush=True)
