#!/usr/bin/env bash
# User-space instructions per request of `aigw run`, counted by callgrind: deterministic
# whatever else the machine is doing, unlike wall-clock figures.
#
# For each case (OpenAI passthrough, OpenAI -> Bedrock translated and SigV4-signed) the
# gateway runs under `valgrind --tool=callgrind` twice in front of a native
# `aigw simulate`: once serving N requests at concurrency 1 (`hey -n N -c 1`), once
# serving none. The difference of the two totals, divided by N, is the per-request cost
# with start-up and shutdown subtracted. Threads are counted separately and the
# tokenizer's warm-up thread (`aigw_core::estimate::warm_up`, which loads its tables in
# the background for whatever time the run lasts) is left out.
#
# Usage: scripts/bench-callgrind.sh            (AIGW_BIN=path to skip the release build)
#        N=300 CASES="openai bedrock" scripts/bench-callgrind.sh
# Needs valgrind and hey (apt-get install valgrind hey). The profiles are kept in
# $BENCH_OUT (callgrind_annotate --inclusive=yes FILE names the top functions).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if [ -z "${AIGW_BIN:-}" ]; then
  cargo build --release -q -p aigw-axum --bin aigw
fi
bin="${AIGW_BIN:-$CARGO_TARGET_DIR/release/aigw}"
n="${N:-300}"
cases="${CASES:-openai bedrock}"
out="${BENCH_OUT:-$CARGO_TARGET_DIR/bench-callgrind}"
mkdir -p "$out"
dir=benches/e2e

"$bin" simulate --listen 127.0.0.1:1976 --log-level warn >"$out/sim.log" 2>&1 &
sim=$!
gw=
trap 'kill $sim $gw 2>/dev/null || true' EXIT

# profile CASE REQUESTS -> total instructions of one gateway run
profile() {
  local case=$1 reqs=$2 file="$out/callgrind.$1.$2.out"
  rm -f "$file"-*
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$file" \
    "$bin" run "$dir/gateway.yaml" --listen 127.0.0.1:1975 --admin 127.0.0.1:1965 \
    >"$out/gw.$case.$reqs.log" 2>&1 &
  gw=$!
  for _ in $(seq 300); do
    curl -fs -o /dev/null 127.0.0.1:1965/ready && break
    sleep 0.2
  done
  if [ "$reqs" -gt 0 ]; then
    hey -n "$reqs" -c 1 -m POST -T application/json -H "authorization: Bearer sk-bench" \
      -D "$dir/body-$case.json" http://127.0.0.1:1975/v1/chat/completions >"$out/hey.$case.txt"
    grep -q "\[200\]	$reqs responses" "$out/hey.$case.txt" \
      || { echo "not every request succeeded: $out/hey.$case.txt" >&2; exit 1; }
  fi
  kill -INT "$gw"
  wait "$gw" || true
  gw=
  local sum=0 t
  for t in "$file"-*; do
    grep -q 'estimate::warm_up' "$t" && continue
    sum=$((sum + $(awk '/^(summary|totals):/ {print $2; exit}' "$t")))
  done
  echo "$sum"
}

curl -fs -o /dev/null --retry 20 --retry-connrefused --retry-delay 0 -X GET 127.0.0.1:1976/__sim/stats
printf '| case | instructions, %s requests | start-up and shutdown | per request |\n|---|---|---|---|\n' "$n"
for case in $cases; do
  base=$(profile "$case" 0)
  total=$(profile "$case" "$n")
  printf '| %s | %s | %s | %.1f k |\n' "$case" "$total" "$base" \
    "$(echo "($total - $base) / $n / 1000" | bc -l)"
done
