"""Spans and metrics from `aigw run` over OTLP, received by a real OTLP receiver
(otlp_receiver.py) and compared with the upstream gateway's expected spans
(tests/data/otel/*.span.json, from envoyproxy/ai-gateway v1.1.0
tests/internal/testopeninference/spans, Apache-2.0). The clients are the official
`openai` and `anthropic` SDKs; the upstream replays the upstream project's cassettes.

usage: otel_e2e.py AIGW_BINARY
Exits non-zero with the failing check on stderr.
"""

import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import openai

sys.path.insert(0, os.path.dirname(__file__))
import otlp_receiver  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "otel")
UPSTREAM_KEY = "sk-upstream-SECRET-7f3a"
CLIENT_KEY = "sk-client-SECRET-91bd"
COLLECTOR_KEY = "collector-SECRET-55c2"
SECRETS = [UPSTREAM_KEY, CLIENT_KEY, COLLECTOR_KEY]
TRACEPARENT = "00-12345678901234567890123456789012-1234567890123456-01"


def cassette(name):
    with open(os.path.join(DATA, f"{name}.cassette.json")) as f:
        return json.load(f)


def expected(name):
    with open(os.path.join(DATA, f"{name}.span.json")) as f:
        return json.load(f)


ANTHROPIC_MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-test-20250101",
    "content": [{"type": "text", "text": "Hello from Claude"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 11, "output_tokens": 4},
}


class Upstream:
    """Replays the cassettes on the OpenAI and Anthropic paths; records headers."""

    def __init__(self):
        self.seen = []
        up = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                up.seen.append({k.lower(): v for (k, v) in self.headers.items()})
                if self.path == "/v1/messages":
                    return self.reply(200, "application/json", json.dumps(ANTHROPIC_MESSAGE))
                name = {
                    "/v1/chat/completions": "chat-streaming" if body.get("stream") else
                    ("chat-bad-request" if body.get("max_tokens") == 0 else "chat-basic"),
                    "/v1/completions": "completion-streaming" if body.get("stream") else "completion-basic",
                    "/v1/embeddings": "embeddings-basic",
                }.get(self.path)
                if name is None:
                    return self.reply(404, "application/json", "{}")
                c = cassette(name)
                self.reply(c["status"], c["content_type"], c["response"])

            def reply(self, status, ctype, text):
                data = text.encode()
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def config(port):
    def backend(name, schema):
        return f"""---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: {name}, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {port}}}}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIServiceBackend
metadata: {{name: {name}, namespace: default}}
spec:
  schema: {{name: {schema}}}
  backendRef: {{name: {name}, kind: Backend, group: gateway.envoyproxy.io}}
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: BackendSecurityPolicy
metadata: {{name: {name}-key, namespace: default}}
spec:
  targetRefs: [{{group: aigateway.envoyproxy.io, kind: AIServiceBackend, name: {name}}}]
  type: {"AnthropicAPIKey" if schema == "Anthropic" else "APIKey"}
  {"anthropicAPIKey" if schema == "Anthropic" else "apiKey"}:
    secretRef: {{name: upstream-key}}
"""

    def rule(model, backend):
        return f"""    - matches: [{{headers: [{{type: Exact, name: x-ai-eg-model, value: {model}}}]}}]
      backendRefs: [{{name: {backend}}}]
"""

    rules = "".join(rule(m, "openai") for m in ["gpt-5-nano", "babbage-002", "text-embedding-3-small"])
    rules += rule("claude-test", "anthropic")
    return f"""apiVersion: aigateway.envoyproxy.io/v1beta1
kind: AIGatewayRoute
metadata: {{name: otel, namespace: default}}
spec:
  rules:
{rules}{backend("openai", "OpenAI")}{backend("anthropic", "Anthropic")}---
apiVersion: v1
kind: Secret
metadata: {{name: upstream-key, namespace: default}}
type: Opaque
stringData: {{apiKey: {UPSTREAM_KEY}}}
"""


