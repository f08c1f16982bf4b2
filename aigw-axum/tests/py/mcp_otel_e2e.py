"""MCP request spans over OTLP: two MCP servers built with the official `mcp` Python SDK
behind one MCPRoute, driven by the SDK's own client through `aigw run` or the MCP
listener of `aigw-extproc`, the spans received by the OTLP receiver
(otlp_receiver.py, the official `opentelemetry-proto` messages) and checked against
upstream's MCP vocabularies (`internal/tracing/mcp_legacy.go` under the default
convention, `mcp_otel.go` under AI_GATEWAY_TRACING_SEMCONV=gen_ai): span names,
request attributes, the `route to backend` events, errors with upstream's error
classes, the client's traceparent as parent, and one child span per backend request
whose context reaches the backend in its `traceparent` header and `_meta`.

usage: mcp_otel_e2e.py aigw|extproc|embed BINARY openinference|gen_ai|gen_ai_content
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

import httpx2  # noqa: E402
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402

import otlp_receiver  # noqa: E402

HERE = os.path.dirname(__file__)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
META_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, log):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited: {open(log).read() if log else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def config(alpha, beta):
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: aigw
  listeners: [{{name: http, protocol: HTTP, port: 1975}}]
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {{name: tools, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  backendRefs:
    - name: alpha
      group: gateway.envoyproxy.io
      kind: Backend
      toolSelector: {{excludeRegex: ["^secret_"]}}
    - name: beta
      group: gateway.envoyproxy.io
      kind: Backend
---
apiVersion: aigateway.envoyproxy.io/v1beta1
kind: MCPRoute
metadata: {{name: guarded, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  path: /guarded
  backendRefs:
    - {{name: beta, group: gateway.envoyproxy.io, kind: Backend}}
  securityPolicy:
    apiKeyAuth:
      credentialRefs: [{{name: mcp-keys}}]
      extractFrom: [{{headers: [x-api-key]}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: mcp-keys, namespace: default}}
stringData: {{team-a: key-aaa}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: alpha, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {alpha}}}}}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: beta, namespace: default}}
spec:
  endpoints: [{{ip: {{address: 127.0.0.1, port: {beta}}}}}]
"""


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def text(result):
    return [c.text for c in result.content if getattr(c, "type", "") == "text"]


