#!/usr/bin/python3
"""PyTorch reference timings for seq2gpt's seq2seq benchmark (seq2seq/bench_test.go).

Run on the CPU with the OpenMP OpenBLAS and 2 threads:

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 bench/torch_seq2seq.py

The model is the issue's benchmark: LSTM + Bahdanau (additive) attention,
a unidirectional one-layer encoder, embedding 128, hidden 256 (attention
256), vocabulary 1,000 on both sides, dropout 0 -- the Seq2Seq module of
seq2seq/testdata/gen_seq2seq.py (the parity fixtures' generator), so the
same weights names and equations as seq2seq.Model. Batch 32, sources and
targets of 20 tokens (19 and the end token). Measurements, each a median
over rounds of ~round-s seconds:

  train_tok_s         one step: teacher-forced forward (the decoder step by
                      step, as the attention model must), cross-entropy,
                      backward, clip_grad_norm_(1), torch.optim.Adam(lr 1e-3):
                      target tokens/s
  greedy_sentences_s  greedy decoding of the 32 sources, 20 new tokens each
                      (the end token never stops a row: as the Go benchmark's
                      MinLen 20), the encoder once, no_grad: sentences/s

All output is `key value` lines.
"""

import argparse
import importlib.util
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = load("gen_seq2seq", os.path.join("..", "seq2seq", "testdata", "gen_seq2seq.py"))
# The timing loop and the BLAS report are torch_gpt.py's.
_torch_gpt = load("torch_gpt", "torch_gpt.py")
bench, mapped_blas = _torch_gpt.bench, _torch_gpt.mapped_blas

CONFIG = {
    "model_type": "seq2seq", "arch": "attention", "src_vocab_size": 1000, "tgt_vocab_size": 1000,
    "embed_dim": 128, "hidden_size": 256, "num_layers": 1, "dropout": 0.0, "reverse_source": False,
    "feed_context": False, "unidirectional": True, "score": "additive", "attention_dim": 256,
    "tie_embeddings": False, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "src_eos_token_id": 2,
}
BATCH, LENGTH = 32, 20


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--round-s", type=float, default=1.0, help="target seconds per round")
    ap.add_argument("--warmup-s", type=float, default=1.0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    print("torch", torch.__version__)
    print("threads", torch.get_num_threads())
    print("LD_LIBRARY_PATH", os.environ.get("LD_LIBRARY_PATH", "") or "-")
    try:
        print("loadavg_start", open("/proc/loadavg").read().split()[0])
    except OSError:
        pass
    print("config attention unidirectional E 128 H 256 A 256 V 1000 batch %d length %d" % (BATCH, LENGTH))

    torch.manual_seed(1)
    model = gen.Seq2Seq(CONFIG)
    V, EOS, BOS = CONFIG["tgt_vocab_size"], CONFIG["eos_token_id"], CONFIG["bos_token_id"]
    src = torch.cat([torch.randint(3, V, (BATCH, LENGTH - 1)), torch.full((BATCH, 1), EOS)], 1)
    lengths = torch.full((BATCH,), LENGTH)
    tgt = torch.cat([torch.randint(3, V, (BATCH, LENGTH - 1)), torch.full((BATCH, 1), EOS)], 1)
    tgt_in = torch.cat([torch.full((BATCH, 1), BOS), tgt[:, :-1]], 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        logits = model(src, lengths, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def greedy():
        model.eval()
        with torch.no_grad():
            enc = model.encode(src, lengths)
            state = enc["state"]
            y = torch.full((BATCH,), BOS, dtype=torch.int64)
            for _ in range(LENGTH):
                logits, state, _ = model.step(enc, y, state)
                logits[:, EOS] = float("-inf")  # MinLen: no row ends early
                y = logits.argmax(-1)

    results = []
    for name, step, count in [("train_tok_s", train_step, BATCH * LENGTH), ("greedy_sentences_s", greedy, BATCH)]:
        med, times = bench(step, args.rounds, args.round_s, args.warmup_s)
        print("%s_rounds %s" % (name, ",".join("%.0f" % (count / t) for t in times)))
        results.append((name, "%.0f" % (count / med)))
    libs = mapped_blas()
    for lib in libs:
        print("blas_mapped", lib)
    if not any("openblas" in l for l in libs):
        print("WARNING OpenBLAS not mapped; run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp",
              file=sys.stderr)
    try:
        print("loadavg_end", open("/proc/loadavg").read().split()[0])
    except OSError:
        pass
    for k, v in results:
        print(k, v)


if __name__ == "__main__":
    main()