class Gateway:
    def __init__(self, binary, upstream_port, env, workdir):
        self.listen, self.admin = free_port(), free_port()
        cfg = os.path.join(workdir, "config.yaml")
        with open(cfg, "w") as f:
            f.write(config(upstream_port))
        self.log_path = os.path.join(workdir, f"aigw-{self.listen}.log")
        full = {k: v for (k, v) in os.environ.items() if not k.startswith("OTEL_")}
        full.update({"RUST_LOG": "info"})
        full.update(env)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "run", "--listen", f"127.0.0.1:{self.listen}", "--admin", f"127.0.0.1:{self.admin}",
             cfg],
            env=full, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"aigw exited: {open(self.log_path).read()}")
            try:
                socket.create_connection(("127.0.0.1", self.listen), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("aigw did not listen")

    def url(self):
        return f"http://127.0.0.1:{self.listen}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()
        return open(self.log_path).read()

    def metrics(self):
        return urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics").read().decode()


class EnvoyGateway:
    """Envoy (from the test venv) with the bootstrap `aigw-extproc envoy-config`
    prints, and `aigw-extproc` on a Unix socket with the telemetry settings."""

    def __init__(self, binary, upstream_port, env, workdir):
        self.listen, self.admin, envoy_admin = free_port(), free_port(), free_port()
        cfg = os.path.join(workdir, "config.yaml")
        with open(cfg, "w") as f:
            f.write(config(upstream_port))
        sock = os.path.join(workdir, f"extproc-{self.listen}.sock")
        boot = subprocess.run(
            [binary, "envoy-config", cfg, "--extproc", f"unix://{sock}",
             "--listen", f"127.0.0.1:{self.listen}", "--admin", f"127.0.0.1:{envoy_admin}"],
            check=True, capture_output=True)
        bootstrap = os.path.join(workdir, f"envoy-{self.listen}.yaml")
        with open(bootstrap, "wb") as f:
            f.write(boot.stdout)
        self.log_path = os.path.join(workdir, f"extproc-{self.listen}.log")
        self.log = open(self.log_path, "w")
        full = {k: v for (k, v) in os.environ.items() if not k.startswith("OTEL_")}
        full.update({"RUST_LOG": "info"})
        full.update(env)
        self.proc = subprocess.Popen(
            [binary, "--config", cfg, "--listen", f"unix://{sock}", "--admin", f"127.0.0.1:{self.admin}"],
            env=full, stdout=self.log, stderr=subprocess.STDOUT)
        wait_http(f"http://127.0.0.1:{self.admin}/health", self.proc, self.log_path)
        self.envoy_out = open(os.path.join(workdir, f"envoy-{self.listen}.out"), "w")
        self.envoy = subprocess.Popen(
            ["envoy", "-c", bootstrap, "--concurrency", "1", "-l", "warning", "--base-id",
             str(envoy_admin), "--disable-hot-restart"],
            stdout=self.envoy_out, stderr=subprocess.STDOUT)
        wait_http(f"http://127.0.0.1:{envoy_admin}/ready", self.envoy, self.envoy_out.name)

    def url(self):
        return f"http://127.0.0.1:{self.listen}"

    def stop(self):
        self.envoy.terminate()
        self.envoy.wait(timeout=20)
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()
        return open(self.log_path).read()

    def metrics(self):
        return urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics").read().decode()


def wait_http(url, proc, log):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited: {open(log).read()}")
        try:
            if urllib.request.urlopen(url, timeout=0.5).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became ready: {open(log).read()}")


def hexid(b64):
    return base64.b64decode(b64).hex() if b64 else ""


def norm(attrs, has_error):
    """The upstream's comparison: zero values dropped, JSON strings normalised,
    llm.model_name ignored on errors."""
    out = {}
    for k, v in attrs.items():
        if v in ("", 0, 0.0, False, None, []):
            continue
        if has_error and k == "llm.model_name":
            continue
        if isinstance(v, str) and v[:1] in "{[":
            try:
                v = json.dumps(json.loads(v), sort_keys=True)
            except ValueError:
                pass
        out[k] = v
    return out


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def compare(name, got, streamed):
    want = expected(name)
    has_error = any(e["name"] == "exception" for e in want.get("events", []))
    e_attrs = norm(otlp_receiver.attrs(want["attributes"]), has_error)
    g_attrs = norm(otlp_receiver.attrs(got.get("attributes", [])), has_error)
    check(got["name"] == want["name"], f"{name}: span name {got['name']} != {want['name']}")
    check(got.get("kind") == want["kind"], f"{name}: kind {got.get('kind')} != {want['kind']}")
    check(set(g_attrs) == set(e_attrs),
          f"{name}: attribute keys differ: missing {sorted(set(e_attrs) - set(g_attrs))}, extra {sorted(set(g_attrs) - set(e_attrs))}")
    for k, v in e_attrs.items():
        if k == "output.value" and streamed:
            continue  # the stream folded by the Python instrumentation differs in layout
        if k == "input.value":
            v, g = json.loads(v), json.loads(g_attrs[k])
            check(v == g, f"{name}: input.value {g} != {v}")
            continue
        check(g_attrs[k] == v, f"{name}: {k} = {str(g_attrs[k])[:200]!r}, upstream {str(v)[:200]!r}")
    check([e["name"] for e in got.get("events", [])] == [e["name"] for e in want.get("events", [])],
          f"{name}: events {got.get('events')}")
    check(got.get("status", {}).get("code") == want.get("status", {}).get("code"),
          f"{name}: status {got.get('status')} != {want.get('status')}")


def clients(gw, headers=None):
    oa = openai.OpenAI(base_url=gw.url() + "/v1", api_key=CLIENT_KEY, max_retries=0,
                       default_headers=headers or {})
    an = anthropic.Anthropic(base_url=gw.url(), api_key=CLIENT_KEY, max_retries=0,
                             default_headers=headers or {})
    return oa, an


def drive_openai(oa):
    """The upstream's cassette requests through the official SDK."""
    oa.chat.completions.create(model="gpt-5-nano", messages=[{"content": "Hello!", "role": "user"}])
    for _ in oa.chat.completions.create(model="gpt-5-nano", messages=[{"content": "Hello!", "role": "user"}], stream=True):
        pass
    prompt = "def fib(n):\n    if n <= 1:\n        return n\n    else:\n        return fib(n-1) + fib(n-2)"
    oa.completions.create(model="babbage-002", prompt=prompt, max_tokens=25, temperature=0.4, top_p=0.9)
    for _ in oa.completions.create(model="babbage-002", prompt=prompt, max_tokens=25, temperature=0.4, top_p=0.9, stream=True):
        pass
    oa.embeddings.create(model="text-embedding-3-small", input="How do I reset my password?", encoding_format="float")
    try:
        oa.chat.completions.create(model="gpt-5-nano", messages=[{"content": None, "role": "user"}], max_tokens=0, temperature=-0.5)
        raise AssertionError("chat-bad-request succeeded")
    except openai.BadRequestError:
        pass


def request_spans(store, n):
    deadline = time.time() + 15
    while time.time() < deadline:
        with store.lock:
            spans = [s for (_, _, s) in store.spans if s["name"] != "aigw.attempt"]
        if len(spans) >= n:
            return spans
        time.sleep(0.05)
    raise AssertionError(f"expected {n} request spans, got {[s['name'] for s in spans]}")


def scenario_openinference(binary, workdir, up):
    store = otlp_receiver.Store()
    server, port = otlp_receiver.serve_grpc(store)
    gw = Gateway(binary, up.port, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-collector-key={COLLECTOR_KEY}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
        "OTEL_SERVICE_NAME": "aigw-e2e",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        "OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES": "x-tenant-id:tenant.id",
    }, workdir)
    try:
        oa, an = clients(gw)
        drive_openai(oa)
        spans = request_spans(store, 6)
        by_name = {}
        for s in spans:
            by_name.setdefault(s["name"], []).append(s)
        chats = by_name["ChatCompletion"]
        basic = [s for s in chats if "First Token" not in str(s.get("events")) and s.get("status", {}).get("code") == "STATUS_CODE_OK"]
        stream = [s for s in chats if "First Token" in str(s.get("events"))]
        bad = [s for s in chats if s.get("status", {}).get("code") == "STATUS_CODE_ERROR"]
        compare("chat-basic", basic[0], False)
        compare("chat-streaming", stream[0], True)
        compare("chat-bad-request", bad[0], False)
        comps = by_name["Completion"]
        compare("completion-basic", [s for s in comps if not s.get("events")][0], False)
        compare("completion-streaming", [s for s in comps if s.get("events")][0], True)
        compare("embeddings-basic", by_name["CreateEmbeddings"][0], False)
        res, scope, _ = store.spans[0]
        check(res.get("service.name") == "aigw-e2e", f"resource {res}")
        check(res.get("deployment.environment") == "test", f"resource {res}")
        check(scope == "envoyproxy/ai-gateway", f"scope {scope}")
        check(any(h.get("x-collector-key") == COLLECTOR_KEY for (_, _, h) in store.requests),
              "OTEL_EXPORTER_OTLP_HEADERS not sent")

        # Anthropic messages through the official SDK.
        an.messages.create(model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "Hi Claude"}])
        msg = store.wait_spans(lambda s: s["name"] == "Message")[0]
        a = otlp_receiver.attrs(msg["attributes"])
        check(a["llm.system"] == "anthropic" and a["openinference.span.kind"] == "LLM", f"message {a}")
        check(a["llm.input_messages.0.message.content"] == "Hi Claude", f"message {a}")
        check(a["llm.output_messages.0.message.content"] == "Hello from Claude", f"message {a}")
        check(a["llm.token_count.prompt"] == 11 and a["llm.token_count.total"] == 15, f"message {a}")
        check(a["llm.model_name"] == "claude-test-20250101", f"message {a}")

        # The client's trace context is the parent; the upstream sees the attempt span.
        oa2, _ = clients(gw, {"traceparent": TRACEPARENT, "agent-session-id": "session-42",
                              "x-tenant-id": "acme"})
        store.take_all()
        up.seen.clear()
        oa2.chat.completions.create(model="gpt-5-nano", messages=[{"content": "Hello!", "role": "user"}])
        req = store.wait_spans(lambda s: s["name"] == "ChatCompletion")[0]
        att = store.wait_spans(lambda s: s["name"] == "aigw.attempt")[0]
        check(hexid(req["traceId"]) == TRACEPARENT[3:35], f"trace id {hexid(req['traceId'])}")
        check(hexid(req["parentSpanId"]) == TRACEPARENT[36:52], f"parent {hexid(req.get('parentSpanId'))}")
        check(hexid(att["parentSpanId"]) == hexid(req["spanId"]), "attempt is not the request's child")
        check(att["kind"] == "SPAN_KIND_CLIENT", f"attempt kind {att['kind']}")
        aa = otlp_receiver.attrs(att["attributes"])
        check(aa["aigw.backend"].startswith("default/openai") and aa["http.response.status_code"] == 200, f"attempt {aa}")
        sent = up.seen[-1]["traceparent"]
        check(sent == f"00-{TRACEPARENT[3:35]}-{hexid(att['spanId'])}-01", f"upstream traceparent {sent}")
        check(otlp_receiver.attrs(req["attributes"]).get("session.id") == "session-42", "session.id")

        # GenAI metrics over OTLP with the upstream's names and attributes.
        deadline = time.time() + 10
        names = set()
        while time.time() < deadline:
            with store.lock:
                names = {m["name"] for (_, _, m) in store.metrics}
            if {"gen_ai.client.token.usage", "gen_ai.server.request.duration",
                    "gen_ai.server.time_to_first_token"} <= names:
                break
            time.sleep(0.1)
        # (No time per output token: the replayed streams report no usage.)
        check({"gen_ai.client.token.usage", "gen_ai.server.request.duration",
               "gen_ai.server.time_to_first_token"} <= names, f"metrics {names}")
        with store.lock:
            usage = [m for (_, _, m) in store.metrics if m["name"] == "gen_ai.client.token.usage"][-1]
        point = usage["histogram"]["dataPoints"][0]
        pa = otlp_receiver.attrs(point["attributes"])
        for k in ["gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.original.model",
                  "gen_ai.request.model", "gen_ai.response.model", "gen_ai.token.type"]:
            check(k in pa, f"metric attribute {k} missing: {pa}")
        check(usage.get("unit") == "token", f"unit {usage.get('unit')}")
        # The header-mapped attribute, on OTLP and on the Prometheus series alike
        # (upstream's otelprom names it tenant_id).
        deadline = time.time() + 10
        tenants = set()
        while time.time() < deadline and "acme" not in tenants:
            with store.lock:
                tenants = {otlp_receiver.attrs(p["attributes"]).get("tenant.id")
                           for (_, _, m) in store.metrics if m["name"] == "gen_ai.server.request.duration"
                           for p in m["histogram"]["dataPoints"]}
            time.sleep(0.1)
        check("acme" in tenants, f"OTLP metrics without tenant.id=acme: {tenants}")
        prom = gw.metrics()
        tenant_lines = [l for l in prom.splitlines()
                        if l.startswith("gen_ai_server_request_duration_seconds_count{") and 'tenant_id="acme"' in l]
        check(tenant_lines, f"no Prometheus series with tenant_id=\"acme\":\n{prom}")
        log = gw.stop()
    finally:
        if gw.proc.poll() is None:
            gw.stop()
        server.stop(0)
    scan("openinference", store, log)


