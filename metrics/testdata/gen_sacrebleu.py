#!/usr/bin/python3
"""Writes sacrebleu.json and pystr.json: sacreBLEU 2.6.0's own scores, score
lines, signatures, tokenizations and command-line output on a real corpus,
for the Go tests of metrics/ and cmd/seq2gpt to compare against.

It needs a checkout of sacreBLEU v2.6.0 (not committed here; Apache-2.0,
https://github.com/mjpost/sacrebleu) and Debian's python3-regex,
python3-tabulate, python3-numpy, python3-colorama, python3-lxml and
python3-portalocker:

    git clone https://github.com/mjpost/sacrebleu /tmp/sacrebleu
    git -C /tmp/sacrebleu checkout v2.6.0
    echo '__version__ = "2.6.0"' > /tmp/sacrebleu/sacrebleu/version.py   # setuptools_scm writes this on install
    SACREBLEU_CHECKOUT=/tmp/sacrebleu /usr/bin/python3 metrics/testdata/gen_sacrebleu.py

(run from the repository root). The corpus is the first 300 pairs of the
embedded LibreOffice en-de test split: the German side is the first
reference, a lightly perturbed copy the second, and a more heavily
perturbed copy (words dropped, swapped, replaced, recased, entities and
numbers inserted; a few lines empty or identical) the hypotheses. The
perturbations are seeded, so a rerun writes the same file.
"""

import gzip
import json
import os
import random
import subprocess
import sys
import tempfile

CHECKOUT = os.environ.get("SACREBLEU_CHECKOUT")
if not CHECKOUT:
    sys.exit("set SACREBLEU_CHECKOUT to a sacreBLEU v2.6.0 checkout (see the docstring)")
sys.path.insert(0, CHECKOUT)

import logging  # noqa: E402

import sacrebleu  # noqa: E402
from sacrebleu.metrics import BLEU, CHRF  # noqa: E402
from sacrebleu.metrics.bleu import _get_tokenizer  # noqa: E402

# Silence "It is recommended to enable `effective_order`..." (the
# no-effective-order sentence scores below are wanted).
logging.getLogger("sacrebleu").setLevel(logging.ERROR)

VERSION = "2.6.0"
assert sacrebleu.__version__ == VERSION, sacrebleu.__version__

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
N = 300
TOKENIZERS = ["none", "zh", "13a", "intl", "char"]


