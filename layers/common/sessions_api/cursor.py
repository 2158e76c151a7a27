"""Opaque, tamper-proof pagination cursors.

A cursor carries the DynamoDB key to resume from, bound to the caller and to the listing it came
from (route and filters), and signed with HMAC-SHA256: an edited, foreign or stale-format cursor is
refused, never turned into data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from sessions_api.errors import BadRequest
from sessions_api.settings import Settings

_VERSION = 1
_SIG_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Settings) -> CursorCodec:
        if settings.cursor_secret is None:
            raise RuntimeError("CURSOR_SECRET is not set: give this function the cursor-signing key in template.yaml")
        return cls(settings.cursor_secret.get_secret_value().encode())

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def encode(self, key: dict[str, Any], *, user: str, scope: str) -> str:
        payload = json.dumps({"v": _VERSION, "u": user, "s": scope, "k": key}, separators=(",", ":"))
        raw = payload.encode()
        return _b64(raw) + "." + _b64(self._sign(raw))

    def decode(self, cursor: str, *, user: str, scope: str) -> dict[str, Any]:
        try:
            payload_part, sig_part = cursor.split(".")
            raw, signature = _unb64(payload_part), _unb64(sig_part)
        except (ValueError, TypeError) as exc:
            raise BadRequest("The cursor is not valid") from exc
        if not hmac.compare_digest(signature, self._sign(raw)):
            raise BadRequest("The cursor is not valid")
        data = json.loads(raw)
        if data.get("v") != _VERSION or data.get("u") != user or data.get("s") != scope:
            raise BadRequest("The cursor does not belong to this listing")
        key = data.get("k")
        if not isinstance(key, dict):
            raise BadRequest("The cursor is not valid")
        return key