def scan(label, store, log):
    blob = b"".join(store.raw)
    for s in SECRETS:
        check(s.encode() not in blob, f"{label}: secret {s[:8]}... in exported telemetry")
        check(s not in log, f"{label}: secret {s[:8]}... in the gateway's log")


def scenario_hidden(binary, workdir, up):
    store = otlp_receiver.Store()
    server, port = otlp_receiver.serve_http(store)
    gw = Gateway(binary, up.port, {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{port}/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OPENINFERENCE_HIDE_INPUTS": "true",
        "OPENINFERENCE_HIDE_OUTPUTS": "true",
    }, workdir)
    try:
        oa, _ = clients(gw)
        oa.chat.completions.create(model="gpt-5-nano", messages=[{"content": "Hello!", "role": "user"}])
        s = store.wait_spans(lambda s: s["name"] == "ChatCompletion")[0]
        a = otlp_receiver.attrs(s["attributes"])
        check(a["input.value"] == "__REDACTED__" and a["output.value"] == "__REDACTED__", f"hidden {a}")
        check(not any(k.startswith("llm.input_messages") or k.startswith("llm.output_messages") for k in a), f"hidden {a}")
        check("Hello!" not in json.dumps(a), "content leaked")
        check(all(p == "http" for (p, _, _) in store.requests), "not HTTP/protobuf")
        log = gw.stop()
    finally:
        if gw.proc.poll() is None:
            gw.stop()
        server.shutdown()
    scan("hidden", store, log)


