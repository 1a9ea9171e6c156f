#!/usr/bin/env bash
# Pre-trains the GPT and the BERT of README's comparison table, one after
# the other, on the embedded State of the Union text with one tokenizer,
# the same shape (tiny preset: 2 layers, d 64, 2 heads, 32 positions) and
# the same number of input tokens (STEPS × BATCH × 32), logging the load
# average before and after each run (the wall-clock depends on it).
#
# usage: bash bench/gptbert/pretrain.sh [OUT]       (default /tmp/gptbert)
# env:   STEPS (5000), BATCH (16), SEED (1), MERGES (1000)
set -eu
OUT=${1:-/tmp/gptbert}
STEPS=${STEPS:-5000}; BATCH=${BATCH:-16}; SEED=${SEED:-1}; MERGES=${MERGES:-1000}
R=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$OUT"
go build -o "$OUT/seq2gpt" "$R/cmd/seq2gpt"
log() { echo "$(date +%T) $*" | tee -a "$OUT/pretrain.log"; }
log "load before GPT: $(cat /proc/loadavg)"
"$OUT/seq2gpt" lm train --preset tiny --merges "$MERGES" --steps "$STEPS" --batch "$BATCH" --seed "$SEED" \
  --eval-every 500 --checkpoint-every 1000 --samples 0 --out "$OUT/gpt" > "$OUT/gpt.log" 2>&1
log "load after GPT: $(cat /proc/loadavg)"
grep -E "^(data|model|stopped|best)" "$OUT/gpt.log" | tee -a "$OUT/pretrain.log"
# BERT reads GPT's tokenizer (and adds [PAD] [CLS] [SEP] [MASK] to it).
log "load before BERT: $(cat /proc/loadavg)"
"$OUT/seq2gpt" mlm train --preset tiny --tokenizer "$OUT/gpt/best" --steps "$STEPS" --batch "$BATCH" --seed "$SEED" \
  --eval-every 500 --checkpoint-every 1000 --fill "" --out "$OUT/bert" > "$OUT/bert.log" 2>&1
log "load after BERT: $(cat /proc/loadavg)"
grep -E "^(data|model|stopped|best)" "$OUT/bert.log" | tee -a "$OUT/pretrain.log"