async def drive(url):
    """The SDK client's session; the tools/call of `trace_context` carries a
    traceparent in `_meta`, every request one in the HTTP header."""
    out = {}
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "x-tenant": "acme"}
    async with httpx2.AsyncClient(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                out["tools"] = sorted(t.name for t in (await s.list_tools()).tools)
                out["echo"] = text(await s.call_tool("alpha__echo", {"text": "hi"}))
                meta = {"traceparent": f"00-{META_TRACE_ID}-b7ad6b7169203331-01"}
                out["trace"] = json.loads(text(await s.call_tool("beta__trace_context", {}, meta=meta))[0])
                try:
                    await s.call_tool("alpha__secret_admin", {})
                    out["hidden"] = "no error"
                except MCPError as e:
                    out["hidden"] = e.error.message
                g = await s.get_prompt("beta__greet", {"who": "ann"})
                out["prompt"] = [m.content.text for m in g.messages]
    return out


def attrs(span):
    return otlp_receiver.attrs(span.get("attributes", []))


def events(span, name):
    return [otlp_receiver.attrs(e.get("attributes", [])) for e in span.get("events", []) if e["name"] == name]


def hexid(b64):
    import base64
    return base64.b64decode(b64).hex()


def one(spans, name, pred=lambda s: True):
    found = [s for s in spans if s["name"] == name and pred(s)]
    check(found, f"no span {name!r}; got {[s['name'] for s in spans]}")
    return found[0]


def children(spans, parent):
    return [s for s in spans if s.get("parentSpanId") == parent["spanId"] and s["name"] == "aigw.mcp.backend"]


def check_common(spans, gen_ai):
    """What both vocabularies share: kinds, parents, statuses, backend spans."""
    names = {
        "init": "initialize" if gen_ai else "Initialize",
        "list": "tools/list" if gen_ai else "ListTools",
        "echo": "tools/call alpha__echo" if gen_ai else "CallTool",
        "trace": "tools/call beta__trace_context" if gen_ai else "CallTool",
        "hidden": "tools/call alpha__secret_admin" if gen_ai else "CallTool",
        "prompt": "prompts/get beta__greet" if gen_ai else "GetPrompt",
    }
    tool = "gen_ai.tool.name" if gen_ai else "mcp.tool.name"

    def by_tool(n):
        return lambda s: attrs(s).get(tool) == n

    init = one(spans, names["init"])
    lst = one(spans, names["list"])
    echo = one(spans, names["echo"], by_tool("alpha__echo"))
    trace = one(spans, names["trace"], by_tool("beta__trace_context"))
    hidden = one(spans, names["hidden"], by_tool("alpha__secret_admin"))
    prompt = one(spans, names["prompt"])
    for s in (init, lst, echo, trace, hidden, prompt):
        check(s["kind"] == "SPAN_KIND_CLIENT", f"{s['name']}: kind {s['kind']}")
        a = attrs(s)
        check(a.get("mcp.protocol.version") == "2025-06-18", f"{s['name']}: {a}")
    # The client's traceparent header is the parent; a `_meta` traceparent wins over it.
    for s in (init, lst, echo, hidden, prompt):
        check(hexid(s["traceId"]) == TRACE_ID, f"{s['name']}: trace id {hexid(s['traceId'])}")
        check(hexid(s["parentSpanId"]) == PARENT_ID, f"{s['name']}: parent {s.get('parentSpanId')}")
    check(hexid(trace["traceId"]) == META_TRACE_ID, f"_meta traceparent not the parent: {hexid(trace['traceId'])}")
    # Statuses: OK, and ERROR with upstream's exception event for the hidden tool.
    for s in (init, lst, echo, trace, prompt):
        check(s.get("status", {}).get("code") == "STATUS_CODE_OK", f"{s['name']}: status {s.get('status')}")
    check(hidden.get("status", {}).get("code") == "STATUS_CODE_ERROR", f"hidden: status {hidden.get('status')}")
    exc = events(hidden, "exception")
    check(exc and exc[0]["exception.type"] == "invalid_param", f"hidden: exception {exc}")
    check("invalid tool name" in exc[0]["exception.message"], f"hidden: {exc}")
    note = one(spans, "notifications/initialized")
    check(not {"mcp.request.id", "jsonrpc.request.id"} & set(attrs(note)), f"notification id: {attrs(note)}")
    # route to backend: one per backend at initialize (new sessions), one per call.
    routed = events(init, "route to backend")
    check(sorted(e["mcp.backend.name"] for e in routed) == ["alpha", "beta"], f"initialize routes: {routed}")
    check(all(e["mcp.session.new"] is True and e["mcp.session.id"] for e in routed), f"{routed}")
    check([e["mcp.backend.name"] for e in events(echo, "route to backend")] == ["alpha"], "echo route")
    check(sorted(e["mcp.backend.name"] for e in events(lst, "route to backend")) == ["alpha", "beta"], "list routes")
    check(not any(e["mcp.session.new"] for e in events(lst, "route to backend")), "list: session.new")
    # Backend child spans: two per initialize (initialize + notifications/initialized)
    # per backend, one per backend of the list, one for the call.
    ib = children(spans, init)
    check(sorted(attrs(c)["mcp.backend.name"] for c in ib) == ["alpha", "alpha", "beta", "beta"], f"init children {ib}")
    check(sorted(attrs(c)["mcp.method.name"] for c in ib).count("notifications/initialized") == 2, "init children")
    check(sorted(attrs(c)["mcp.backend.name"] for c in children(spans, lst)) == ["alpha", "beta"], "list children")
    ec = children(spans, echo)
    check(len(ec) == 1 and attrs(ec[0])["mcp.backend.name"] == "alpha", f"echo children {ec}")
    check(attrs(ec[0])["http.response.status_code"] == 200, f"echo child {attrs(ec[0])}")
    check(not children(spans, hidden), "a refused call reached a backend")
    tc = children(spans, trace)
    check(len(tc) == 1, f"trace children {tc}")
    return {"init": init, "list": lst, "echo": echo, "trace": trace, "hidden": hidden, "prompt": prompt,
            "trace_child": tc[0]}


def start(kind, binary, workdir, env):
    a, b = free_port(), free_port()
    py = sys.executable
    procs = []
    for name, port, extra in (("alpha", a, []), ("beta", b, ["--json"])):
        p = subprocess.Popen([py, os.path.join(HERE, "mcp_backend.py"), name, str(port), *extra],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        wait_port(port, p, None)
    cfg = os.path.join(workdir, "mcp.yaml")
    with open(cfg, "w") as f:
        f.write(config(a, b))
    listen, admin = free_port(), free_port()
    full = {k: v for (k, v) in os.environ.items() if not k.startswith("OTEL_")}
    full.update({"RUST_LOG": "info"})
    full.update(env)
    log_path = os.path.join(workdir, "gateway.log")
    log = open(log_path, "w")
    if kind == "embed":
        # The axum embedding example: McpService mounted in an application's router.
        args = [binary, "--mcp", cfg, "--listen", f"127.0.0.1:{listen}"]
        port = listen
    elif kind == "aigw":
        args = [binary, "run", cfg, "--listen", f"127.0.0.1:{listen}", "--admin", f"127.0.0.1:{admin}",
                "--mcp-session-seed", "seed", "--mcp-session-iterations", "1000"]
        port = listen
    else:
        grpc = free_port()
        args = [binary, "--config", cfg, "--listen", f"127.0.0.1:{grpc}", "--admin", f"127.0.0.1:{admin}",
                "--mcp-addr", f"127.0.0.1:{listen}", "--mcp-session-seed", "seed",
                "--mcp-session-iterations", "1000"]
        port = listen
    if kind != "embed":
        args += ["--audit-log", os.path.join(workdir, "audit.jsonl")]
    gw = subprocess.Popen(args, env=full, stdout=log, stderr=subprocess.STDOUT)
    procs.append(gw)
    wait_port(port, gw, log_path)
    return procs, f"http://127.0.0.1:{port}/mcp", log_path


def scenario(kind, binary, name):
    gen_ai = name.startswith("gen_ai")
    store = otlp_receiver.Store()
    server, port = otlp_receiver.serve_grpc(store)
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_AIGW_SPAN_REQUEST_HEADER_ATTRIBUTES": "x-tenant:tenant.id",
    }
    if gen_ai:
        env["AI_GATEWAY_TRACING_SEMCONV"] = "gen_ai"
    if name == "gen_ai_content":
        env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
    with tempfile.TemporaryDirectory() as workdir:
        procs, url, log = start(kind, binary, workdir, env)
        try:
            out = asyncio.run(drive(url))
            check(out["echo"] == ["alpha: hi"], f"echo: {out}")
            check("invalid tool name" in out["hidden"], f"hidden: {out}")
            # Spans end when the response is done: wait for the last request's.
            store.wait_spans(lambda s: s["name"] in ("GetPrompt", "prompts/get beta__greet"))
            time.sleep(0.5)
            spans = [s for (_, _, s) in store.take_all()]
            got = check_common(spans, gen_ai)
            # The backend saw the backend span's context, in the header and `_meta`.
            child = got["trace_child"]
            want = f"00-{hexid(child['traceId'])}-{hexid(child['spanId'])}-01"
            check(out["trace"]["header"] == want, f"backend traceparent header {out['trace']} != {want}")
            check(out["trace"]["meta"] == want, f"backend _meta traceparent {out['trace']} != {want}")
            check(attrs(got["echo"]).get("tenant.id") == "acme", f"header mapping: {attrs(got['echo'])}")
            if gen_ai:
                check_gen_ai(got, name == "gen_ai_content")
            else:
                check_legacy(got)
                if kind != "embed":
                    check_audit(url, workdir)
        except BaseException:
            sys.stderr.write(open(log).read())
            raise
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=20)
            server.stop(0)