def scenario_genai(binary, workdir, up):
    for capture in (False, True):
        store = otlp_receiver.Store()
        server, port = otlp_receiver.serve_http(store)
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "AI_GATEWAY_TRACING_SEMCONV": "gen_ai",
        }
        if capture:
            env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
        gw = Gateway(binary, up.port, env, workdir)
        try:
            oa, an = clients(gw)
            oa.chat.completions.create(model="gpt-5-nano", messages=[{"content": "Hello!", "role": "user"}])
            s = store.wait_spans(lambda s: s["name"] == "chat gpt-5-nano")[0]
            check(s["kind"] == "SPAN_KIND_CLIENT", f"kind {s['kind']}")
            a = otlp_receiver.attrs(s["attributes"])
            want = {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-5-nano", "gen_ai.response.model": "gpt-5-nano-2025-08-07",
                "gen_ai.response.id": "chatcmpl-C4Gm9xikLXbgE8He0BHWeoM03aa72",
                "gen_ai.usage.input_tokens": 8, "gen_ai.usage.output_tokens": 377,
                "gen_ai.usage.reasoning.output_tokens": 320, "gen_ai.response.finish_reasons": ["stop"],
            }
            for k, v in want.items():
                check(a.get(k) == v, f"gen_ai {k} = {a.get(k)!r}, want {v!r}")
            check(("gen_ai.input.messages" in a) == capture and ("gen_ai.output.messages" in a) == capture,
                  f"content capture {capture}: {sorted(a)}")
            if capture:
                check(json.loads(a["gen_ai.input.messages"]) == [{"role": "user", "parts": [{"type": "text", "content": "Hello!"}]}],
                      a["gen_ai.input.messages"])
            an.messages.create(model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
            m = store.wait_spans(lambda s: s["name"] == "chat claude-test")[0]
            ma = otlp_receiver.attrs(m["attributes"])
            check(ma["gen_ai.provider.name"] == "anthropic" and ma["gen_ai.request.max_tokens"] == 64, f"messages {ma}")
            check(ma["gen_ai.response.finish_reasons"] == ["end_turn"], f"messages {ma}")
            check(not store.metrics, "OTEL_METRICS_EXPORTER=none still exported metrics")
            log = gw.stop()
        finally:
            if gw.proc.poll() is None:
                gw.stop()
            server.shutdown()
        scan(f"gen_ai capture={capture}", store, log)


def scenario_receiver_down(binary, workdir, up):
    dead = free_port()
    gw = Gateway(binary, up.port, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{dead}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_BSP_MAX_QUEUE_SIZE": "1",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
    }, workdir)
    try:
        oa, _ = clients(gw)

        def one(_):
            r = oa.chat.completions.create(model="gpt-5-nano", messages=[{"content": "Hello!", "role": "user"}])
            return r.choices[0].message.content

        started = time.time()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(200)))
        took = time.time() - started
        check(all(answers), "a request failed with the receiver down")
        check(took < 30, f"200 requests took {took:.1f}s with the receiver down")
        text = gw.metrics()
        line = [l for l in text.splitlines() if l.startswith("aigw_telemetry_spans_dropped_total")]
        check(line and float(line[0].split()[-1]) > 0, f"no dropped spans counted: {line}")
    finally:
        gw.stop()


