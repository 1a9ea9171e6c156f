#!/usr/bin/python3
"""PyTorch side of BenchmarkStep: the same tiny next-token model (vocab 256,
d 64, FFN 128 with tanh-GELU and dropout 0.1, residual, output Linear,
cross-entropy), AdamW and clip_grad_norm_(1), batch 16 × 32 tokens, float32,
2 threads. Prints the median training tokens/s of 5 runs of 50 steps.

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 train/testdata/bench_torch.py
"""

import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)
V, D, B, T = 256, 64, 16, 32


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, D)
        self.l1 = nn.Linear(D, 2 * D)
        self.l2 = nn.Linear(2 * D, D)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(D, V)

    def forward(self, ids):
        x = self.wte(ids)
        h = self.l2(self.drop(F.gelu(self.l1(x), approximate="tanh")))
        return self.head(x + h)


m = Tiny()
opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)
ids = torch.randint(0, V, (B, T))
tg = (3 * ids + 1) % V


def step():
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(m(ids).reshape(-1, V), tg.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()


for _ in range(10):
    step()
rates = []
for _ in range(5):
    t0 = time.perf_counter()
    for _ in range(50):
        step()
    rates.append(50 * B * T / (time.perf_counter() - t0))
print("torch %s train tok/s median %.0f (runs %s)" % (torch.__version__, statistics.median(rates), [round(r) for r in rates]))