def check_audit(url, workdir):
    """A client refused by the route's own apiKeyAuth is in the audit trail: address,
    scheme, path, route, reason — and not the key it presented."""
    import urllib.error
    import urllib.request
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "probe", "version": "1"}}}).encode()
    req = urllib.request.Request(url.replace("/mcp", "/guarded"), data=body, method="POST", headers={
        "content-type": "application/json", "accept": "application/json, text/event-stream",
        "x-api-key": "wrong-key-31337"})
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a wrong API key was admitted")
    except urllib.error.HTTPError as e:
        check(e.code == 401, f"guarded: {e.code}")
    path = os.path.join(workdir, "audit.jsonl")
    deadline = time.time() + 5
    lines = []
    while time.time() < deadline:
        lines = [json.loads(line) for line in open(path) if line.strip()]
        if any(x["event"] == "auth.failure" for x in lines):
            break
        time.sleep(0.1)
    fails = [x for x in lines if x["event"] == "auth.failure"]
    check(len(fails) == 1, f"audit: {lines}")
    f = fails[0]
    check(f["route"] == "default/guarded" and f["path"] == "/guarded", f"audit route: {f}")
    check(f["scheme"] == "x-api-key" and f["peer"] == "127.0.0.1" and f["reason"], f"audit: {f}")
    check("wrong-key-31337" not in open(path).read(), "the presented key is in the audit trail")


