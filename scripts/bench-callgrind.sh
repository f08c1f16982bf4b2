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
# The case `floor` counts `bench_proxy` (an aigw-axum example: hyper's server connection and
# pooled client forwarding the passthrough request, nothing else) the same way: what the two
# hyper HTTP/1 connections and tokio cost before a proxy does any work of its own.
# The case `peer` counts agentgateway (PEER_BIN=path; benches/e2e/agentgateway.yaml, an
# OpenAI LLM backend in front of the same simulator) the same way, all its threads counted.
#
# Usage: scripts/bench-callgrind.sh            (AIGW_BIN=path to skip the release build)
#        N=300 CASES="openai bedrock floor" scripts/bench-callgrind.sh   (PROXY_BIN=path)
# Needs valgrind and hey (apt-get install valgrind hey). The profiles are kept in
# $BENCH_OUT (callgrind_annotate --inclusive=yes FILE names the top functions).
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark scripts listen on fixed loopback ports: one run at a time per machine,
# the others wait here.
exec 9>"${TMPDIR:-/tmp}/aigw-bench.lock"
flock 9
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if [ -z "${AIGW_BIN:-}" ]; then
  cargo build --release -q -p aigw-axum --bin aigw
fi
bin="${AIGW_BIN:-$CARGO_TARGET_DIR/release/aigw}"
case " ${CASES:-} " in
  *" floor "*)
    if [ -z "${PROXY_BIN:-}" ]; then
      cargo build --release -q -p aigw-axum --example bench_proxy
    fi ;;
esac
proxy_bin="${PROXY_BIN:-$CARGO_TARGET_DIR/release/examples/bench_proxy}"
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
  local body=$case port=1975 cmd=("$bin" run "$dir/gateway.yaml" --listen 127.0.0.1:1975 --admin 127.0.0.1:1965)
  if [ "$case" = floor ]; then
    body=openai cmd=("$proxy_bin" 127.0.0.1:1975 127.0.0.1:1976)
  elif [ "$case" = peer ]; then
    body=openai port=1987 cmd=("${PEER_BIN:?the case peer needs PEER_BIN=path/to/agentgateway}" -f "$dir/agentgateway.yaml")
  fi
  rm -f "$file"-*
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$file" \
    "${cmd[@]}" >"$out/gw.$case.$reqs.log" 2>&1 &
  gw=$!
  for _ in $(seq 300); do
    if [ "$case" = floor ] || [ "$case" = peer ]; then
      (: </dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    else
      curl -fs -o /dev/null 127.0.0.1:1965/ready && break
    fi
    sleep 0.2
  done
  if [ "$reqs" -gt 0 ]; then
    hey -n "$reqs" -c 1 -m POST -T application/json -H "authorization: Bearer sk-bench" \
      -D "$dir/body-$body.json" "http://127.0.0.1:$port/v1/chat/completions" >"$out/hey.$case.txt"
    grep -q "\[200\]	$reqs responses" "$out/hey.$case.txt" \
      || { echo "not every request succeeded: $out/hey.$case.txt" >&2; exit 1; }
  fi
  # aigw drains on SIGINT; bench_proxy has no handler, and a script's background job
  # ignores SIGINT, so it gets SIGTERM (valgrind still writes the profile), as does the peer.
  if [ "$case" = floor ] || [ "$case" = peer ]; then kill -TERM "$gw"; else kill -INT "$gw"; fi
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
