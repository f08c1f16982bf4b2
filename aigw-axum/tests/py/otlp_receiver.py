"""A small OTLP receiver for the telemetry tests: gRPC (TraceService/MetricsService
Export) and HTTP/protobuf (POST /v1/traces, /v1/metrics), decoded with the official
`opentelemetry-proto` messages, exactly as a collector would.

Spans are kept as dicts in OTLP/JSON form (`MessageToDict`), metrics likewise; the raw
request bytes are kept too, for the secret scan.
"""

import base64
import json
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf.json_format import MessageToDict, Parse
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.spans = []  # (resource attrs dict, scope name, span dict)
        self.metrics = []  # (resource attrs, scope, metric dict)
        self.raw = []  # every request body, bytes
        self.requests = []  # (protocol, path, metadata/headers dict)

    def add_traces(self, req, raw, proto, headers):
        with self.lock:
            self.raw.append(raw)
            self.requests.append((proto, "traces", headers))
            for rs in req.resource_spans:
                res = attrs(MessageToDict(rs.resource).get("attributes", []))
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append((res, ss.scope.name, MessageToDict(s)))

    def add_metrics(self, req, raw, proto, headers):
        with self.lock:
            self.raw.append(raw)
            self.requests.append((proto, "metrics", headers))
            for rm in req.resource_metrics:
                res = attrs(MessageToDict(rm.resource).get("attributes", []))
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        self.metrics.append((res, sm.scope.name, MessageToDict(m)))

    def wait_spans(self, pred, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                found = [s for (_, _, s) in self.spans if pred(s)]
            if found:
                return found
            time.sleep(0.05)
        with self.lock:
            names = [s.get("name") for (_, _, s) in self.spans]
        raise AssertionError(f"no matching span within {timeout}s; received: {names}")

    def take_all(self):
        with self.lock:
            out = list(self.spans)
            self.spans.clear()
            return out


def value(v):
    """An OTLP/JSON AnyValue as a Python value."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return v["doubleValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "arrayValue" in v:
        return [value(x) for x in v["arrayValue"].get("values", [])]
    return None


def attrs(kvs):
    return {kv["key"]: value(kv.get("value", {})) for kv in kvs}


class _Trace(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store):
        self.store = store

    def Export(self, request, context):
        md = {k: v for (k, v) in context.invocation_metadata()}
        self.store.add_traces(request, request.SerializeToString(), "grpc", md)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, store):
        self.store = store

    def Export(self, request, context):
        md = {k: v for (k, v) in context.invocation_metadata()}
        self.store.add_metrics(request, request.SerializeToString(), "grpc", md)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def otlp_json_ids(v):
    """OTLP/JSON writes trace and span ids in hex where the protobuf JSON mapping has
    base64: convert them so the official messages parse the request."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(x, str):
                out[k] = base64.b64encode(bytes.fromhex(x)).decode() if x else ""
            else:
                out[k] = otlp_json_ids(x)
        return out
    if isinstance(v, list):
        return [otlp_json_ids(x) for x in v]
    return v


def serve_grpc(store, port=0):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Trace(store), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(store), server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, port


def serve_http(store, port=0):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for (k, v) in self.headers.items()}
            is_json = headers.get("content-type", "").startswith("application/json")
            proto = "http/json" if is_json else "http"

            def decode(msg):
                if is_json:
                    Parse(json.dumps(otlp_json_ids(json.loads(body))), msg)
                else:
                    msg.ParseFromString(body)
                return msg

            if self.path == "/v1/traces":
                req = decode(trace_service_pb2.ExportTraceServiceRequest())
                store.add_traces(req, body, proto, headers)
                out = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            elif self.path == "/v1/metrics":
                req = decode(metrics_service_pb2.ExportMetricsServiceRequest())
                store.add_metrics(req, body, proto, headers)
                out = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
            else:
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


if __name__ == "__main__":
    # Standalone: `otlp_receiver.py GRPC_PORT HTTP_PORT` serves both until SIGTERM, then
    # prints how many spans and metric points it received (for the overhead benchmark).
    import signal
    import sys

    store = Store()
    grpc_server, _ = serve_grpc(store, int(sys.argv[1]))
    http_server, _ = serve_http(store, int(sys.argv[2]))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    with store.lock:
        print(f"spans={len(store.spans)} metrics={len(store.metrics)}", flush=True)
    grpc_server.stop(0)
