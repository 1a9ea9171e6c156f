#!/usr/bin/env bash
# Pre-trains the GPT and the BERT of README's comparison table on the
# embedded State of the Union text with one tokenizer (a byte-level BPE of
# MERGES merges trained on the training split; BERT adds its four special
# tokens), the same shape (tiny preset: 2 layers, d 64, 2 heads, d_ff 256,
# 32 positions, dropout 0.1) and the same number of input tokens
# (STEPS × BATCH × 32). The two run side by side; each one's wall-clock and
# CPU seconds (user + system, from /usr/bin/time) and the load average are
# logged: on a shared machine the CPU seconds are the steadier figure.
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
# The tokenizer, once: a one-step run writes it beside its checkpoint.
"$OUT/seq2gpt" lm train --preset tiny --merges "$MERGES" --steps 2 --warmup 1 --eval-every 2 --eval-batches 1 --samples 0 --out "$OUT/tok" > "$OUT/tok.log" 2>&1
TOK="$OUT/tok/last"
# The exact (erf) GELU in both: BERT's "gelu"; GPT's "gelu" is HF's tanh form.
echo '{"afn": "gelu_erf"}' > "$OUT/gpt-erf.json"
log "load before: $(cat /proc/loadavg)"
T="/usr/bin/time -f %e_s_wall_%U_s_user_%S_s_sys"
$T -o "$OUT/gpt.time" "$OUT/seq2gpt" lm train --preset tiny --config "$OUT/gpt-erf.json" --tokenizer "$TOK" --steps "$STEPS" --batch "$BATCH" --seed "$SEED" \
  --eval-every 500 --checkpoint-every 1000 --samples 0 --out "$OUT/gpt" > "$OUT/gpt.log" 2>&1 &
GPT=$!
$T -o "$OUT/bert.time" "$OUT/seq2gpt" mlm train --preset tiny --tokenizer "$TOK" --steps "$STEPS" --batch "$BATCH" --seed "$SEED" \
  --eval-every 500 --checkpoint-every 1000 --fill "" --out "$OUT/bert" > "$OUT/bert.log" 2>&1 &
BERT=$!
while kill -0 $GPT 2>/dev/null || kill -0 $BERT 2>/dev/null; do
  echo "$(date +%T) $(cat /proc/loadavg)" >> "$OUT/load.log"; sleep 60
done
wait
log "load after: $(cat /proc/loadavg)"
for m in gpt bert; do
  grep -E "^(data|model|stopped|best)" "$OUT/$m.log" | sed "s/^/$m: /" | tee -a "$OUT/pretrain.log"
  log "$m time: $(cat "$OUT/$m.time")"
done
