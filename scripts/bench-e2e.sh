#!/usr/bin/env bash
# End-to-end overhead benchmark of the standalone gateway on loopback.
#
# Measures, in the same run and against the same simulator process:
#   direct  : wrk -> aigw simulate            (the upstream alone)
#   gateway : wrk -> aigw run -> aigw simulate (what the gateway adds)
# for OpenAI passthrough and OpenAI -> Bedrock Converse (translated + SigV4-signed),
# non-stream and stream: added latency p50/p99 at concurrency 1, requests/s at
# concurrency 32, gateway CPU microseconds per request (utime+stime from /proc), RSS idle
# and under load, and time to first byte added for streams.
#
# Usage: scripts/bench-e2e.sh [DURATION_SECONDS]   (needs wrk: apt-get install wrk)
# AIGW_BIN=path skips the release build and benchmarks that binary; GW_ARGS adds flags to
# `aigw run` (e.g. GW_ARGS="--log-level warn" to measure without the per-request access log,
# GW_ARGS="--worker-threads 2" for a two-worker runtime instead of the one-thread default on
# machines with up to two cores). SYSCALLS=1 also counts the gateway's system calls per
# passthrough request at concurrency 1 (strace -c -f; slows the run, not the counts).
# UPSTREAM=fast serves the upstream side from the `bench_upstream` example instead: the
# simulator's replies captured once, then answered as fixed bytes (the simulator spends as
# much CPU per request as the gateway, which on two shared cores hides the gateway's share).
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }

if [ -z "${AIGW_BIN:-}" ]; then
  cargo build --release -q -p aigw-axum --bin aigw
fi
bin="${AIGW_BIN:-$CARGO_TARGET_DIR/release/aigw}"
dir=benches/e2e
out="${BENCH_OUT:-$CARGO_TARGET_DIR/bench-e2e}"
mkdir -p "$out"

"$bin" simulate --listen 127.0.0.1:1976 --log-level warn >"$out/sim.log" 2>&1 &
sim=$!
if [ "${UPSTREAM:-simulator}" = fast ]; then
  if [ -z "${FAST_UPSTREAM_BIN:-}" ]; then
    cargo build --release -q -p aigw-axum --example bench_upstream
  fi
  fast_bin="${FAST_UPSTREAM_BIN:-$CARGO_TARGET_DIR/release/examples/bench_upstream}"
  for _ in $(seq 50); do curl -fs -o /dev/null -X GET 127.0.0.1:1976/__sim/stats && break; sleep 0.1; done
  # The replies the gateway itself gets: the stream asks for the usage chunk, as the
  # gateway's request does.
  sed 's/"stream":true}$/"stream":true,"stream_options":{"include_usage":true}}/' \
    "$dir/body-openai-stream.json" >"$out/capture-stream.json"
  cap() { curl -fsS -H 'content-type: application/json' -H 'authorization: Bearer sk-bench' --data-binary "@$2" -o "$out/$3" "http://127.0.0.1:1976$1"; }
  cap /v1/chat/completions "$dir/body-openai.json" openai.json
  cap /v1/chat/completions "$out/capture-stream.json" openai-stream.sse
  cap "/model/us.amazon.nova-micro-v1%3A0/converse" "$dir/direct-bedrock.json" bedrock.json
  cap "/model/us.amazon.nova-micro-v1%3A0/converse-stream" "$dir/direct-bedrock.json" bedrock-stream.bin
  kill "$sim"; wait "$sim" 2>/dev/null || true
  "$fast_bin" 127.0.0.1:1976 "$out" >"$out/sim.log" 2>&1 &
  sim=$!
fi
"$bin" run "$dir/gateway.yaml" --listen 127.0.0.1:1975 --admin 127.0.0.1:1965 ${GW_ARGS:-} >"$out/gw.log" 2>&1 &
gw=$!
trap 'kill $sim $gw 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -fs -o /dev/null 127.0.0.1:1965/ready && curl -s -o /dev/null -X GET 127.0.0.1:1976/__sim/stats && break
  sleep 0.1
done

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
# Settle first: the tokenizer's tables load on a background thread after start-up (a few
# seconds of CPU that would land in the first measurement).
prev=0
for _ in $(seq 60); do
  cur=$(rss_kb "$gw"); [ "$cur" = "$prev" ] && break; prev=$cur; sleep 1
done
rss_idle=$(rss_kb "$gw")

# run NAME URL BODY THREADS CONNS -> prints "p50_us p99_us rps requests cpu_us_per_req"
run() {
  local name=$1 url=$2 body=$3 t=$4 c=$5
  BODY="$body" wrk -t"$t" -c"$c" -d1s -s "$dir/post.lua" "$url" >/dev/null 2>&1 || true
  local before; before=$(cpu_ticks "$gw")
  BODY="$body" wrk -t"$t" -c"$c" -d"${dur}s" --latency -s "$dir/post.lua" "$url" >"$out/$name.txt" 2>&1
  local after; after=$(cpu_ticks "$gw")
  python3 - "$out/$name.txt" "$before" "$after" "$hz" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def us(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1, "ms": 1e3, "s": 1e6}[u]
p50 = us(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
p99 = us(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
reqs = int(re.search(r"(\d+) requests in", text).group(1))
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if errs:
    sys.exit(f"{sys.argv[1]}: {errs.group(1)} non-2xx responses")
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4]) * 1e6 / max(reqs, 1)
print(f"{p50:.0f} {p99:.0f} {rps:.0f} {reqs} {cpu:.1f}")
PY
}

