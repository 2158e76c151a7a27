"""The live API's $connect authorizer: the JWT a browser passes as `?token=` (it cannot set headers on a
WebSocket), verified as the HTTP API's JWT authorizer verifies a bearer token — the signature with the
issuer's keys (its JWKS, found through OpenID discovery), `exp`/`nbf`, `iss`, and `aud` or, for an access
token, `client_id` among the accepted audiences.

Allowed: an IAM policy for this connection, with `sub` (and a verified `email`) as the context API Gateway
passes to every message of the connection. Anything else: Deny (403); a request without a token API
Gateway refuses (401) before calling this. The keys are fetched once per container and cached, and fetched
again only for a key id they do not hold (a rotation).
"""

from __future__ import annotations

import json
import os
import urllib.request
from functools import cache
from typing import Any

import jwt

from sessions_api.observability import logger

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384"]
LEEWAY_SECONDS = 30  # clock skew between the issuer and Lambda
TIMEOUT_SECONDS = 3


def issuer() -> str:
    return os.environ["AUTH_ISSUER"].rstrip("/")


def audiences() -> set[str]:
    return {audience.strip() for audience in os.environ.get("AUTH_AUDIENCE", "").split(",") if audience.strip()}


@cache
def keys() -> jwt.PyJWKClient:
    """The issuer's JWKS client: jwks_uri from its discovery document; keys cached for the container's life."""
    discovery = f"{issuer()}/.well-known/openid-configuration"
    if not discovery.startswith(("https://", "http://127.0.0.1")):  # https only (a loopback issuer in tests)
        raise ValueError("The issuer's URL is not https")
    # The scheme is checked just above: never file:// or a custom one.
    with urllib.request.urlopen(discovery, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310  # nosec B310
        jwks_uri = json.load(answer)["jwks_uri"]
    return jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=24 * 3600, timeout=TIMEOUT_SECONDS)


def verified_claims(token: str) -> dict[str, Any]:
    """The token's claims if it is genuine, current, from the issuer and for one of the audiences."""
    signing_key = keys().get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        signing_key.key,
        algorithms=ALGORITHMS,
        issuer=issuer(),
        leeway=LEEWAY_SECONDS,
        options={"require": ["exp", "iss", "sub"], "verify_aud": False},
    )
    audience = claims.get("aud")
    offered = set(audience if isinstance(audience, list) else [audience]) | {claims.get("client_id")}
    if not offered & audiences():
        raise jwt.InvalidAudienceError("Neither aud nor client_id is an accepted audience")
    return claims


def policy(effect: str, principal: str, resource: str, context: dict[str, str] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if context:
        answer["context"] = context
    return answer


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token") or ""
    resource = event.get("methodArn", "*")
    try:
        claims = verified_claims(token)
    except (jwt.PyJWTError, OSError, ValueError, KeyError) as refused:
        logger.info("Connection refused", extra={"reason": type(refused).__name__})
        return policy("Deny", "anonymous", resource)
    allowed = {"sub": str(claims["sub"])}
    # As the HTTP side: shares to an address trust it only when the issuer says it verified it.
    if isinstance(claims.get("email"), str) and str(claims.get("email_verified")).lower() == "true":
        allowed["email"] = claims["email"]
    return policy("Allow", allowed["sub"], resource, allowed)
