"""google-auth side of the GCP service-account JWT cross-check.

stdin JSON {"mode": "make", "time": EPOCH, "token_uri": URI}: generates an RSA key and a
service-account JSON key, and prints {"sa_json", "public_pem", "assertion"} where the
assertion is google-auth's own jwt-bearer grant assertion at the frozen time.

stdin JSON {"mode": "verify", "time": EPOCH, "token": JWT, "public_pem": PEM,
"audience": URI}: verifies a JWT with google-auth at the frozen time and prints
{"header", "claims"}.
"""
import datetime
import json
import sys
from unittest import mock

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
import google.auth._helpers as helpers
from google.auth import jwt
from google.oauth2 import service_account

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
req = json.load(sys.stdin)
frozen = datetime.datetime.fromtimestamp(req["time"], tz=datetime.timezone.utc).replace(tzinfo=None)

with mock.patch.object(helpers, "utcnow", return_value=frozen):
    if req["mode"] == "make":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        info = {
            "type": "service_account",
            "project_id": "aigw-test",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": pem,
            "client_email": "vertex@aigw-test.iam.gserviceaccount.com",
            "client_id": "100000000000000000001",
            "token_uri": req["token_uri"],
        }
        creds = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
        assertion = creds._make_authorization_grant_assertion()
        if isinstance(assertion, bytes):
            assertion = assertion.decode()
        json.dump({"sa_json": json.dumps(info), "public_pem": public_pem, "assertion": assertion}, sys.stdout)
    else:
        claims = jwt.decode(req["token"], certs=req["public_pem"], audience=req["audience"])
        header = jwt.decode_header(req["token"])
        json.dump({"header": header, "claims": claims}, sys.stdout)