ttfb() { # URL BODY -> p50 of time to first byte in microseconds over 300 requests
  python3 - "$1" "$2" <<'PY'
import http.client, sys, time, statistics, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1]); body = open(sys.argv[2], "rb").read()
conn = http.client.HTTPConnection(u.hostname, u.port)
samples = []
for i in range(330):
    t0 = time.perf_counter()
    conn.request("POST", u.path, body, {"content-type": "application/json", "authorization": "Bearer sk-bench"})
    r = conn.getresponse(); r.read(1); t1 = time.perf_counter(); r.read()
    if r.status != 200: sys.exit(f"status {r.status}")
    if i >= 30: samples.append((t1 - t0) * 1e6)
print(f"{statistics.median(samples):.0f}")
PY
}

direct_openai="http://127.0.0.1:1976/v1/chat/completions"
direct_bedrock="http://127.0.0.1:1976/model/us.amazon.nova-micro-v1%3A0/converse"
direct_bedrock_stream="http://127.0.0.1:1976/model/us.amazon.nova-micro-v1%3A0/converse-stream"
via="http://127.0.0.1:1975/v1/chat/completions"

printf '| case | direct p50 / p99 (µs) | via aigw p50 / p99 (µs) | added p50 / p99 (µs) | direct req/s c=32 | via aigw req/s c=32 | ratio | aigw CPU µs/req |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for case in openai openai-stream bedrock bedrock-stream; do
  case $case in
    openai) d_url=$direct_openai; d_body=$dir/body-openai.json ;;
    openai-stream) d_url=$direct_openai; d_body=$dir/body-openai-stream.json ;;
    bedrock) d_url=$direct_bedrock; d_body=$dir/direct-bedrock.json ;;
    bedrock-stream) d_url=$direct_bedrock_stream; d_body=$dir/direct-bedrock.json ;;
  esac
  g_body=$dir/body-$case.json
  read -r dp50 dp99 _ _ _ <<<"$(run "$case-direct-c1" "$d_url" "$d_body" 1 1)"
  read -r gp50 gp99 _ _ gcpu <<<"$(run "$case-gw-c1" "$via" "$g_body" 1 1)"
  read -r _ _ drps _ _ <<<"$(run "$case-direct-c32" "$d_url" "$d_body" 2 32)"
  read -r _ _ grps _ _ <<<"$(run "$case-gw-c32" "$via" "$g_body" 2 32)"
  rss_load=$(rss_kb "$gw")
  printf '| %s | %s / %s | %s / %s | %s / %s | %s | %s | %s%% | %s |\n' "$case" "$dp50" "$dp99" "$gp50" "$gp99" \
    "$((gp50 - dp50))" "$((gp99 - dp99))" "$drps" "$grps" "$((100 * grps / drps))" "$gcpu"
done
printf '\nRSS of aigw run: idle %s KiB, after load %s KiB\n' "$rss_idle" "$rss_load"
if [ -n "${SYSCALLS:-}" ]; then
  strace -c -f -p "$gw" -o "$out/strace.txt" 2>/dev/null &
  st=$!
  sleep 0.5
  BODY=$dir/body-openai.json wrk -t1 -c1 -d3s -s "$dir/post.lua" "$via" >"$out/strace-wrk.txt" 2>&1
  kill -INT "$st"; wait "$st" 2>/dev/null || true
  python3 - "$out/strace.txt" "$out/strace-wrk.txt" <<'PY'
import re, sys
reqs = int(re.search(r"(\d+) requests in", open(sys.argv[2]).read()).group(1))
calls = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        calls[f[-1]] = int(f[3])
top = ", ".join(f"{n} {c / reqs:.2f}" for n, c in sorted(calls.items(), key=lambda x: -x[1])[:6])
print(f"system calls per passthrough request (c=1): {sum(calls.values()) / reqs:.2f} ({top})")
PY
fi
for case in openai-stream bedrock-stream; do
  case $case in
    openai-stream) d_url=$direct_openai; d_body=$dir/body-openai-stream.json ;;
    bedrock-stream) d_url=$direct_bedrock_stream; d_body=$dir/direct-bedrock.json ;;
  esac
  d=$(ttfb "$d_url" "$d_body"); g=$(ttfb "$via" "$dir/body-$case.json")
  printf 'time to first byte, %s: direct p50 %s µs, via aigw p50 %s µs, added %s µs\n' "$case" "$d" "$g" "$((g - d))"
done
