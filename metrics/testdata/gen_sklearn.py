#!/usr/bin/python3
"""Writes sklearn.json: accuracy, F1, macro F1 and Matthews correlation from
scikit-learn, Pearson and Spearman correlations from scipy, on random,
tied, constant, tiny and empty inputs, for metrics/classify_test.go.

Run from the repository root with Debian's python3-sklearn and
python3-scipy:

    /usr/bin/python3 metrics/testdata/gen_sklearn.py

The inputs are seeded, so a rerun writes the same file. Where a library
warns (an undefined value it replaces by 0.0) or returns NaN or raises, the
case records that instead of a number: "undefined" lists the metrics that
have no value on the input, with what the library did.
"""

import json
import math
import os
import warnings

import numpy as np
import scipy
import scipy.stats
import sklearn
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

HERE = os.path.dirname(os.path.abspath(__file__))


def call(fn, *args, **kw):
    """Returns (value, what the library said): a warning's class, an
    exception's message, or None."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            v = fn(*args, **kw)
        except Exception as e:  # noqa: BLE001 -- recorded, not hidden
            return None, "raises %s: %s" % (type(e).__name__, e)
    v = float(v)
    note = w[0].category.__name__ + ": " + str(w[0].message) if w else None
    if math.isnan(v):
        return None, note or "NaN"
    return v, note


def classification(name, gold, pred):
    gold, pred = list(map(int, gold)), list(map(int, pred))
    c = {"name": name, "gold": gold, "pred": pred, "values": {}, "undefined": {}}
    labels = set(gold) | set(pred)
    binary = labels <= {0, 1}
    fns = {
        "accuracy": lambda: accuracy_score(gold, pred),
        "macro_f1": lambda: f1_score(gold, pred, average="macro"),
        "mcc": lambda: matthews_corrcoef(gold, pred),
    }
    for pos in sorted(labels | {1}):
        # Binary F1 where sklearn allows it; one-vs-rest F1 of label pos
        # (average=None, labels=[pos]) otherwise.
        if binary:
            fns["f1_pos%d" % pos] = (lambda p: lambda: f1_score(gold, pred, average="binary", pos_label=p))(pos)
        else:
            fns["f1_pos%d" % pos] = (lambda p: lambda: f1_score(gold, pred, average=None, labels=[p])[0])(pos)
    for k, fn in fns.items():
        v, note = call(fn)
        # Decide undefinedness from the data, not from the library: MCC
        # when a side is constant, F1 when the label occurs nowhere.
        undefined = False
        if k == "mcc":
            undefined = len(set(gold)) == 1 or len(set(pred)) == 1
        elif k.startswith("f1_pos"):
            p = int(k[len("f1_pos"):])
            undefined = p not in gold and p not in pred
        if undefined:
            c["undefined"][k] = "sklearn returns %r%s" % (v, " (%s)" % note if note else " without a warning")
        else:
            assert v is not None, (name, k, note)
            c["values"][k] = v
    return c


def regression(name, gold, pred):
    gold, pred = [float(x) for x in gold], [float(x) for x in pred]
    c = {"name": name, "gold": gold, "pred": pred, "values": {}, "undefined": {}}
    for k, fn in (("pearson", scipy.stats.pearsonr), ("spearman", scipy.stats.spearmanr)):
        v, note = call(lambda: fn(gold, pred)[0])
        if v is None:
            c["undefined"][k] = "scipy: " + note
        else:
            c["values"][k] = v
    return c


def main():
    rng = np.random.default_rng(2019)
    cls = []
    for n in (2, 5, 10, 50, 200, 500):
        for seed in range(3):
            gold = rng.integers(0, 2, n)
            # A model right about 70% of the time.
            pred = np.where(rng.random(n) < 0.7, gold, 1 - gold)
            cls.append(classification("binary n=%d #%d" % (n, seed), gold, pred))
    for n in (6, 30, 300):
        gold = rng.integers(0, 3, n)
        pred = np.where(rng.random(n) < 0.6, gold, rng.integers(0, 3, n))
        cls.append(classification("3-class n=%d" % n, gold, pred))
    cls.append(classification("5-class n=100", rng.integers(0, 5, 100), rng.integers(0, 5, 100)))
    cls.append(classification("all right", [0, 1, 1, 0, 1], [0, 1, 1, 0, 1]))
    cls.append(classification("all wrong", [0, 1, 1, 0, 1], [1, 0, 0, 1, 0]))
    cls.append(classification("constant predictions", [0, 1, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1]))
    cls.append(classification("constant negative predictions", [0, 1, 1, 0], [0, 0, 0, 0]))
    cls.append(classification("constant gold", [1, 1, 1, 1], [1, 0, 1, 1]))
    cls.append(classification("both constant, equal", [1, 1, 1], [1, 1, 1]))
    cls.append(classification("both constant, different", [0, 0, 0], [1, 1, 1]))
    cls.append(classification("no positives anywhere", [0, 0, 0, 0], [0, 0, 0, 0]))
    cls.append(classification("one example", [1], [1]))
    cls.append(classification("3-class constant predictions", [0, 1, 2, 1], [2, 2, 2, 2]))
    cls.append(classification("labels 2 and 7", [2, 7, 7, 2, 7], [2, 7, 2, 2, 7]))

    reg = []
    for n in (3, 10, 100, 300):
        gold = rng.uniform(0, 5, n)
        pred = gold + rng.normal(0, 1, n)
        reg.append(regression("uniform n=%d" % n, gold, pred))
    for n in (8, 40, 400):
        # STS-B-like scores on a 0.2 grid (many ties) and predictions rounded to 0.5.
        gold = np.round(rng.uniform(0, 5, n) * 5) / 5
        pred = np.round((gold + rng.normal(0, 1, n)) * 2) / 2
        reg.append(regression("ties n=%d" % n, gold, pred))
    reg.append(regression("all tied but one", [1, 1, 1, 1, 2], [3, 1, 2, 2, 2]))
    reg.append(regression("two pairs", [1.0, 2.0], [5.0, 3.0]))
    reg.append(regression("negative", [1, 2, 3, 4, 5], [10, 8, 6, 4, 0]))
    reg.append(regression("monotone, not linear", [1, 2, 3, 4, 5], [1, 4, 9, 16, 25]))
    reg.append(regression("large offset", [1e8 + 0.1, 1e8 + 0.3, 1e8 + 0.2, 1e8 + 0.5], [2.0, 3.5, 2.5, 5.0]))
    reg.append(regression("tiny values", [1e-9, 3e-9, 2e-9, 5e-9], [1e-3, 2e-3, 2e-3, 4e-3]))
    reg.append(regression("constant predictions", [0.5, 2.5, 4.0, 1.0], [3.0, 3.0, 3.0, 3.0]))
    reg.append(regression("constant gold", [2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))
    reg.append(regression("one pair", [1.0], [2.0]))

    data = {
        "generator": "metrics/testdata/gen_sklearn.py",
        "sklearn": sklearn.__version__, "scipy": scipy.__version__, "numpy": np.__version__,
        "empty": {
            "accuracy": call(lambda: accuracy_score([], []))[1] or repr(call(lambda: accuracy_score([], []))[0]),
            "f1": call(lambda: f1_score([], []))[1],
            "mcc": call(lambda: matthews_corrcoef([], []))[1] or repr(call(lambda: matthews_corrcoef([], []))[0]),
            "pearson": call(lambda: scipy.stats.pearsonr([], [])[0])[1],
            "spearman": call(lambda: scipy.stats.spearmanr([], [])[0])[1],
        },
        "classification": cls,
        "regression": reg,
    }
    with open(os.path.join(HERE, "sklearn.json"), "w") as f:
        json.dump(data, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
