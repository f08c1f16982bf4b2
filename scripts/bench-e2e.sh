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
# FLOOR=1 also puts two other proxies in front of the same upstream, for the passthrough
# cases: `bench_proxy` (an aigw-axum example: hyper's server and pooled client, nothing
# else) and nginx if it is installed (apt-get install nginx-light; one worker process,
# upstream keepalive, no buffering). They give the floor: what a second hop costs on this
# machine before the proxy does any work of its own.
# PEER_BIN=path/to/agentgateway also puts agentgateway in front of the same upstream
# (benches/e2e/agentgateway.yaml: an OpenAI LLM backend, bearer key injected), for the
# passthrough cases and time to first byte: a peer gateway measured in the same run. The
# script does not build it.
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark scripts listen on fixed loopback ports: one run at a time per machine,
# the others wait here.
exec 9>"${TMPDIR:-/tmp}/aigw-bench.lock"
flock 9
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
floor_pids=""
trap 'kill $sim $gw $floor_pids 2>/dev/null || true' EXIT
if [ -n "${FLOOR:-}" ]; then
  if [ -z "${PROXY_BIN:-}" ]; then
    cargo build --release -q -p aigw-axum --example bench_proxy
  fi
  "${PROXY_BIN:-$CARGO_TARGET_DIR/release/examples/bench_proxy}" 127.0.0.1:1985 127.0.0.1:1976 &
  hyper_proxy=$!
  floor_pids="$hyper_proxy"
  if command -v nginx >/dev/null; then
    mkdir -p "$out/nginx"
    sed "s|@OUT@|$out/nginx|g" "$dir/nginx.conf" >"$out/nginx/nginx.conf"
    nginx -p "$out/nginx" -c "$out/nginx/nginx.conf" &
    nginx_pid=$!
    floor_pids="$floor_pids $nginx_pid"
  else
    echo "nginx not installed: the nginx rows are left out (apt-get install nginx-light)" >&2
  fi
fi
if [ -n "${PEER_BIN:-}" ]; then
  "$PEER_BIN" -f "$dir/agentgateway.yaml" >"$out/peer.log" 2>&1 &
  peer_pid=$!
  floor_pids="$floor_pids $peer_pid"
  for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:1987/ && break; sleep 0.1; done
fi
for _ in $(seq 50); do
  curl -fs -o /dev/null 127.0.0.1:1965/ready && curl -s -o /dev/null -X GET 127.0.0.1:1976/__sim/stats && break
  sleep 0.1
done

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
# Settle first: the tokenizer's tables are built on a background thread after start-up
# (tens of milliseconds of CPU now; seconds with the tables of older builds, which would
# land in the first measurement).
prev=0
for _ in $(seq 60); do
  cur=$(rss_kb "$gw"); [ "$cur" = "$prev" ] && break; prev=$cur; sleep 1
done
rss_idle=$(rss_kb "$gw")
peer_rss_idle=$([ -n "${peer_pid:-}" ] && rss_kb "$peer_pid" || echo -)

# run NAME URL BODY THREADS CONNS -> prints "p50_us p99_us rps requests cpu_us_per_req"
run() {
  local name=$1 url=$2 body=$3 t=$4 c=$5
  BODY="$body" wrk -t"$t" -c"$c" -d1s -s "$dir/post.lua" "$url" >/dev/null 2>&1 || true
  local pid=${PID:-$gw}
  local before; before=$(cpu_ticks "$pid")
  BODY="$body" wrk -t"$t" -c"$c" -d"${dur}s" --latency -s "$dir/post.lua" "$url" >"$out/$name.txt" 2>&1
  local after; after=$(cpu_ticks "$pid")
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

ttfb() { # DIRECT_URL DIRECT_BODY VIA_URL VIA_BODY -> "direct_p50 via_p50 added_p50 via_p99" (µs)
  # Time to first byte over ${TTFB_PAIRS:-1000} pairs of sequential streamed requests on two
  # kept-alive connections, one direct and one through the proxy, alternated so that both
  # see the same moment of the machine: "added" is the median of each pair's difference,
  # not the difference of two medians taken seconds apart.
  python3 - "$1" "$2" "$3" "$4" "${TTFB_PAIRS:-1000}" <<'PY'
import http.client, sys, time, statistics, urllib.parse
def target(url, body_file):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port), u.path, open(body_file, "rb").read()
def first_byte(conn, path, body):
    t0 = time.perf_counter()
    conn.request("POST", path, body, {"content-type": "application/json", "authorization": "Bearer sk-bench"})
    r = conn.getresponse(); r.read(1); t1 = time.perf_counter(); r.read()
    if r.status != 200: sys.exit(f"status {r.status}")
    return (t1 - t0) * 1e6
direct, via = target(sys.argv[1], sys.argv[2]), target(sys.argv[3], sys.argv[4])
d, v, added = [], [], []
for i in range(int(sys.argv[5]) + 50):
    a = first_byte(*direct); b = first_byte(*via)
    if i >= 50: d.append(a); v.append(b); added.append(b - a)
p99 = sorted(v)[int(len(v) * 0.99)]
print(f"{statistics.median(d):.0f} {statistics.median(v):.0f} {statistics.median(added):.0f} {p99:.0f}")
PY
}

