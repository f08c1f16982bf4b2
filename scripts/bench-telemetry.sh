#!/usr/bin/env bash
# What request tracing costs: `aigw run` in front of `aigw simulate`, OpenAI passthrough
# (plain and streamed), measured with telemetry off (no OTEL_* settings) and on (spans in
# the default OpenInference convention with content capture, plus OTLP metrics, exported
# over gRPC to a real OTLP receiver, aigw-axum/tests/py/otlp_receiver.py), back to back.
# Prints p50 latency at concurrency 1 and the gateway's CPU microseconds per request
# (utime+stime from /proc) for each.
#
# Usage: scripts/bench-telemetry.sh [DURATION_SECONDS]   (needs wrk and the test venv:
# AIGW_PYTHON, as scripts/test.sh sets it). AIGW_BIN=path skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
py="${AIGW_PYTHON:-$CARGO_TARGET_DIR/test-venv/bin/python}"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
if [ -z "${AIGW_BIN:-}" ]; then
  cargo build --release -q -p aigw-axum --bin aigw
fi
bin="${AIGW_BIN:-$CARGO_TARGET_DIR/release/aigw}"
dir=benches/e2e
out="${BENCH_OUT:-$CARGO_TARGET_DIR/bench-telemetry}"
mkdir -p "$out"

"$bin" simulate --listen 127.0.0.1:1976 --log-level warn >"$out/sim.log" 2>&1 &
sim=$!
"$py" aigw-axum/tests/py/otlp_receiver.py 4317 4318 >"$out/receiver.log" 2>&1 &
rcv=$!
gw=
trap 'kill $sim $rcv $gw 2>/dev/null || true' EXIT
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

measure() { # LABEL BODY
  local label=$1 body=$2
  BODY="$body" wrk -t1 -c1 -d1s -s "$dir/post.lua" http://127.0.0.1:1975/v1/chat/completions >/dev/null 2>&1 || true
  local before; before=$(cpu_ticks "$gw")
  BODY="$body" wrk -t1 -c1 -d"${dur}s" --latency -s "$dir/post.lua" \
    http://127.0.0.1:1975/v1/chat/completions >"$out/$label.txt" 2>&1
  local after; after=$(cpu_ticks "$gw")
  python3 - "$out/$label.txt" "$before" "$after" "$hz" "$label" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def us(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 1, "ms": 1e3, "s": 1e6}[u]
p50 = us(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
reqs = int(re.search(r"(\d+) requests in", text).group(1))
if re.search(r"Non-2xx or 3xx responses", text):
    sys.exit(f"{sys.argv[1]}: non-2xx responses")
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4]) * 1e6 / max(reqs, 1)
print(f"| {sys.argv[5]} | {p50:.0f} | {cpu:.1f} | {reqs} |")
PY
}

start_gateway() {
  env "$@" "$bin" run "$dir/gateway.yaml" --listen 127.0.0.1:1975 --admin 127.0.0.1:1965 \
    --log-level warn >"$out/gw.log" 2>&1 &
  gw=$!
  for _ in $(seq 100); do
    curl -fs -o /dev/null 127.0.0.1:1965/ready && break
    sleep 0.1
  done
}

echo "| case | p50 (µs) | aigw CPU µs/req | requests |"
echo "|---|---|---|---|"
for round in 1 2; do
  start_gateway -u OTEL_EXPORTER_OTLP_ENDPOINT
  measure "off-$round openai" "$dir/body-openai.json"
  measure "off-$round openai-stream" "$dir/body-openai-stream.json"
  kill "$gw"; wait "$gw" 2>/dev/null || true
  start_gateway OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
    OTEL_METRIC_EXPORT_INTERVAL=1000
  measure "on-$round openai" "$dir/body-openai.json"
  measure "on-$round openai-stream" "$dir/body-openai-stream.json"
  kill "$gw"; wait "$gw" 2>/dev/null || true
done
kill "$rcv"; wait "$rcv" 2>/dev/null || true
cat "$out/receiver.log"