def load_refs():
    path = os.path.join(ROOT, "datasets", "data", "libreoffice-en-de", "test.tsv.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [l.rstrip("\n").split("\t") for l in f]
    return [de for _, de in lines[:N]]


def perturb(sent, rng, strength, vocab):
    """Edits a German sentence the way a weak system errs."""
    words = sent.split()
    for _ in range(rng.randint(0, strength)):
        if not words:
            break
        op = rng.choice(["drop", "swap", "replace", "dup", "case", "punct", "entity", "number"])
        i = rng.randrange(len(words))
        if op == "drop" and len(words) > 1:
            del words[i]
        elif op == "swap" and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op == "replace":
            words[i] = rng.choice(vocab)
        elif op == "dup":
            words.insert(i, words[i])
        elif op == "case":
            words[i] = words[i].upper() if rng.random() < 0.5 else words[i].lower()
        elif op == "punct":
            words[i] = words[i] + rng.choice([",", ".", ":", ";", "!", "?", ")", "\"", " ."])
        elif op == "entity":
            words.insert(i, rng.choice(["&amp;", "&quot;x&quot;", "&lt;b&gt;", "<skipped>", "A&B"]))
        elif op == "number":
            words.insert(i, rng.choice(["1,5", "3.14", "2020.", "10-20", "1.000,00", "42", "(7)", "€5", "50%"]))
    return " ".join(words)


def corpus():
    refs = load_refs()
    vocab = sorted({w for s in refs for w in s.split()})
    rng = random.Random(2014)
    hyps = [perturb(s, rng, 12, vocab) for s in refs]
    ref2 = [perturb(s, rng, 2, vocab) for s in refs]
    # A few edge cases inside the real corpus: empty hypotheses, an empty
    # second reference, identical lines, trailing whitespace.
    hyps[7] = ""
    hyps[50] = ""
    ref2[60] = ""
    hyps[100] = refs[100]
    hyps[101] = refs[101] + "   "
    return hyps, [refs, ref2]


def bleu_result(s):
    return {
        "score": s.score, "counts": list(s.counts), "totals": list(s.totals),
        "precisions": list(s.precisions), "bp": s.bp, "sys_len": s.sys_len, "ref_len": s.ref_len,
    }


def bleu_cases(hyps, refs):
    out = []
    configs = []
    for tok in TOKENIZERS:
        for sm, sv in (("exp", None), ("floor", None), ("floor", 0.5), ("add-k", None), ("add-k", 2.0), ("none", None)):
            configs.append(dict(tokenize=tok, lowercase=False, smooth_method=sm, smooth_value=sv))
        configs.append(dict(tokenize=tok, lowercase=True, smooth_method="exp", smooth_value=None))
    for order in (1, 2, 3, 5, 6):
        configs.append(dict(tokenize="13a", lowercase=False, smooth_method="exp", smooth_value=None, max_ngram_order=order))
    for tok in ("13a", "intl"):
        configs.append(dict(tokenize=tok, lowercase=False, smooth_method="exp", smooth_value=None, effective_order=True))
    for cfg in configs:
        tok = cfg["tokenize"]
        for nrefs in (1, 2):
            m = BLEU(**cfg)
            s = m.corpus_score(hyps, refs[:nrefs])
            sig = m.get_signature()
            r = dict(cfg)
            r["nrefs"] = nrefs
            r.update(bleu_result(s))
            r["signature"] = sig.format()
            r["short"] = sig.format(short=True)
            r["line"] = s.format(width=1, signature=sig.format())
            if tok == "13a":
                r["str"] = str(s)
                r["json"] = s.format(width=1, signature=sig.format(), is_json=True)
            out.append(r)
    return out


def sentence_bleu_cases(hyps, refs):
    out = []
    for cfg, nrefs in ((dict(tokenize="13a", smooth_method="exp", effective_order=True), 1),
                       (dict(tokenize="13a", smooth_method="exp", effective_order=True), 2),
                       (dict(tokenize="13a", smooth_method="exp", effective_order=False), 1),
                       (dict(tokenize="intl", smooth_method="floor", effective_order=True, lowercase=True), 2),
                       (dict(tokenize="char", smooth_method="add-k", effective_order=True), 1)):
        m = BLEU(**cfg)
        r = dict(cfg)
        r["nrefs"] = nrefs
        r["scores"] = [m.sentence_score(h, [x[i] for x in refs[:nrefs]]).score for i, h in enumerate(hyps)]
        out.append(r)
    return out


def chrf_cases(hyps, refs):
    out = []
    for wo in (0, 2):
        for lc in (False, True):
            for ws in (False, True):
                for eps in (False, True):
                    for nrefs in (1, 2):
                        out.append((dict(word_order=wo, lowercase=lc, whitespace=ws, eps_smoothing=eps), nrefs))
    for beta in (1, 3):
        out.append((dict(beta=beta), 1))
    out.append((dict(char_order=4, word_order=1), 2))
    res = []
    for cfg, nrefs in out:
        m = CHRF(**cfg)
        s = m.corpus_score(hyps, refs[:nrefs])
        sig = m.get_signature()
        r = dict(cfg)
        r.update(nrefs=nrefs, score=s.score, name=s.name, signature=sig.format(), short=sig.format(short=True),
                 str=str(s), line=s.format(width=1, signature=sig.format()),
                 json=s.format(width=1, signature=sig.format(), is_json=True))
        res.append(r)
    return res


def sentence_chrf_cases(hyps, refs):
    out = []
    for cfg, nrefs in ((dict(), 1), (dict(), 2), (dict(word_order=2), 1), (dict(eps_smoothing=True), 1)):
        m = CHRF(**cfg)
        r = dict(cfg)
        r["nrefs"] = nrefs
        r["scores"] = [m.sentence_score(h, [x[i] for x in refs[:nrefs]]).score for i, h in enumerate(hyps)]
        out.append(r)
    return out


# Lines built to exercise every rule of every tokenizer and Python's
# string semantics (constructed, not corpus text).
STRESS = [
    "", " ", "a", "Hello, world!", "It's 3.14, isn't it?", "1,000.50 and 1.000,50", "5. 5.a a.5 .5 5,",
    "end with number 2020.", "range 10-20 and -5 and a-b", "e-mail: foo@bar.com (http://x.org/a?b=c&d=e)",
    "&quot;quoted&quot; &amp;amp; &lt;tag&gt; &amp;lt; &apos;", "<skipped> text <skipped>", "line-\nbreak and\nnewline",
    "tabs\tand\x0bvertical\x0cfeed", "info\x1cseps\x1d\x1e\x1fhere", "nbsp\u00a0and\u2009thin\u3000ideo",
    "„Anführungszeichen“ und ‚einfache‘ — Gedankenstrich – Halbgeviert …", "Preis: 5 € / $ 3 / £ 2 ™ © ®",
    "emoji 😀 👍🏽 and ✓ ✗ ★", "math: x² + y³ ≤ ½ · π ∞", "İstanbul ΣΊΣΥΦΟΣ ΟΔΥΣΣΕΥΣ Σ ΑΣ. ΑΣ' ΑΣ:Α",
    "ẞ STRASSE Straße ǅ ǈ ǋ", "Ǆ Ǉ ǲ ᾈ ᾼ", "中文分词测试，句号。问号？", "日本語のテキスト、カタカナ・ひらがな",
    "한국어 텍스트입니다.", "mixed中文English混合123", "CJK ext B: 𠀀𠀁 and compat 丽", "full width ＡＢＣ１２３！",
    "combining e\u0301 and a\u0308", "zero\u200bwidth\u200dspace\ufeffbom", "arabic: مرحبا، كيف حالك؟",
    "hebrew: שָׁלוֹם ״quote״", "devanagari: नमस्ते। १२३", "thai: สวัสดีครับ ๑๒๓", "numbers: ¼ ⅔ Ⅻ ① ٣",
    "punct runs ... !!! ??? ,,, ;;", "(parens) [brackets] {braces} <angles>", "a.b.c,d,e;f:g!h?i",
    "trailing spaces   ", "   leading spaces", "The dog bit the man.", "It wasn't surprising.",
    "don't \"quote\" me `tick` ~tilde^ _under_ |pipe| \\back\\", "1-2-3 a1-b2 -1- --",
    "U.S.A. e.g. i.e. etc.", "$5.00, €3,50, 1.5kg, 20°C, 50 %", "Ω ω Å å ÿ Ÿ",
    "\u2001\u2002 general punct \u2016 \u2020 \u2030 \u203b", "arrows → ← ↔ ⇒ and boxes ┌─┐",
    "ellipsis… and bullet • and middle·dot", "ideographic space\u3000and 　 comma、",
]


def tokenize_cases():
    out = []
    toks = {name: _get_tokenizer(name)() for name in TOKENIZERS}
    for line in STRESS:
        r = {"line": line, "lower": line.lower()}
        for name, t in toks.items():
            r[name] = t(line)
        # BLEU's preprocessing: lowercase, rstrip, tokenize.
        r["13a_lower_rstrip"] = toks["13a"](line.lower().rstrip())
        out.append(r)
    return out


def stress_scores():
    """Sentence BLEU and chrF of each stress line against its neighbour."""
    out = []
    for i, h in enumerate(STRESS):
        ref = STRESS[(i + 1) % len(STRESS)]
        r = {"hyp": h, "ref": ref, "bleu": {}, "chrf": sacrebleu.CHRF().sentence_score(h, [ref]).score,
             "chrfpp": sacrebleu.CHRF(word_order=2).sentence_score(h, [ref]).score,
             "self_bleu": {}, "self_chrf": sacrebleu.CHRF().sentence_score(h, [h]).score}
        for tok in TOKENIZERS:
            m = BLEU(tokenize=tok, effective_order=True)
            r["bleu"][tok] = m.sentence_score(h, [ref]).score
            r["self_bleu"][tok] = m.sentence_score(h, [h]).score
        out.append(r)
    return out


def stress_corpus():
    """Corpus scores of the stress lines against their neighbours: short and
    empty references, whose missing n-gram orders drop the hypothesis's
    counts of those orders from chrF's sums."""
    hyps = STRESS
    refs = [STRESS[(i + 1) % len(STRESS)] for i in range(len(STRESS))]
    out = {"chrf": {}, "bleu": {}}
    for name, cfg in (("chrF2", dict()), ("chrF2++", dict(word_order=2)), ("eps", dict(eps_smoothing=True)),
                      ("ws", dict(whitespace=True))):
        out["chrf"][name] = CHRF(**cfg).corpus_score(hyps, [refs]).score
    for tok in TOKENIZERS:
        out["bleu"][tok] = BLEU(tokenize=tok).corpus_score(hyps, [refs]).score
    return out


# The command-line runs: sacreBLEU's arguments and ours for the same
# request, over the first nlines lines with nrefs reference files.
CLI = [
    dict(nlines=N, nrefs=1, sacrebleu=[], seq2gpt=["--format", "json"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-f", "text"], seq2gpt=[]),
    dict(nlines=N, nrefs=2, sacrebleu=["-f", "text"], seq2gpt=[]),
    dict(nlines=N, nrefs=1, sacrebleu=["-f", "text", "-m", "bleu", "chrf"], seq2gpt=["--metrics", "bleu,chrf"]),
    dict(nlines=N, nrefs=2, sacrebleu=["-f", "text", "-m", "chrf", "bleu"], seq2gpt=["-m", "chrf", "-m", "bleu"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-m", "bleu", "chrf"], seq2gpt=["--metrics", "bleu,chrf", "--format", "json"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-f", "text", "-b"], seq2gpt=["--score-only"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-b", "-m", "bleu", "chrf"], seq2gpt=["-b", "--metrics", "bleu,chrf", "-f", "json"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-f", "text", "-w", "3", "--short"], seq2gpt=["--width", "3", "--short"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-f", "text", "-w", "0"], seq2gpt=["-w", "0"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-f", "text", "-tok", "intl", "-lc", "-s", "floor", "-sv", "0.5"],
         seq2gpt=["--tokenize", "intl", "--lowercase", "--smooth-method", "floor", "--smooth-value", "0.5"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-f", "text", "-tok", "char", "-s", "add-k"], seq2gpt=["--tokenize", "char", "-s", "add-k"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-f", "text", "-tok", "zh", "-s", "none"], seq2gpt=["--tokenize", "zh", "--smooth-method", "none"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-f", "text", "-tok", "none", "--force"], seq2gpt=["--tokenize", "none", "--force"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-f", "text", "-m", "chrf", "--chrf-word-order", "2"], seq2gpt=["-m", "chrf", "--chrf-word-order", "2"]),
    dict(nlines=N, nrefs=2, sacrebleu=["-f", "text", "-m", "chrf", "--chrf-lowercase", "--chrf-whitespace", "--chrf-eps-smoothing", "--chrf-beta", "3", "--chrf-char-order", "4"],
         seq2gpt=["-m", "chrf", "--chrf-lowercase", "--chrf-whitespace", "--chrf-eps-smoothing", "--chrf-beta", "3", "--chrf-char-order", "4"]),
    dict(nlines=N, nrefs=1, sacrebleu=["-m", "chrf", "--chrf-word-order", "2", "--short"], seq2gpt=["-m", "chrf", "--chrf-word-order", "2", "--short", "-f", "json"]),
    dict(nlines=12, nrefs=1, sacrebleu=["-sl"], seq2gpt=["--sentence-level"]),
    dict(nlines=12, nrefs=2, sacrebleu=["-sl", "-w", "2", "-tok", "intl"], seq2gpt=["--sentence-level", "-w", "2", "--tokenize", "intl"]),
    dict(nlines=12, nrefs=1, sacrebleu=["-sl", "-m", "chrf", "-b"], seq2gpt=["--sentence-level", "-m", "chrf", "-b"]),
    dict(nlines=50, nrefs=2, tabbed=True, sacrebleu=["-f", "text", "--num-refs", "2", "-m", "bleu", "chrf"],
         seq2gpt=["--num-refs", "2", "--metrics", "bleu,chrf"]),
    dict(nlines=N, nrefs=1, input=True, sacrebleu=["-f", "text"], seq2gpt=[]),
]


def cli_cases(hyps, refs):
    out = []
    env = dict(os.environ, PYTHONPATH=CHECKOUT, NO_COLOR="1")
    env.pop("SACREBLEU_FORMAT", None)
    with tempfile.TemporaryDirectory() as d:
        for case in CLI:
            n, k = case["nlines"], case["nrefs"]
            hyp_file = os.path.join(d, "hyp.txt")
            with open(hyp_file, "w", encoding="utf-8") as f:
                f.write("".join(h + "\n" for h in hyps[:n]))
            ref_files = []
            if case.get("tabbed"):
                p = os.path.join(d, "refs.tsv")
                with open(p, "w", encoding="utf-8") as f:
                    f.write("".join("\t".join(r[i] for r in refs[:k]) + "\n" for i in range(n)))
                ref_files.append(p)
            else:
                for j in range(k):
                    p = os.path.join(d, f"ref{j + 1}.txt")
                    with open(p, "w", encoding="utf-8") as f:
                        f.write("".join(r + "\n" for r in refs[j][:n]))
                    ref_files.append(p)
            cmd = [sys.executable, "-m", "sacrebleu", *ref_files, *case["sacrebleu"]]
            if case.get("input"):
                cmd += ["-i", hyp_file]
                stdin = subprocess.DEVNULL
            else:
                stdin = open(hyp_file, "rb")
            res = subprocess.run(cmd, stdin=stdin, capture_output=True, env=env, check=True)
            c = dict(case)
            c["stdout"] = res.stdout.decode("utf-8")
            out.append(c)
    return out


def pystr_tables():
    """Python's whitespace, lowercase and Final_Sigma context per code point."""
    def ranges(pred):
        out, start = [], None
        for cp in range(0x110001):
            ok = cp < 0x110000 and not (0xD800 <= cp <= 0xDFFF) and pred(chr(cp))
            if ok and start is None:
                start = cp
            if not ok and start is not None:
                out.append([start, cp - 1])
                start = None
        return out

    def final_after_space(c):  # Σ after c after a space: c cased and not case-ignorable
        return (" " + c + "Σ").lower()[-1] == "ς"

    def final_after_a(c):  # Σ after c after A: c case-ignorable or cased
        return ("A" + c + "Σ").lower()[-1] == "ς"

    lower = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if c.lower() != c:
            lower.append([cp, [ord(x) for x in c.lower()]])
    import unicodedata
    return {
        "python": sys.version.split()[0],
        "unicode": unicodedata.unidata_version,
        # Code points this Python's Unicode has not assigned: Go's tables
        # may be newer, so the test skips them.
        "unassigned": ranges(lambda c: unicodedata.category(c) == "Cn"),
        "space": ranges(str.isspace),
        "cased_not_ignorable": ranges(final_after_space),
        "ignorable": ranges(lambda c: final_after_a(c) and not final_after_space(c)),
        "lower": lower,
    }


def main():
    hyps, refs = corpus()
    data = {
        "sacrebleu_version": VERSION,
        "generator": "metrics/testdata/gen_sacrebleu.py",
        "corpus": {"source": "first %d pairs of datasets LibreOfficeEnDe(\"test\"), German side" % N,
                   "hyps": hyps, "refs": refs},
        "bleu": bleu_cases(hyps, refs),
        "sentence_bleu": sentence_bleu_cases(hyps, refs),
        "chrf": chrf_cases(hyps, refs),
        "sentence_chrf": sentence_chrf_cases(hyps, refs),
        "tokenize": tokenize_cases(),
        "stress": stress_scores(),
        "stress_corpus": stress_corpus(),
        "cli": cli_cases(hyps, refs),
    }
    with open(os.path.join(HERE, "sacrebleu.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=0)
        f.write("\n")
    with open(os.path.join(HERE, "pystr.json"), "w", encoding="utf-8") as f:
        json.dump(pystr_tables(), f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