def check_legacy(got):
    init, echo, lst, hidden = got["init"], got["echo"], got["list"], got["hidden"]
    a = attrs(init)
    check(a["mcp.transport"] == "http" and a["mcp.method.name"] == "initialize", f"initialize: {a}")
    check(a["mcp.client.name"] == "mcp" and "mcp.client.version" in a, f"initialize client: {a}")
    check("mcp.request.id" in a and "jsonrpc.request.id" not in a, f"initialize ids: {a}")
    e = attrs(echo)
    check(e["mcp.tool.name"] == "alpha__echo" and e["mcp.method.name"] == "tools/call", f"echo: {e}")
    # Signals only the gen_ai vocabulary records.
    for s in (init, lst, echo):
        sa = attrs(s)
        check("mcp.session.id" not in sa and "mcp.tools.count" not in sa, f"{s['name']}: {sa}")
        check(not any(ev["name"].endswith("aggregation begin") for ev in s.get("events", [])), "aggregation")
        check("gen_ai.tool.call.arguments" not in sa, "arguments recorded")
    check("error.type" not in attrs(hidden), "legacy error.type")
    check(attrs(got["prompt"])["mcp.prompt.name"] == "beta__greet", "prompt name")


def check_gen_ai(got, content):
    init, echo, lst, hidden = got["init"], got["echo"], got["list"], got["hidden"]
    a = attrs(init)
    check(a["network.transport"] == "tcp" and a["network.protocol.name"] == "http", f"initialize: {a}")
    check("jsonrpc.request.id" in a and "mcp.request.id" not in a, f"initialize ids: {a}")
    check(a.get("mcp.session.id"), f"initialize: no client session {a}")
    e = attrs(echo)
    check(e["gen_ai.operation.name"] == "execute_tool" and e["gen_ai.tool.name"] == "alpha__echo", f"echo: {e}")
    check(e.get("mcp.session.id") == a["mcp.session.id"], "client session differs")
    la = attrs(lst)
    check(la.get("mcp.tools.count", 0) >= 5, f"tools/list count: {la}")
    evs = [ev["name"] for ev in lst.get("events", [])]
    check("tools/list aggregation begin" in evs and "tools/list aggregation end" in evs, f"list events {evs}")
    h = attrs(hidden)
    check(h.get("mcp.session.id") == a["mcp.session.id"], f"hidden: no client session {h}")
    check(h["error.type"] == "invalid_param" and h["rpc.response.status_code"] == -32602, f"hidden: {h}")
    check(attrs(got["prompt"])["gen_ai.prompt.name"] == "beta__greet", "prompt name")
    if content:
        check(json.loads(e["gen_ai.tool.call.arguments"]) == {"text": "hi"}, f"arguments: {e}")
        check("alpha: hi" in e["gen_ai.tool.call.result"], f"result: {e}")
    else:
        check("gen_ai.tool.call.arguments" not in e and "gen_ai.tool.call.result" not in e, f"content: {e}")


def main():
    kind, binary, name = sys.argv[1], sys.argv[2], sys.argv[3]
    scenario(kind, binary, name)
    print(f"ok: {kind} {name}")


if __name__ == "__main__":
    main()
