#!/usr/bin/env bash
# Measures every row of issue 14's targets table, ours beside torch in one
# run, alternating Go and torch (A B A B) for ROUNDS rounds, then the peak
# RSS of GPT-medium training on each side (one process each, /usr/bin/time).
# Logs go to $BENCH_DIR (default /tmp/targets); targets.py prints the table.
#
# usage: bash bench/compare/targets.sh [ROUNDS]      (default 2)
# Run it on an otherwise idle machine; it records the load before and after
# every run and the three busiest other processes.
set -u
rounds=${1:-2}
B=${BENCH_DIR:-/tmp/targets}; R=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$B"
export LD_LIBRARY_PATH_TORCH=/usr/lib/x86_64-linux-gnu/openblas-openmp
torch() { env LD_LIBRARY_PATH=$LD_LIBRARY_PATH_TORCH /usr/bin/python3 "$@"; }
(cd "$R" && git rev-parse --short HEAD) > "$B/commit"
for p in gpt seq2seq transformer; do
  (cd "$R" && go test -c -o "$B/$p.test" ./$p) || exit 1
done
run() {  # name cmd...
  local name=$1; shift
  local f=$B/$name.log
  { echo "=== $(date +%T) $name"; echo "uptime_before $(uptime)"
    echo "others: $(ps -eo pcpu,args --sort=-pcpu --no-headers | head -3 | tr '\n' '|')"; } >> "$f"
  ( "$@" ) >> "$f" 2>&1
  echo "uptime_after $(uptime)" >> "$f"
  sleep 2
}
for r in $(seq 1 "$rounds"); do
  run go_gpt "$B/gpt.test" -test.run '^$' -test.bench 'GPT/.*/(train|forward|generate)$' -test.benchtime 2s
  run torch_gpt torch "$R/bench/torch_gpt.py" --only train,forward,generate --rounds 3
  run go_seq2seq "$B/seq2seq.test" -test.run '^$' -test.bench 'Seq2Seq/train$' -test.benchtime 3s
  run torch_seq2seq torch "$R/bench/torch_seq2seq.py" --rounds 3
  run go_transformer "$B/transformer.test" -test.run '^$' -test.bench 'Transformer/train$' -test.benchtime 3s
  run torch_transformer torch "$R/bench/torch_transformer.py" --only train --rounds 3
done
# Peak resident memory of GPT-medium training, each side alone: the Go
# benchmark binary running only that case, torch's script only its train case.
run rss_go /usr/bin/time -f 'maxrss_kb %M' "$B/gpt.test" -test.run '^$' -test.bench 'GPT/medium/train$' -test.benchtime 10x
run rss_torch /usr/bin/time -f 'maxrss_kb %M' env LD_LIBRARY_PATH=$LD_LIBRARY_PATH_TORCH /usr/bin/python3 "$R/bench/torch_gpt.py" --size medium --only train --rounds 2
echo done >> "$B/done"
