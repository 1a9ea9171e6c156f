#!/usr/bin/python3
"""PyTorch reference timings for the seq2gpt blocks (forward + backward).

Run on the CPU with the OpenMP OpenBLAS and 2 threads:

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 bench/torch_blocks.py

Cases:
  mha   nn.MultiheadAttention(128, 4, batch_first=True) self-attention,
        B=16, T=64, loss = (out * R).sum() with R fixed random
  lstm  1-layer nn.LSTM(128, 256, batch_first=True), B=32, T=20 (full length),
        loss = (out * R).sum()

Prints `mha_fwd_bwd_ms <median>` and `lstm_fwd_bwd_ms <median>` (median over
rounds of ms per iteration). `--case mha` or `--case lstm` runs one case only.
"""

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn


def mapped_blas():
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6:
                    path = parts[5]
                    base = os.path.basename(path)
                    if "blas" in base or "lapack" in base:
                        libs.add(os.path.realpath(path) + (" (" + path + ")" if os.path.realpath(path) != path else ""))
    except OSError as e:
        libs.add("unreadable: %s" % e)
    return sorted(libs)


def config_summary():
    keep = ("PyTorch built with", "GCC", "C++ Version", "OpenMP", "LAPACK", "MKL",
            "BLAS", "CPU capability", "Intel", "oneDNN", "MKLDNN")
    lines = []
    for line in torch.__config__.show().splitlines():
        s = line.strip().lstrip("- ").strip()
        if any(k in s for k in keep):
            lines.append(s if len(s) <= 160 else s[:157] + "...")
    return lines


def make_mha():
    torch.manual_seed(1)
    m = nn.MultiheadAttention(128, 4, batch_first=True)
    x = torch.randn(16, 64, 128, requires_grad=True)
    r = torch.randn(16, 64, 128)

    def step():
        m.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = m(x, x, x, need_weights=False)
        (out * r).sum().backward()

    return step


def make_lstm():
    torch.manual_seed(2)
    m = nn.LSTM(128, 256, num_layers=1, batch_first=True)
    x = torch.randn(32, 20, 128, requires_grad=True)
    r = torch.randn(32, 20, 256)

    def step():
        m.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = m(x)
        (out * r).sum().backward()

    return step


def bench(step, rounds, round_s, warmup_s):
    # Warm up, then size a round to about round_s seconds.
    t0 = time.perf_counter()
    n = 0
    while True:
        step()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= warmup_s and n >= 3:
            break
    per = dt / n
    iters = max(1, int(round_s / per))
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - t0) / iters * 1e3)
    return statistics.median(times), times, iters


CASES = {"mha": ("mha_fwd_bwd_ms", make_mha), "lstm": ("lstm_fwd_bwd_ms", make_lstm)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=["all", "mha", "lstm"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--round-s", type=float, default=1.0, help="target seconds per round")
    ap.add_argument("--warmup-s", type=float, default=1.0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    print("# torch", torch.__version__)
    print("# threads", torch.get_num_threads(), "interop", torch.get_num_interop_threads())
    print("# LD_LIBRARY_PATH", os.environ.get("LD_LIBRARY_PATH", ""))
    for line in config_summary():
        print("# config:", line)
    try:
        print("# loadavg", open("/proc/loadavg").read().strip())
    except OSError:
        pass

    names = ["mha", "lstm"] if args.case == "all" else [args.case]
    results = []
    for name in names:
        label, make = CASES[name]
        step = make()
        med, times, iters = bench(step, args.rounds, args.round_s, args.warmup_s)
        print("# %s rounds (ms/iter, %d iters each): %s  min %.3f" % (
            name, iters, " ".join("%.3f" % t for t in times), min(times)))
        results.append((label, med))
    # The BLAS is mapped lazily on first use, so report it after running.
    for lib in mapped_blas():
        print("# mapped:", lib)
    if not any("openblas" in l for l in mapped_blas()):
        print("# WARNING: OpenBLAS not mapped; run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp",
              file=sys.stderr)
    for label, med in results:
        print("%s %.3f" % (label, med))


if __name__ == "__main__":
    main()
