"""A checking hop in front of the simulator for the Bedrock and GCP token requests the
gateway sends: every Bedrock request's SigV4 signature is recomputed with botocore and
its body validated against botocore's `bedrock-runtime` service model (the Agent
Runtime's `POST /rerank` against `bedrock-agent-runtime`), then forwarded to the
simulator; `POST /token` answers a GCP service-account token exchange.

usage: bedrock_botocore_proxy.py PORT UPSTREAM_HOST:PORT ACCESS_KEY SECRET REGION LOG

Each Bedrock request appends one JSON line to LOG: {"op", "model", "sigv4", "errors",
"host"} (the Host the signature covers).
A request whose signature or body fails is answered 400/403 in Bedrock's error shape.
"""

import datetime
import http.client
import http.server
import json
import socketserver
import sys
import urllib.parse
from unittest import mock

import botocore.auth
import botocore.credentials
import botocore.session
from botocore.awsrequest import AWSRequest
from botocore.validate import ParamValidator

PORT, UPSTREAM, ACCESS_KEY, SECRET, REGION, LOG = sys.argv[1:7]
PORT = int(PORT)
MODEL = botocore.session.get_session().get_service_model("bedrock-runtime")
AGENT = botocore.session.get_session().get_service_model("bedrock-agent-runtime")
OPS = {
    "converse": "Converse",
    "converse-stream": "ConverseStream",
    "invoke": "InvokeModel",
    "invoke-with-response-stream": "InvokeModelWithResponseStream",
    "count-tokens": "CountTokens",
}


def signature_ok(method, path, headers, body):
    """Recomputes the signature as AWS does (the canonical URI encodes the path again)."""
    auth = headers.get("authorization", "")
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";") if "SignedHeaders=" in auth else []
    when = datetime.datetime.strptime(headers.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ")
    req = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{path}",
        data=body,
        headers={h: headers[h] for h in signed if h in headers and h != "x-amz-date"},
    )
    creds = botocore.credentials.Credentials(ACCESS_KEY, SECRET, headers.get("x-amz-security-token"))
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        botocore.auth.SigV4Auth(creds, "bedrock", REGION).add_auth(req)
    return req.headers["Authorization"] == auth


def body_errors(op, model_id, headers, body):
    """botocore's parameter validation of the request against the service model."""
    if op == "Rerank":
        shape = AGENT.operation_model(op).input_shape
        report = ParamValidator().validate(json.loads(body), shape)
        return report.generate_report() if report.has_errors() else ""
    shape = MODEL.operation_model(op).input_shape
    if op.startswith("Converse") or op == "CountTokens":
        params = json.loads(body)
        params["modelId"] = model_id
    else:
        params = {"modelId": model_id, "body": body}
        for name, member in (("contentType", "content-type"), ("accept", "accept")):
            if member in headers:
                params[name] = headers[member]
        json.loads(body)  # InvokeModel bodies are the model's own JSON
    report = ParamValidator().validate(params, shape)
    return report.generate_report() if report.has_errors() else ""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/token":
            token = {"access_token": "ya29.checking-proxy", "expires_in": 3600, "token_type": "Bearer"}
            return self.reply(200, json.dumps(token).encode())
        parts = self.path.split("?")[0].split("/")
        if self.path == "/rerank":
            op, model_id = "Rerank", ""
        elif len(parts) != 4 or parts[1] != "model" or parts[3] not in OPS:
            return self.reply(404, b'{"message":"unknown path"}')
        else:
            op, model_id = OPS[parts[3]], urllib.parse.unquote(parts[2])
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            sig = signature_ok("POST", self.path, headers, body)
            errors = body_errors(op, model_id, headers, body)
        except Exception as e:  # a malformed request is a failed check, not a crash
            sig, errors = False, f"{type(e).__name__}: {e}"
        with open(LOG, "a") as f:
            f.write(json.dumps({"op": op, "model": model_id, "sigv4": sig, "errors": errors,
                                "host": headers.get("host", "")}) + "\n")
        if not sig:
            msg = {"message": "The request signature we calculated does not match the signature you provided."}
            return self.reply(403, json.dumps(msg).encode(), extra=[("x-amzn-errortype", "InvalidSignatureException")])
        if errors:
            return self.reply(400, json.dumps({"message": errors}).encode(), extra=[("x-amzn-errortype", "ValidationException")])
        conn = http.client.HTTPConnection(UPSTREAM, timeout=60)
        fwd = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request("POST", self.path, body=body, headers=fwd)
        resp = conn.getresponse()
        data = resp.read()
        keep = [(k, v) for k, v in resp.getheaders() if k.lower().startswith("x-amzn")]
        self.reply(resp.status, data, resp.getheader("content-type", "application/json"), keep)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", PORT), Handler)
    print("ready", flush=True)
    server.serve_forever()
