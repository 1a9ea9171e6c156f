import collections, glob, os, re, statistics
res = collections.defaultdict(lambda: collections.defaultdict(list))
loads = collections.defaultdict(list)
for path in sorted(glob.glob(os.path.join(os.environ.get("BENCH_DIR", "/tmp/bench"), "*-*.log"))):
    what, kind = re.match(r".*/(\w+)-(\w+)\.log", path).groups()
    for r in open(path).read().split("=== ")[1:]:
        for tag in ("before", "after"):
            m = re.search(r"uptime_%s .*load average: ([\d.]+)" % tag, r)
            if m: loads[what].append(float(m.group(1)))
        for line in r.splitlines():
            g = re.match(r"Benchmark(\S+?)-2\s+\d+\s+(.*)", line)
            if g:
                for val, unit in re.findall(r"([\d.]+) (\S+)", g.group(2)):
                    res[(what, kind)][g.group(1) + " " + unit].append(float(val))
            g = re.match(r"(\w+_(?:tok_s|ms)) ([\d.]+)$", line)
            if g: res[(what, kind)][g.group(1)].append(float(g.group(2)))
med = lambda v: statistics.median(v)
def rng(v): return "%s–%s" % (fmt(min(v)), fmt(max(v)))
def fmt(x):
    if x >= 10000: return "%.1fk" % (x/1000)
    if x >= 1000: return "%.2fk" % (x/1000)
    if x >= 100: return "%.0f" % x
    return "%.1f" % x
gd, go, t = res[("gpt","go_default")], res[("gpt","go_openblas")], res[("gpt","torch")]
print("runs: go default %d, go openblas %d, torch %d" % (len(gd["GPT/tiny/train tok/s"]), len(go["GPT/tiny/train tok/s"]), len(t["tiny_train_tok_s"])))
print("| size | measure | Go, pure-Go BLAS | Go, OpenBLAS | torch | Go/torch (pure Go) | Go/torch (OpenBLAS) |")
print("|---|---|---|---|---|---|---|")
for size in ("tiny","small","medium"):
    for meas, gk, tk in (("train tok/s","train tok/s","train_tok_s"),("forward tok/s","forward tok/s","forward_tok_s"),("generate tok/s, KV cache","generate tok/s","generate_tok_s")):
        a, b, c = gd["GPT/%s/%s"%(size,gk)], go["GPT/%s/%s"%(size,gk)], t["%s_%s"%(size,tk)]
        print("| %s | %s | %s (%s) | %s (%s) | %s (%s) | **%.2f×** | **%.2f×** |" % (size, meas, fmt(med(a)), rng(a), fmt(med(b)), rng(b), fmt(med(c)), rng(c), med(a)/med(c), med(b)/med(c)))
    c = t["%s_generate_nocache_tok_s"%size]
    print("| %s | generate tok/s, no cache (torch only) | — | — | %s (%s) | | |" % (size, fmt(med(c)), rng(c)))
    a, b = gd["GPT/%s/build ms"%size], go["GPT/%s/build ms"%size]
    print("| %s | build + grad + compile, ms (%d nodes) | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | n/a | | |" % (size, gd["GPT/%s/build nodes"%size][0], med(a), min(a), max(a), med(b), min(b), max(b)))
print()
bd, bo, bt = res[("blocks","go_default")], res[("blocks","go_openblas")], res[("blocks","torch")]
print("runs: go default %d, go openblas %d, torch %d" % (len(bd["LSTMFwdBwd ns/op"]), len(bo["LSTMFwdBwd ns/op"]), len(bt["lstm_fwd_bwd_ms"])))
print("| benchmark (fwd+bwd) | Go, pure-Go BLAS, ms | Go, OpenBLAS, ms | torch, ms | Go/torch speed (pure Go) | Go/torch speed (OpenBLAS) |")
print("|---|---|---|---|---|---|")
for gname, tname, label in (("MultiHeadAttentionFwdBwd","mha_fwd_bwd_ms","MHA self-attention d 128, 4 heads, B 16, T 64"),("LSTMFwdBwd","lstm_fwd_bwd_ms","LSTM 128→256, B 32, T 20")):
    a = [x/1e6 for x in bd[gname+" ns/op"]]; b = [x/1e6 for x in bo[gname+" ns/op"]]; c = bt[tname]
    print("| %s | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | **%.2f×** | **%.2f×** |" % (label, med(a), min(a), max(a), med(b), min(b), max(b), med(c), min(c), max(c), med(c)/med(a), med(c)/med(b)))
print()
for w in loads: print(w, "load range %.2f–%.2f" % (min(loads[w]), max(loads[w])))
