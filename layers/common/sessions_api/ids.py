"""Identifiers: session ids (random, or a client's own) and time-sortable prefixed ULIDs for everything else."""

from __future__ import annotations

import os
import re
import secrets
import threading
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Ours (`session_` + 16 hex) or a client's (a UUID, say): never `#`, `/` or `:`, which keys, paths and cursors use.
SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_lock = threading.Lock()
_last: tuple[int, int] = (0, 0)


def new_session_id() -> str:
    return "session_" + secrets.token_hex(8)


def is_session_id(value: str) -> bool:
    return bool(_SESSION_ID.fullmatch(value))


def _ulid() -> str:
    """A ULID, monotonic within a process so ids made in one millisecond keep their order."""
    global _last
    with _lock:
        millis = time.time_ns() // 1_000_000
        last_millis, last_random = _last
        if millis <= last_millis:
            millis, randomness = last_millis, last_random + 1
        else:
            randomness = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        _last = (millis, randomness)
    value = (millis << 80) | randomness
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def new_id(prefix: str) -> str:
    return f"{prefix}_{_ulid()}"


# A chat run's id names its session, so a poll or a cancel needs no lookup to find the partition it is in;
# the ULID's fixed length tells where the session id (which may hold `_` itself) begins.
_REQUEST_ID = re.compile(r"^run_[0-9A-HJKMNP-TV-Z]{26}_(?P<session_id>.+)$")


def new_request_id(session_id: str) -> str:
    return f"{new_id('run')}_{session_id}"


def request_session(request_id: str) -> str | None:
    """The session a run id belongs to, or None when it is not a run id."""
    found = _REQUEST_ID.fullmatch(request_id)
    return found["session_id"] if found and is_session_id(found["session_id"]) else None