# floor_rows CASE BODY DIRECT_P50 DIRECT_P99 DIRECT_RPS: the same passthrough case through
# the floor proxies (FLOOR=1) and the peer (PEER_BIN), one table row each, against the same
# direct figures.
floor_rows() {
  local case=$1 body=$2 dp50=$3 dp99=$4 drps=$5 name port pid p50 p99 rps cpu
  for name in bench_proxy nginx agentgateway; do
    case $name in
      bench_proxy) [ -n "${hyper_proxy:-}" ] || continue; port=1985; pid=$hyper_proxy ;;
      nginx) [ -n "${nginx_pid:-}" ] || continue; port=1986; pid=$nginx_pid ;;
      agentgateway) [ -n "${peer_pid:-}" ] || continue; port=1987; pid=$peer_pid ;;
    esac
    read -r p50 p99 _ _ cpu <<<"$(PID=$pid run "$case-$name-c1" "http://127.0.0.1:$port/v1/chat/completions" "$body" 1 1)"
    read -r _ _ rps _ _ <<<"$(PID=$pid run "$case-$name-c32" "http://127.0.0.1:$port/v1/chat/completions" "$body" 2 32)"
    printf '| %s via %s | %s / %s | %s / %s | %s / %s | %s | %s | %s%% | %s |\n' "$case" "$name" "$dp50" "$dp99" \
      "$p50" "$p99" "$((p50 - dp50))" "$((p99 - dp99))" "$drps" "$rps" "$((100 * rps / drps))" "$cpu"
  done
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
  if [ -n "${FLOOR:-}${PEER_BIN:-}" ] && [ "${case#openai}" != "$case" ]; then
    floor_rows "$case" "$d_body" "$dp50" "$dp99" "$drps"
  fi
done
printf '\nRSS of aigw run: idle %s KiB, after load %s KiB\n' "$rss_idle" "$rss_load"
if [ -n "${peer_pid:-}" ]; then
  printf 'RSS of agentgateway: idle %s KiB, after load %s KiB\n' "$peer_rss_idle" "$(rss_kb "$peer_pid")"
fi
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
  read -r d g added p99 < <(ttfb "$d_url" "$d_body" "$via" "$dir/body-$case.json")
  printf 'time to first byte, %s: direct p50 %s µs, via aigw p50 %s µs (p99 %s), added (median of pairs) %s µs\n' \
    "$case" "$d" "$g" "$p99" "$added"
  if [ -n "${FLOOR:-}${PEER_BIN:-}" ] && [ "$case" = openai-stream ]; then
    for port in ${hyper_proxy:+1985} ${nginx_pid:+1986} ${peer_pid:+1987}; do
      read -r _ f fadded _ < <(ttfb "$d_url" "$d_body" "http://127.0.0.1:$port/v1/chat/completions" "$d_body")
      case $port in 1985) name=bench_proxy ;; 1986) name=nginx ;; *) name=agentgateway ;; esac
      printf 'time to first byte, %s via %s: p50 %s µs, added (median of pairs) %s µs\n' "$case" "$name" "$f" "$fadded"
    done
  fi
done
