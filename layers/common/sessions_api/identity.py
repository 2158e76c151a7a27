"""The caller, as the API Gateway JWT authorizer verified it. Identity comes from nowhere else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessions_api.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    email: str | None = None


def caller_from_event(event: dict[str, Any]) -> Caller:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise Unauthorized()
    email = claims.get("email")
    # Shares to an e-mail address trust the claim, so only an address the issuer says it verified counts:
    # an IdP federated into the issuer may pass any address through (the JWT authorizer sends "true").
    if str(claims.get("email_verified")).lower() != "true":
        email = None
    return Caller(user_id=sub, email=email.lower() if isinstance(email, str) and email else None)
