"""Identity: Bearer JWTs against a real JWKS on loopback, API keys with scopes, rotation.

Every bad credential is a 401 and every missing scope a 403, with a JSON body
saying why; never a 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from churn_api import auth
from churn_api.app import create_app
from churn_api.auth import key_digest
from churn_api.model import Model
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar.testing import TestClient
from service_testing import VALID_RECORD, make_settings

ISSUER = "https://issuer.test"
AUDIENCE = "churn-api"


class Jwks:
    """A JWKS served over HTTP on 127.0.0.1; ``keys`` may change while it runs."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, kid: str, private_key: Any, alg: str) -> None:
        public = jwt.algorithms.get_default_algorithms()[alg].to_jwk(  # type: ignore[attr-defined]
            private_key.public_key(), as_dict=True
        )
        self.keys.append({**public, "kid": kid, "alg": alg, "use": "sig"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def jwks(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> Iterator[Jwks]:
    served = Jwks()
    served.add("rsa-1", rsa_key, "RS256")
    served.add("ec-1", ec_key, "ES256")
    yield served
    served.close()


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "crm-batch",
        "iat": now,
        "exp": now + 300,
        "scope": "predict feedback",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def sign(key: Any, kid: str = "rsa-1", alg: str = "RS256", **changes: Any) -> str:
    return jwt.encode(claims(**changes), key, algorithm=alg, headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def client(
    model_path: Path, model_sha256: str, model: Model, jwks: Jwks
) -> Iterator[TestClient[Any]]:
    settings = make_settings(
        model_path,
        model_sha256,
        api_keys=frozenset({"plain-key"}),
        jwks_url=jwks.url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    with TestClient(app=create_app(settings, model=model)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response: Any, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    assert reason in body["detail"][0]["reason"], body


@pytest.mark.parametrize(("kid", "alg"), [("rsa-1", "RS256"), ("ec-1", "ES256")])
def test_a_valid_token_passes(
    client: TestClient[Any],
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    kid: str,
    alg: str,
) -> None:
    token = sign(rsa_key if alg == "RS256" else ec_key, kid=kid, alg=alg)
    assert client.post("/v1/predict", json=VALID_RECORD, headers=bearer(token)).status_code == 200


def test_the_plain_api_key_keeps_working(client: TestClient[Any]) -> None:
    response = client.post("/v1/predict", json=VALID_RECORD, headers={"X-API-Key": "plain-key"})
    assert response.status_code == 200


def test_an_scp_list_is_read_as_scopes(client: TestClient[Any], rsa_key: Any) -> None:
    token = sign(rsa_key, scope=None, scp=["predict"])
    assert client.post("/v1/predict", json=VALID_RECORD, headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "Signature has expired"),
        ({"aud": "another-api"}, "Audience doesn't match"),
        ({"iss": "https://evil.test"}, "Invalid issuer"),
        ({"sub": None}, 'missing the "sub" claim'),
        ({"exp": None}, 'missing the "exp" claim'),
        ({"nbf": int(time.time()) + 3600}, "not yet valid"),
    ],
    ids=["expired", "wrong-audience", "wrong-issuer", "no-subject", "no-expiry", "not-yet-valid"],
)
def test_a_bad_claim_is_401(
    client: TestClient[Any], rsa_key: Any, changes: dict[str, Any], reason: str
) -> None:
    response = client.post(
        "/v1/predict", json=VALID_RECORD, headers=bearer(sign(rsa_key, **changes))
    )
    assert_refused(response, 401, reason)


def test_clock_skew_within_the_leeway_passes(client: TestClient[Any], rsa_key: Any) -> None:
    token = sign(rsa_key, exp=int(time.time()) - 10)  # expired 10 s ago; leeway is 30 s
    assert client.post("/v1/predict", json=VALID_RECORD, headers=bearer(token)).status_code == 200


def test_alg_none_is_401(client: TestClient[Any]) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
    token = f"{header}.{b64(json.dumps(claims()).encode())}."
    assert_refused(
        client.post("/v1/predict", json=VALID_RECORD, headers=bearer(token)),
        401,
        "algorithm 'none' is not one of",
    )


def test_hs256_signed_with_the_public_key_is_401(client: TestClient[Any], rsa_key: Any) -> None:
    # The classic confusion: an HMAC "signed" with the RSA public key, which anyone has.
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = b64(json.dumps(claims()).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{b64(mac)}"
    assert_refused(
        client.post("/v1/predict", json=VALID_RECORD, headers=bearer(token)),
        401,
        "algorithm 'HS256' is not one of",
    )


def test_rs256_claimed_for_an_ec_key_is_401(client: TestClient[Any], rsa_key: Any) -> None:
    token = sign(rsa_key, kid="ec-1", alg="RS256")
    assert_refused(
        client.post("/v1/predict", json=VALID_RECORD, headers=bearer(token)),
        401,
        "does not match its key",
    )


def test_a_token_signed_by_another_key_is_401(client: TestClient[Any]) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert_refused(
        client.post("/v1/predict", json=VALID_RECORD, headers=bearer(sign(stranger))),
        401,
        "Signature verification failed",
    )


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ",
        "Bearer abc",
        "Bearer a.b.c",
        "Bearer ....",
        "Basic dXNlcjpwYXNz",
        "Bearer e30.e30.",
    ],
)
def test_a_malformed_credential_is_401(client: TestClient[Any], header: str) -> None:
    response = client.post(
        "/v1/predict",
        json=VALID_RECORD,
        headers={"Authorization": header.encode().decode("latin-1")},
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "unauthorized"


def test_an_unknown_key_id_is_401(client: TestClient[Any], rsa_key: Any) -> None:
    assert_refused(
        client.post("/v1/predict", json=VALID_RECORD, headers=bearer(sign(rsa_key, kid="gone"))),
        401,
        "not in the JWKS",
    )


def test_a_missing_scope_is_403(client: TestClient[Any], rsa_key: Any) -> None:
    token = sign(rsa_key, scope="feedback")
    assert_refused(
        client.post("/v1/predict", json=VALID_RECORD, headers=bearer(token)),
        403,
        "needs the 'predict' scope",
    )


def test_a_rotated_signing_key_is_picked_up(
    client: TestClient[Any], jwks: Jwks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "JWKS_RETRY_SECONDS", 0)
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = sign(new_key, kid="rsa-2")
    assert client.post("/v1/predict", json=VALID_RECORD, headers=bearer(token)).status_code == 401
    jwks.add("rsa-2", new_key, "RS256")
    assert client.post("/v1/predict", json=VALID_RECORD, headers=bearer(token)).status_code == 200


def test_an_unreachable_jwks_is_401_not_500(
    model_path: Path, model_sha256: str, model: Model, rsa_key: Any
) -> None:
    settings = make_settings(
        model_path,
        model_sha256,
        jwks_url="http://127.0.0.1:9/jwks.json",  # discard port: nothing listens
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    with TestClient(app=create_app(settings, model=model)) as client:
        response = client.post("/v1/predict", json=VALID_RECORD, headers=bearer(sign(rsa_key)))
        assert_refused(response, 401, "not in the JWKS")
        assert client.get("/healthz").status_code == 200


class TestCredentialsFile:
    def write(self, path: Path, keys: dict[str, list[str]]) -> None:
        entries = [
            {"name": f"client-{i}", "sha256": key_digest(key), "scopes": scopes}
            for i, (key, scopes) in enumerate(keys.items())
        ]
        staged = path.with_suffix(".new")
        staged.write_text(json.dumps({"api_keys": entries}))
        staged.replace(path)  # atomic, as a Secret volume update is

    def test_keys_have_scopes_and_rotate_without_restart(
        self, model_path: Path, model_sha256: str, model: Model, tmp_path: Path
    ) -> None:
        secret = tmp_path / "credentials.json"
        self.write(secret, {"old-key": ["predict"], "audit-key": ["feedback"]})
        settings = make_settings(model_path, model_sha256, auth_file=str(secret))
        with TestClient(app=create_app(settings, model=model)) as client:

            def status(key: str) -> int:
                headers = {"X-API-Key": key}
                return client.post("/v1/predict", json=VALID_RECORD, headers=headers).status_code

            assert status("old-key") == 200
            assert status("audit-key") == 403
            assert status("new-key") == 401
            self.write(secret, {"new-key": ["predict", "admin"]})
            deadline = time.monotonic() + 120
            while status("new-key") != 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert status("new-key") == 200
            assert status("old-key") == 401

    def test_a_broken_file_keeps_the_last_good_keys(
        self,
        model_path: Path,
        model_sha256: str,
        model: Model,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(auth, "_FILE_CHECK_SECONDS", 0.0)  # every request re-checks the file
        secret = tmp_path / "credentials.json"
        self.write(secret, {"good-key": ["predict"]})
        settings = make_settings(model_path, model_sha256, auth_file=str(secret))
        with TestClient(app=create_app(settings, model=model)) as client:
            secret.write_text('{"api_keys": [{"name": "x", "scopes": ["predict"]}]}')  # no sha256
            response = client.post(
                "/v1/predict", json=VALID_RECORD, headers={"X-API-Key": "good-key"}
            )
            assert response.status_code == 200

    def test_an_absent_file_refuses_everyone(
        self, model_path: Path, model_sha256: str, model: Model, tmp_path: Path
    ) -> None:
        settings = make_settings(model_path, model_sha256, auth_file=str(tmp_path / "none.json"))
        with TestClient(app=create_app(settings, model=model)) as client:
            response = client.post("/v1/predict", json=VALID_RECORD, headers={"X-API-Key": "k"})
            assert response.status_code == 401
            assert client.get("/readyz").status_code == 200
