#!/usr/bin/env bash
# Memory of `aigw run` under many concurrent streams, and after them.
#
# Starts `aigw simulate --chunks 20 --chunk-interval-ms 400` (each stream lasts ~8 s) and
# `aigw run` in front of it, then opens STREAMS concurrent streamed chat requests, WAVES
# times in a row, and prints the gateway's RSS: idle before, at the peak of each wave,
# after each wave, and 10 s, 30 s, 60 s and 100 s after the last one (with the number of
# pooled upstream connections still open, and the allocator's own figures from the admin
# listener's `/memory`: allocated against resident tells memory in use from memory kept).
#
# WARM=N also measures idle after a first wave of N streams (and 15 s): the binary's code
# and the state the first requests page in count there, as on any gateway in service.
#
# H2C=1 marks the simulator's Backend `appProtocols: [gateway.envoyproxy.io/h2c]`: the
# gateway's upstream side is then one HTTP/2 connection shared by every stream (as it is
# with the hosted providers, which negotiate HTTP/2 over TLS).
#
# FLOOR=1 measures `bench_proxy` (an aigw-axum example: hyper's server connection and
# pooled client and jemalloc, nothing else) in the gateway's place: what two hyper
# HTTP/1 connections hold per stream before a proxy keeps anything of its own.
#
# Usage: scripts/bench-streams.sh            (AIGW_BIN=path to skip the release build)
#        STREAMS=1000 WAVES=3 scripts/bench-streams.sh
#        FLOOR=1 scripts/bench-streams.sh    (PROXY_BIN=path to skip its build)
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
streams="${STREAMS:-1000}"
waves="${WAVES:-3}"
ulimit -n "$(ulimit -Hn)"
out="${BENCH_OUT:-$CARGO_TARGET_DIR/bench-streams}"
mkdir -p "$out"

"$bin" simulate --listen 127.0.0.1:1986 --chunks 20 --chunk-interval-ms 400 --log-level warn >"$out/sim.log" 2>&1 &
sim=$!
if [ -n "${FLOOR:-}" ]; then
  if [ -z "${PROXY_BIN:-}" ]; then
    cargo build --release -q -p aigw-axum --example bench_proxy
  fi
  "${PROXY_BIN:-$CARGO_TARGET_DIR/release/examples/bench_proxy}" 127.0.0.1:1985 127.0.0.1:1986 >"$out/gw.log" 2>&1 &
else
  config=benches/e2e/streams.yaml
  if [ -n "${H2C:-}" ]; then
    # The same configuration with the simulator's Backend marked h2c: every stream to it
    # shares one HTTP/2 connection instead of holding an HTTP/1.1 connection of its own.
    config="$out/streams-h2c.yaml"
    sed '/^kind: Backend$/,/^---$/ s|^spec:$|spec:\n  appProtocols: [gateway.envoyproxy.io/h2c]|' \
      benches/e2e/streams.yaml >"$config"
    grep -q 'appProtocols' "$config"
  fi
  "$bin" run "$config" --listen 127.0.0.1:1985 --admin 127.0.0.1:1987 --log-level warn ${GW_ARGS:-} >"$out/gw.log" 2>&1 &
fi
gw=$!
trap 'kill $sim $gw 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  if [ -n "${FLOOR:-}" ]; then
    (: </dev/tcp/127.0.0.1/1985) 2>/dev/null && break
  else
    curl -fs -o /dev/null 127.0.0.1:1987/ready && break
  fi
  sleep 0.1
done

python3 - "$gw" "$streams" "$waves" <<'PY'
import asyncio, os, sys, time

pid, streams, waves = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = b'{"model":"bench-openai","stream":true,"messages":[{"role":"user","content":"hi"}]}'
request = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
           b"authorization: Bearer sk-bench\r\nconnection: close\r\ncontent-length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)

def upstream_conns():
    # Connections from the gateway to the simulator (pooled, idle or busy).
    import subprocess
    out = subprocess.run(["ss", "-Htn", "state", "established", "dport", "= :1986"],
                         capture_output=True, text=True).stdout
    return len(out.splitlines())

def allocator():
    # The gateway's allocator figures from the admin listener's `/memory` (jemalloc:
    # live allocations against the pages it holds), or "" where there are none.
    import json, urllib.request
    try:
        with urllib.request.urlopen("http://127.0.0.1:1987/memory", timeout=2) as r:
            m = json.load(r)
    except Exception:
        return ""
    mib = lambda k: m[k] / 1048576
    return (f"; allocator: {mib('allocated'):.1f} MiB allocated, {mib('active'):.1f} active, "
            f"{mib('resident'):.1f} resident")

def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

def rss_split():
    # Anonymous pages (the heap, stacks) against file-backed ones (the binary's code
    # and data, paged in as first used): only the first are the allocator's.
    kib = {}
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(("RssAnon", "RssFile")):
            kib[line.split(":")[0]] = int(line.split()[1])
    return f" (anon {kib['RssAnon'] / 1024:.1f}, file {kib['RssFile'] / 1024:.1f})"

async def one(ok):
    r, w = await asyncio.open_connection("127.0.0.1", 1985)
    w.write(request)
    data = b""
    while True:
        chunk = await r.read(65536)
        if not chunk:
            break
        data += chunk
    w.close()
    if data.startswith(b"HTTP/1.1 200") and b"[DONE]" in data:
        ok.append(1)

async def wave(n=streams):
    ok, peak, at_peak = [], 0, ""
    tasks = [asyncio.create_task(one(ok)) for _ in range(n)]
    while not all(t.done() for t in tasks):
        rss = rss_kib()
        if rss > peak:
            # The allocator's figures at the highest RSS seen (read only then: each
            # read blocks this loop for a moment).
            peak, at_peak = rss, allocator()
        await asyncio.sleep(0.2)
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(ok), peak, at_peak

async def main():
    # Settle first: the tokenizer's tables load in the background after start-up.
    idle, last = rss_kib(), 0
    while abs(idle - last) > idle // 200:
        await asyncio.sleep(2)
        idle, last = rss_kib(), idle
    print(f"RSS idle: {idle / 1024:.1f} MiB{rss_split()}{allocator()}")
    warm = int(os.environ.get("WARM", "0"))
    if warm:
        # An idle gateway that has served: the code and the lazily built state the
        # first streams page in, measured after a small wave and the allocator's decay.
        await wave(warm)
        await asyncio.sleep(15)
        print(f"RSS warm idle (after {warm} streams and 15 s): {rss_kib() / 1024:.1f} MiB"
              f"{rss_split()}{allocator()}")
    for i in range(waves):
        ok, peak, at_peak = await wave()
        after = rss_kib()
        print(f"wave {i + 1}: {ok}/{streams} streams completed, peak {peak / 1024:.1f} MiB "
              f"({(peak - idle) / streams:.1f} KiB per stream over idle), after {after / 1024:.1f} MiB"
              f"{at_peak.replace('; allocator', '; allocator at the peak')}")
    start = time.monotonic()
    for t in (10, 30, 60, 100):
        await asyncio.sleep(t - (time.monotonic() - start))
        print(f"{t} s after the last wave: {rss_kib() / 1024:.1f} MiB{rss_split()}, "
              f"{upstream_conns()} upstream connections open{allocator()}")

asyncio.run(main())
PY
