#!/usr/bin/env bash
# Heap per open stream, by allocation site: `aigw run` (or, with FLOOR=1, `bench_proxy`,
# the bare hyper proxy) under `valgrind --tool=dhat` in front of a native
# `aigw simulate --chunks 20 --chunk-interval-ms 2000`, STREAMS concurrent streamed chat
# requests held open, the live heap at its global peak grouped by the first frame outside
# the allocator and divided by STREAMS.
#
# Needs binaries built without jemalloc (DHAT sees only the system allocator):
#   cargo build --release -p aigw-axum --bin aigw --example bench_proxy \
#     --no-default-features --features cli
#   AIGW_BIN=target/release/aigw PROXY_BIN=target/release/examples/bench_proxy \
#     STREAMS=200 scripts/dhat-streams.sh            # add FLOOR=1 for the floor
#
# RAMP_MS=50 opens the streams that many milliseconds apart: the peak is then the streams
# held open, not the burst of requests in flight before their responses' heads (under
# valgrind the gateway answers a simultaneous burst slowly).
#
# H2C=1 marks the simulator's Backend h2c, as in bench-streams.sh: every stream shares one
# upstream HTTP/2 connection.
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark scripts listen on fixed loopback ports: one run at a time per machine,
# the others wait here.
exec 9>"${TMPDIR:-/tmp}/aigw-bench.lock"
flock 9
bin="${AIGW_BIN:?AIGW_BIN: an aigw built without jemalloc}"
streams="${STREAMS:-200}"
out="${BENCH_OUT:-${CARGO_TARGET_DIR:-$PWD/target}/dhat-streams}"
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)"

"$bin" simulate --listen 127.0.0.1:1986 --chunks 20 --chunk-interval-ms 2000 --log-level warn >"$out/sim.log" 2>&1 &
sim=$!
name=aigw
if [ -n "${FLOOR:-}" ]; then
  name=floor
  cmd=("${PROXY_BIN:?PROXY_BIN: bench_proxy built without jemalloc}" 127.0.0.1:1985 127.0.0.1:1986)
else
  config=benches/e2e/streams.yaml
  if [ -n "${H2C:-}" ]; then
    name=aigw-h2c
    config="$out/streams-h2c.yaml"
    sed '/^kind: Backend$/,/^---$/ s|^spec:$|spec:\n  appProtocols: [gateway.envoyproxy.io/h2c]|' \
      benches/e2e/streams.yaml >"$config"
    grep -q 'appProtocols' "$config"
  fi
  cmd=("$bin" run "$config" --listen 127.0.0.1:1985 --admin 127.0.0.1:1987 --log-level warn)
fi
valgrind --tool=dhat --dhat-out-file="$out/dhat.$name.json" "${cmd[@]}" >"$out/$name.log" 2>&1 &
gw=$!
trap 'kill $sim $gw 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  if [ -n "${FLOOR:-}" ]; then
    (: </dev/tcp/127.0.0.1/1985) 2>/dev/null && break
  else
    curl -fs -o /dev/null 127.0.0.1:1987/ready && break
  fi
  sleep 0.2
done
python3 - "$streams" "${RAMP_MS:-0}" <<'PY'
import asyncio, sys
streams, ramp = int(sys.argv[1]), int(sys.argv[2]) / 1000
body = b'{"model":"bench-openai","stream":true,"messages":[{"role":"user","content":"hi"}]}'
request = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
           b"authorization: Bearer sk-bench\r\nconnection: close\r\ncontent-length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)
async def one(i):
    await asyncio.sleep(i * ramp)
    r, w = await asyncio.open_connection("127.0.0.1", 1985)
    w.write(request)
    data = b""
    while chunk := await r.read(65536):
        data += chunk
    return data.startswith(b"HTTP/1.1 200") and b"[DONE]" in data
async def main():
    ok = await asyncio.gather(*(one(i) for i in range(streams)))
    print(f"{sum(ok)}/{streams} streams completed")
asyncio.run(main())
PY
# aigw drains on SIGINT; a script's background job ignores SIGINT, so the floor gets SIGTERM.
if [ -n "${FLOOR:-}" ]; then kill -TERM "$gw"; else kill -INT "$gw"; fi
wait "$gw" || true
python3 - "$out/dhat.$name.json" "$streams" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1])); streams = int(sys.argv[2])
ftbl = d["ftbl"]
alloc = re.compile(r"(malloc|calloc|realloc|posix_memalign|memalign|alloc::alloc|alloc::raw_vec|"
                   r"RawVec|__rust_|__rdl_|alloc::boxed|vec_alloc|finish_grow|reserve|do_reserve|"
                   r"with_capacity|BytesMut|bytes::|Vec<T,A>::push|<alloc::|alloc::vec::)")
groups, total = {}, 0
for pp in d["pps"]:
    b = pp.get("gb", 0)
    if not b:
        continue
    total += b
    site = next((ftbl[i] for i in pp["fs"] if not alloc.search(ftbl[i])), ftbl[pp["fs"][0]])
    site = re.sub(r"^0x[0-9A-F]+: ", "", site)
    g = groups.setdefault(site[:150], [0, 0])
    g[0] += b; g[1] += pp.get("gbk", 0)
print(f"live heap at the peak: {total / 1024:.0f} KiB, {total / streams / 1024:.1f} KiB per stream")
for site, (b, n) in sorted(groups.items(), key=lambda x: -x[1][0])[:25]:
    print(f"{b / streams / 1024:6.2f} KiB {n / streams:5.1f} blocks  {site}")
PY
