"""The caller, as the API Gateway JWT authorizer verified it. Identity comes from nowhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sessions_api.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    email: str | None = None


def _sam_local_claims(event: dict[str, Any]) -> dict[str, Any]:
    """`sam local start-api` links no JWT authorizer: play it as `make dev` does (X-Dev-User, DEV_USER_ID).

    Only when SAM CLI runs the function (it sets AWS_SAM_LOCAL; Lambda never does), so a deployed function
    never takes an identity from a header.
    """
    if os.environ.get("AWS_SAM_LOCAL") != "true":
        return {}
    headers = {str(name).lower(): value for name, value in (event.get("headers") or {}).items()}
    user = headers.get("x-dev-user") or os.environ.get("DEV_USER_ID") or "dev-user"
    email = headers.get("x-dev-email")
    return {"sub": user, **({"email": email, "email_verified": "true"} if email else {})}


def caller_from_event(event: dict[str, Any]) -> Caller:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or _sam_local_claims(event)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthorized()
    email = claims.get("email")
    # Shares to an e-mail address trust the claim, so only an address the issuer says it verified counts:
    # an IdP federated into the issuer may pass any address through (the JWT authorizer sends "true").
    if str(claims.get("email_verified")).lower() != "true":
        email = None
    return Caller(user_id=sub, email=email.lower() if isinstance(email, str) and email else None)


def caller_from_connection(event: dict[str, Any]) -> Caller:
    """The caller of a live (WebSocket) connection: what its $connect authorizer returned, which API Gateway
    passes with every message of the connection (`requestContext.authorizer`)."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    sub = authorizer.get("principalId")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthorized()
    email = authorizer.get("email")
    return Caller(user_id=sub, email=email.lower() if isinstance(email, str) and email else None)
