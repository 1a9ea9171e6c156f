#!/usr/bin/env bash
# Fine-tunes the GPT and the BERT that pretrain.sh wrote on the embedded
# sentiment, paraphrase and cloze sets with one budget — the same seeded
# sample of TRAIN training examples, EPOCHS epochs of batches of BATCH (so
# the same steps), the same learning-rate schedule, head dropout and seed —
# through "seq2gpt finetune train", which keeps the checkpoint with the best
# score on a seeded sample of VALID validation examples, and scores that
# checkpoint on each set's whole test split with "seq2gpt finetune eval".
# GPT's objective is L₂ + λ·L₁ (λ = LMCOEF); BERT has no auxiliary loss.
# Each run's wall-clock and CPU seconds (user + system, /usr/bin/time) are
# logged; on a shared machine the CPU seconds are the steadier figure. The
# six runs go one task at a time, GPT and BERT side by side.
#
# usage: bash bench/gptbert/finetune.sh [OUT]       (default /tmp/gptbert)
# env:   TRAIN (2400), VALID (500), EPOCHS (4), BATCH (32), LR (1e-3),
#        WARMUP (0.1), LMCOEF (0.5), SEED (1), TASKS ("sentiment paraphrase cloze"),
#        SCRATCH (set: fresh weights of the same configurations and
#        tokenizers, the baseline pre-training is measured against)
# The table: python3 bench/gptbert/table.py OUT/finetune.jsonl
set -eu
OUT=${1:-/tmp/gptbert}
TRAIN=${TRAIN:-2400}; VALID=${VALID:-500}; EPOCHS=${EPOCHS:-4}; BATCH=${BATCH:-32}
LR=${LR:-1e-3}; WARMUP=${WARMUP:-0.1}; LMCOEF=${LMCOEF:-0.5}; SEED=${SEED:-1}
TASKS=${TASKS:-sentiment paraphrase cloze}
R=$(cd "$(dirname "$0")/../.." && pwd)
TAG=seed$SEED${SCRATCH:+-scratch}
S="$OUT/seq2gpt"
go build -o "$S" "$R/cmd/seq2gpt"
log() { echo "$(date +%T) $*" | tee -a "$OUT/finetune.log"; }
T="/usr/bin/time -f %e_%U_%S"
# one TASK MODEL [FLAGS...]: fine-tune, score the best on the test split,
# append a JSON line to OUT/finetune.jsonl.
one() {
  local task=$1 model=$2; shift 2
  local run="$OUT/ft-$TAG-$task-$model"
  $T -o "$run.time" "$S" finetune train --task "$task" --from "$OUT/$model/best" --train-examples "$TRAIN" \
    --valid-examples "$VALID" --epochs "$EPOCHS" --batch "$BATCH" --lr "$LR" --warmup "$WARMUP" --seed "$SEED" \
    ${SCRATCH:+--scratch} --overwrite --out "$run" "$@" > "$run.log" 2>&1
  "$S" finetune eval --model "$run" --split test > "$run.test" 2>&1
  /usr/bin/python3 - "$task" "$model" "$run" "$TRAIN" "$EPOCHS" "$BATCH" "$LR" "$SEED" "${SCRATCH:+scratch}" "${LMCOEF}" >> "$OUT/finetune.jsonl" <<'PY'
import json, re, sys
task, model, run, train, epochs, batch, lr, seed, scratch, lmcoef = sys.argv[1:]
log, test = open(run + ".log").read(), open(run + ".test").read()
wall, user, sys_ = (float(x) for x in open(run + ".time").read().split()[-1].split("_"))
lines = test.strip().splitlines()
metrics = dict(re.findall(r"(\w+) (-?\d+\.\d+|undefined)", lines[-1]))
steps = re.search(r"stopped \(\w+\) at step (\d+)", log).group(1)
params = re.search(r"([\d.]+)M parameters", log).group(1)
print(json.dumps({"task": task, "model": model.upper(), "from": "scratch" if scratch else model + "/best",
                  "test": {k: float(v) for k, v in metrics.items() if v != "undefined"},
                  "test_examples": int(re.search(r"(\d+) examples", lines[0]).group(1)),
                  "train_examples": int(train), "epochs": int(epochs), "steps": int(steps), "batch": int(batch),
                  "lr": float(lr), "lm_coef": float(lmcoef) if model == "gpt" else None, "seed": int(seed),
                  "params_m": float(params), "wall_s": wall, "cpu_s": user + sys_,
                  "truncation": re.search(r"training data: (.*)", log).group(1)}))
PY
}
log "load before: $(cat /proc/loadavg)"
for task in $TASKS; do
  one "$task" gpt --lm-coef "$LMCOEF" &
  one "$task" bert &
  wait
  log "$task done: $(cat /proc/loadavg)"
done
/usr/bin/python3 "$R/bench/gptbert/table.py" "$OUT/finetune.jsonl"
