"""The live API's $connect authorizer against an issuer served on loopback: OpenID discovery, its JWKS, and
tokens signed with its key (or not)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import load_function

CLIENT = "playground-client"
ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/live/$connect"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Issuer:
    """An OIDC issuer on 127.0.0.1: discovery and JWKS, counting the JWKS fetches."""

    def __init__(self) -> None:
        self.key = new_key()
        self.kid = "key-1"
        self.jwks_fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks.json"}
                elif self.path == "/jwks.json":
                    issuer.jwks_fetches += 1
                    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key()))
                    body = {"keys": [{**public, "kid": issuer.kid, "use": "sig", "alg": "RS256"}]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key: Any = None, kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "sub": "alice", "aud": CLIENT, "iat": now, "exp": now + 600, **claims}
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})


@pytest.fixture
def issuer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Issuer]:
    served = Issuer()
    monkeypatch.setenv("AUTH_ISSUER", served.url)
    monkeypatch.setenv("AUTH_AUDIENCE", f"other-client,{CLIENT}")
    yield served
    served.server.shutdown()


@pytest.fixture
def authorizer(issuer: Issuer) -> Any:
    module = load_function("LiveAuthorizerFunction")
    module.keys.cache_clear()
    return module


def connect(authorizer: Any, token: str | None) -> dict[str, Any]:
    query = {"token": token} if token is not None else None
    return dict(authorizer.lambda_handler({"type": "REQUEST", "methodArn": ARN, "queryStringParameters": query}, None))


def effect(answer: dict[str, Any]) -> str:
    return str(answer["policyDocument"]["Statement"][0]["Effect"])


def test_a_genuine_token_connects_as_its_subject(authorizer: Any, issuer: Issuer) -> None:
    answer = connect(authorizer, issuer.token(email="Alice@Example.com", email_verified=True))
    assert effect(answer) == "Allow" and answer["principalId"] == "alice"
    assert answer["policyDocument"]["Statement"][0]["Resource"] == ARN
    assert answer["context"] == {"sub": "alice", "email": "Alice@Example.com"}


def test_an_unverified_email_is_not_passed_on(authorizer: Any, issuer: Issuer) -> None:
    assert connect(authorizer, issuer.token(email="a@example.com"))["context"] == {"sub": "alice"}


def test_an_access_token_names_its_audience_as_client_id(authorizer: Any, issuer: Issuer) -> None:
    answer = connect(authorizer, issuer.token(aud=None, client_id=CLIENT, token_use="access"))
    assert effect(answer) == "Allow"


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 3600},
        {"iss": "https://issuer.example"},
        {"aud": "someone-else"},
        {"aud": None, "client_id": "someone-else"},
        {"sub": None},
        {"nbf": int(time.time()) + 3600},
    ],
    ids=["expired", "wrong-issuer", "wrong-audience", "wrong-client-id", "no-subject", "not-yet-valid"],
)
def test_a_token_that_does_not_hold_is_refused(authorizer: Any, issuer: Issuer, claims: dict[str, Any]) -> None:
    answer = connect(authorizer, issuer.token(**claims))
    assert effect(answer) == "Deny" and "context" not in answer


def test_a_token_signed_with_another_key_is_refused(authorizer: Any, issuer: Issuer) -> None:
    assert effect(connect(authorizer, issuer.token(key=new_key()))) == "Deny"


def test_an_unsigned_or_garbled_token_is_refused(authorizer: Any, issuer: Issuer) -> None:
    unsigned = jwt.encode({"iss": issuer.url, "sub": "alice", "aud": CLIENT, "exp": 2**31}, None, algorithm="none")
    assert effect(connect(authorizer, unsigned)) == "Deny"
    assert effect(connect(authorizer, "not.a.token")) == "Deny"
    assert effect(connect(authorizer, "")) == "Deny"
    assert effect(connect(authorizer, None)) == "Deny"


def test_the_keys_are_fetched_once_and_again_only_for_a_new_key_id(authorizer: Any, issuer: Issuer) -> None:
    for _ in range(3):
        assert effect(connect(authorizer, issuer.token())) == "Allow"
    assert issuer.jwks_fetches == 1
    # When the issuer rotates to a new key, a token of it is refused only within 30 s of the last fetch (so a
    # flood of made-up key ids cannot make us hammer the issuer), then the keys are fetched again
    issuer.key, issuer.kid = new_key(), "key-2"
    assert effect(connect(authorizer, issuer.token())) == "Deny"
    assert issuer.jwks_fetches == 1
    authorizer.keys()._last_successful_fetch -= 31
    assert effect(connect(authorizer, issuer.token())) == "Allow"
    assert issuer.jwks_fetches == 2
