#!/usr/bin/env bash
# usage: drive.sh <what: gpt|blocks> <rounds>
set -u
what=$1; rounds=$2
B=${BENCH_DIR:-/tmp/bench}; R=$(cd "$(dirname "$0")/../.." && pwd)
TORCH_ENV="LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp"
waitlow() {  # wait up to $1 s for the 1-min load to drop below 1.5
  local t=0
  while [ $t -lt $1 ]; do
    l=$(cut -d' ' -f1 /proc/loadavg)
    python3 -c "import sys; sys.exit(0 if $l < 1.5 else 1)" && return 0
    sleep 5; t=$((t+5))
  done
}
run() {  # name cmd...
  local name=$1; shift
  local f=$B/$what-$name.log
  { echo "=== $(date +%T) $name"; echo "uptime_before $(uptime)"; echo "others: $(ps -eo pcpu,args --sort=-pcpu --no-headers | head -3 | tr '\n' '|')"; } >> $f
  ( "$@" ) >> $f 2>&1
  echo "uptime_after $(uptime)" >> $f
  sleep 3
}
for r in $(seq 1 $rounds); do
  waitlow ${WAIT:-120}
  if [ $what = gpt ]; then
    run go_default  $B/gpt_default.test -test.run '^$' -test.bench GPT -test.benchtime 1s
    run torch       env $TORCH_ENV /usr/bin/python3 $R/bench/torch_gpt.py --rounds 3
    run go_openblas env OPENBLAS_NUM_THREADS=1 $B/gpt_openblas.test -test.run '^$' -test.bench GPT -test.benchtime 1s
    run torch       env $TORCH_ENV /usr/bin/python3 $R/bench/torch_gpt.py --rounds 3
  else
    run go_default  $B/blocks_default.test -test.run '^$' -test.bench . -test.benchtime 1s
    run torch       env $TORCH_ENV /usr/bin/python3 $R/bench/torch_blocks.py --rounds 5
    run go_openblas env OPENBLAS_NUM_THREADS=1 $B/blocks_openblas.test -test.run '^$' -test.bench . -test.benchtime 1s
    run torch       env $TORCH_ENV /usr/bin/python3 $R/bench/torch_blocks.py --rounds 5
  fi
done
echo done >> $B/$what-done
