#!/usr/bin/python3
"""Prints the fine-tuning half of README's GPT/BERT comparison from
finetune.sh's JSON lines (the latest line of each task, model and start)."""
import json
import sys

rows = {}
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        rows[(r["task"], r["model"], r["from"] == "scratch", r["seed"])] = r
metric = {"sentiment": "accuracy", "paraphrase": "f1", "cloze": "accuracy"}
print("| task (test split) | metric | start | seed | GPT | BERT | budget |")
print("|---|---|---|---|---|---|---|")
for task in ("sentiment", "paraphrase", "cloze"):
    for scratch in (False, True):
        for seed in sorted({k[3] for k in rows}):
            got = {m: rows[(task, m, scratch, seed)] for m in ("GPT", "BERT") if (task, m, scratch, seed) in rows}
            if not got:
                continue
            r = next(iter(got.values()))
            m = metric[task]
            cell = lambda k: ("%.3f" % got[k]["test"][m]) if k in got and m in got[k]["test"] else "—"
            print("| %s (%d) | %s | %s | %d | %s | %s | %d examples, %d steps × %d, lr %g, GPT λ %s |" % (
                task, r["test_examples"], m, "fresh" if scratch else "pre-trained", seed, cell("GPT"), cell("BERT"),
                r["train_examples"], r["steps"], r["batch"], r["lr"],
                got["GPT"]["lm_coef"] if "GPT" in got else "—"))
print()
for r in rows.values():
    print("%s %s (%s, seed %d): %.2fM parameters, test %s, %.0f s wall, %.0f s CPU; %s" % (
        r["task"], r["model"], r["from"], r["seed"], r["params_m"],
        ", ".join("%s %.4f" % kv for kv in sorted(r["test"].items())), r["wall_s"], r["cpu_s"], r["truncation"]))