def scenario_http_json(binary, workdir, up):
    """OTEL_EXPORTER_OTLP_PROTOCOL=http/json: spans and metrics as OTLP/JSON, decoded by
    the receiver with the official messages."""
    store = otlp_receiver.Store()
    server, port = otlp_receiver.serve_http(store)
    gw = Gateway(binary, up.port, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
    }, workdir)
    try:
        oa, _ = clients(gw)
        oa.chat.completions.create(model="gpt-5-nano", messages=[{"content": "Hello!", "role": "user"}])
        s = store.wait_spans(lambda s: s["name"] == "ChatCompletion")[0]
        a = otlp_receiver.attrs(s["attributes"])
        check(a["llm.model_name"] == "gpt-5-nano-2025-08-07" and a["llm.token_count.prompt"] == 8, f"json span {a}")
        check(len(hexid(s["traceId"])) == 32 and int(hexid(s["traceId"]), 16) != 0, f"trace id {s['traceId']}")
        deadline = time.time() + 15
        while time.time() < deadline and not store.metrics:
            time.sleep(0.1)
        check(any(m["name"] == "gen_ai.client.token.usage" for (_, _, m) in store.metrics), "no JSON metrics")
        check({p for (p, _, _) in store.requests} == {"http/json"}, f"not OTLP/JSON: {store.requests}")
        log = gw.stop()
    finally:
        if gw.proc.poll() is None:
            gw.stop()
        server.shutdown()
    scan("http/json", store, log)


