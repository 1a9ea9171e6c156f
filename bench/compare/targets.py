#!/usr/bin/python3
"""Prints issue 14's targets table from targets.sh's logs ($BENCH_DIR, default /tmp/targets):
ours beside torch, medians over the rounds with their ranges, the load recorded."""
import collections, glob, os, re, statistics

B = os.environ.get("BENCH_DIR", "/tmp/targets")
res = collections.defaultdict(lambda: collections.defaultdict(list))
loads = []
for path in sorted(glob.glob(os.path.join(B, "*.log"))):
    name = os.path.basename(path)[:-4]
    for r in open(path).read().split("=== ")[1:]:
        for m in re.finditer(r"uptime_\w+ .*load average: ([\d.]+)", r):
            loads.append(float(m.group(1)))
        for line in r.splitlines():
            g = re.match(r"Benchmark(\S+?)-\d+\s+\d+\s+(.*)", line)
            if g:
                for val, unit in re.findall(r"([\d.e+]+) (\S+)", g.group(2)):
                    res[name][g.group(1) + " " + unit].append(float(val))
            g = re.match(r"(\w+_(?:tok_s|sent_s|sentences_s)) ([\d.]+)$", line)
            if g:
                res[name][g.group(1)].append(float(g.group(2)))
            g = re.match(r"maxrss_kb (\d+)", line)
            if g:
                res[name]["maxrss_kb"].append(float(g.group(1)))

med = statistics.median
def fmt(x):
    if x >= 1e6: return "%.0f" % x
    if x >= 10000: return "%.1fk" % (x / 1000)
    if x >= 1000: return "%.2fk" % (x / 1000)
    if x >= 100: return "%.0f" % x
    return "%.2f" % x
def cell(v): return "%s (%s–%s)" % (fmt(med(v)), fmt(min(v)), fmt(max(v))) if v else "—"
def row(model, measure, ours, theirs, target, mult=1.0, lower=False):
    if not ours or not theirs:
        print("| %s | %s | %s | %s | — | %s | not measured |" % (model, measure, cell(ours), cell(theirs), target))
        return
    ratio = (med(theirs) / med(ours)) if lower else (med(ours) / med(theirs))
    ok = ratio >= mult
    print("| %s | %s | %s | %s | **%.2f×** | %s | %s |" % (model, measure, cell(ours), cell(theirs), ratio, target, "met" if ok else "not met"))

commit = open(os.path.join(B, "commit")).read().strip() if os.path.exists(os.path.join(B, "commit")) else "?"
gg, tg = res["go_gpt"], res["torch_gpt"]
print("commit %s; rounds: go %d, torch %d; load (1-min, before/after each run) %.2f–%.2f" % (
    commit, len(gg["GPT/tiny/train tok/s"]), len(tg["tiny_train_tok_s"]), min(loads or [0]), max(loads or [0])))
print()
print("| model / config | measure | ours | torch | ours ÷ torch | target | |")
print("|---|---|---|---|---|---|---|")
row("GPT tiny", "train tok/s", gg["GPT/tiny/train tok/s"], tg["tiny_train_tok_s"], "≥ 0.8×", 0.8)
for size in ("small", "medium"):
    row("GPT " + size, "train tok/s", gg["GPT/%s/train tok/s" % size], tg["%s_train_tok_s" % size], "≥ 1.0×")
    row("GPT " + size, "forward tok/s", gg["GPT/%s/forward tok/s" % size], tg["%s_forward_tok_s" % size], "≥ 1.0×")
for size in ("tiny", "small", "medium"):
    row("GPT " + size, "batch-1 generation with the cache, tok/s", gg["GPT/%s/generate tok/s" % size], tg["%s_generate_tok_s" % size], "≥ 2×", 2.0)
row("LSTM + attention seq2seq", "train target tok/s", res["go_seq2seq"]["Seq2Seq/train tok/s"], res["torch_seq2seq"]["train_tok_s"], "≥ 1.0×")
row("Transformer 2+2 d128", "train target tok/s", res["go_transformer"]["Transformer/train tok/s"], res["torch_transformer"]["train_tok_s"], "≥ 1.0×")
rg, rt = [x / 1024 for x in res["rss_go"]["maxrss_kb"]], [x / 1024 for x in res["rss_torch"]["maxrss_kb"]]
row("GPT medium train", "peak RSS, MiB (ratio: torch ÷ ours)", rg, rt, "≤ torch's", 1.0, lower=True)
def alloc_row(model, bench, name):
    a, act = res[bench][name + " B/op"], res[bench][name + " act-B"]
    if a and act:
        pct = 100 * med(a) / med(act)
        size = "%.1f MB" % (med(a) / 1e6) if med(a) >= 1e6 else "%.0f kB" % (med(a) / 1e3)
        print("| %s train | bytes allocated per step | %s (%.3g%% of the step's %.1f MB of activations and gradients) | — | — | ≤ 1%% | %s |" % (
            model, size, pct, med(act) / 1e6, "met" if pct <= 1 else "not met"))
for size in ("tiny", "small", "medium"):
    alloc_row("GPT " + size, "go_gpt", "GPT/%s/train" % size)
alloc_row("LSTM + attention seq2seq", "go_seq2seq", "Seq2Seq/train")
alloc_row("Transformer 2+2 d128", "go_transformer", "Transformer/train")
