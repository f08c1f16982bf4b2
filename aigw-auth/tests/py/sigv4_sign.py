"""Signs one request with botocore's SigV4Auth at a frozen clock.

Input (stdin, JSON): method, url, body_b64, access_key, secret_key, token (or null),
region, service, time ("YYYYmmddTHHMMSSZ"). Output (stdout, JSON): the headers botocore
added (Authorization, X-Amz-Date and X-Amz-Security-Token when a token is given).
"""
import base64
import datetime
import json
import sys
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

cases = json.load(sys.stdin)
out = []
for c in cases:
    fixed = datetime.datetime.strptime(c["time"], "%Y%m%dT%H%M%SZ")
    creds = Credentials(c["access_key"], c["secret_key"], c.get("token"))
    req = AWSRequest(method=c["method"], url=c["url"], data=base64.b64decode(c["body_b64"]))
    with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
        SigV4Auth(creds, c["service"], c["region"]).add_auth(req)
    out.append({k: v for k, v in req.headers.items() if k.lower() != "host"})
json.dump(out, sys.stdout)