def scenario_console(binary, workdir, up):
    """OTEL_TRACES_EXPORTER=console and OTEL_METRICS_EXPORTER=console: spans and
    metrics as JSON lines on standard output."""
    gw = Gateway(binary, up.port, {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
        "OTEL_AIGW_METRICS_REQUEST_HEADER_ATTRIBUTES": "x-tenant-id:tenant.id",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OPENINFERENCE_HIDE_INPUTS": "true",
    }, workdir)
    try:
        oa, _ = clients(gw, {"x-tenant-id": "blue"})
        oa.chat.completions.create(model="gpt-5-nano", messages=[{"content": "Hello!", "role": "user"}])
        deadline = time.time() + 15
        spans = []
        while time.time() < deadline and not spans:
            time.sleep(0.1)
            spans = [json.loads(line) for line in open(gw.log_path) if line.startswith('{"') and '"traceId"' in line]
        check(spans, "no span on standard output")
        chat = [x for x in spans if x["name"] == "ChatCompletion"]
        check(chat and chat[0]["kind"] == "Internal" and chat[0]["status"]["code"] == "Ok", f"console {spans}")
        a = chat[0]["attributes"]
        check(a["input.value"] == "__REDACTED__" and a["llm.token_count.prompt"] == 8, f"console attrs {a}")
        check(chat[0]["resource"].get("service.name") == "ai-gateway", f"resource {chat[0]['resource']}")
        attempts = [x for x in spans if x["name"] == "aigw.attempt"]
        check(attempts and attempts[0]["parentSpanId"] == chat[0]["spanId"], f"attempt {attempts}")
        # Metrics: one line per instrument and export, the header-mapped attribute on it.
        deadline = time.time() + 15
        durations = []
        while time.time() < deadline and not durations:
            time.sleep(0.1)
            durations = [json.loads(line) for line in open(gw.log_path)
                         if line.startswith('{"') and '"dataPoints"' in line
                         and '"gen_ai.server.request.duration"' in line]
        check(durations, "no gen_ai.server.request.duration line on standard output")
        d = durations[-1]
        check(d["unit"] == "s" and d["kind"] == "histogram" and d["scope"] == "envoyproxy/ai-gateway", f"metric {d}")
        p = d["dataPoints"][0]
        check(p["count"] == 1 and p["attributes"].get("gen_ai.operation.name") == "chat", f"point {p}")
        check(p["attributes"].get("tenant.id") == "blue", f"point attributes {p['attributes']}")
        check(len(p["bucketCounts"]) == len(p["explicitBounds"]) + 1, f"buckets {p}")
        usage = [json.loads(line) for line in open(gw.log_path)
                 if line.startswith('{"') and '"gen_ai.client.token.usage"' in line]
        check(usage and usage[-1]["unit"] == "token", f"token usage {usage[-1:]}")
        prom = gw.metrics()
        check('tenant_id="blue"' in prom, f"Prometheus without tenant_id=\"blue\":\n{prom}")
        log = gw.stop()
    finally:
        if gw.proc.poll() is None:
            gw.stop()
    for sec in SECRETS:
        check(sec not in log, f"console: secret {sec[:8]}... on standard output")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def scenario_memory_bound(binary, workdir, up):
    """Sustained load with the receiver down and the default queue (2048 spans): the
    gateway's resident memory levels off once the queue is full; drops are counted.
    Prints the figures (docs/benchmarks.md)."""
    # A receiver that hangs (connections accepted by the kernel, never answered): every
    # export waits out its timeout, so the queue fills — worse than a refused port,
    # where exports fail at once and the queue drains.
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(1024)
    gw = Gateway(binary, up.port, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{hung.getsockname()[1]}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
    }, workdir)
    try:
        oa, _ = clients(gw)
        long_prompt = "Hello! " * 400

        def one(_):
            r = oa.chat.completions.create(model="gpt-5-nano", messages=[{"content": long_prompt, "role": "user"}])
            return r.choices[0].message.content

        samples = []
        with ThreadPoolExecutor(8) as pool:
            for _ in range(4):
                started = time.time()
                answers = list(pool.map(one, range(1500)))
                check(all(answers), "a request failed with the receiver down")
                samples.append((rss_kib(gw.proc.pid), 1500 / (time.time() - started)))
        text = gw.metrics()
        line = [l for l in text.splitlines() if l.startswith("aigw_telemetry_spans_dropped_total")]
        dropped = float(line[0].split()[-1]) if line else 0
        print(f"memory_bound: rss_kib after each 1500 requests={[s[0] for s in samples]} "
              f"req_per_s={[round(s[1]) for s in samples]} dropped={dropped:.0f}", flush=True)
        check(dropped > 0, "no dropped spans counted")
        # Once the queue is full (2048 request + attempt spans: the first 1500
        # requests), memory must level off: the last 3000 requests add < 8 MiB.
        growth = samples[-1][0] - samples[1][0]
        check(growth < 8 * 1024, f"RSS grew {growth} KiB over 3000 requests with the receiver down")
    finally:
        gw.stop()
        hung.close()


def main():
    global Gateway
    binary = sys.argv[1]
    if "extproc" in os.path.basename(binary):
        Gateway = EnvoyGateway
    only = sys.argv[2:] or ["openinference", "hidden", "genai", "receiver_down"]
    up = Upstream()
    with tempfile.TemporaryDirectory() as workdir:
        for name in only:
            globals()[f"scenario_{name}"](binary, workdir, up)
            print(f"ok {name}", flush=True)


if __name__ == "__main__":
    main()
