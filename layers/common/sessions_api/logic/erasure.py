"""Erase everything (DELETE /me): at once gone from every read, then purged by a worker, with a receipt.

The requests are here; the worker is `logic/erasing.py`. The request writes one mark and one record,
whatever the user owns: their counters item gets
`erased_before` (every session created by then is gone from every read, theirs and their sharees':
`sessions_repo.erased`) and the counts it hides. The table's stream hands the record to
`ErasureWorkerFunction`, which, in bounded batches and holding a lease on the record:

1. hides each erased session (a tombstone, out of the counts; its unfinished runs ended first), parking
   it under `ERASING#<user>` on the owner index;
2. purges each parked session as the schedule purges a deleted one (S3 prefix, items, the create's
   idempotency record through its pointer, the session item last);
3. removes the shares others gave the user (by id and by e-mail); anonymises what they wrote in others'
   sessions as a sharee (comments, history events, chat runs: the pointers `session_writes.signed` left),
   which is part of the other's conversation; cancels and deletes their export-everything jobs and archives;
4. writes the receipt (kept `ERASURE_RECEIPT_DAYS`), if the mark did not move meanwhile.

Resumable by construction: what is left is the work, so a crash or a spent invocation loses nothing; a
fresh invocation continues (phase `ready` again), and the schedule re-arms one whose worker is gone for
good (the record is due on GSI3 when its lease lapses). Sessions created after the mark are the user's
new ones: never touched. Others' data is touched only where it names the user: their share, their name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.dal import keys
from sessions_api.dal.erasure_repo import ErasureRepo, ErasureRunning
from sessions_api.identity import Caller
from sessions_api.models.erasure import ErasureOut
from sessions_api.settings import Settings

LEASE_SECONDS = 300  # the worker's hold on an erasure (`logic/erasing.py`), renewed at every batch
COUNTS = ("sessions", "items_deleted", "objects_deleted", "shares_removed", "entries_anonymised")


def erasure_out(record: dict[str, Any], settings: Settings) -> dict[str, Any]:
    completed_at = record.get("completed_at")
    receipt_expires_at = (
        timeutil.iso(timeutil.plus(timeutil.parse(completed_at), days=settings.erasure_receipt_days))
        if completed_at
        else None
    )
    return ErasureOut(
        erasure_id=record["erasure_id"],
        status=record["status"],
        requested_at=record["requested_at"],
        completed_at=completed_at,
        receipt_expires_at=receipt_expires_at,
        **{name: int(record.get(name, 0)) for name in COUNTS},
    ).model_dump(mode="json")


@dataclass
class Erasures:
    settings: Settings
    repo: ErasureRepo = field(default_factory=ErasureRepo)

    # -- the requests -------------------------------------------------------------------------------
    def request(self, caller: Caller) -> dict[str, Any]:
        """One transaction, whatever the caller owns; asked again while one runs, that one goes further."""
        at = timeutil.now_iso()
        contact = {"email": caller.email} if caller.email else {}
        record = self._record(caller.user_id, ids.new_id("erasure"), at, contact)
        for _ in range(3):
            try:
                self.repo.start(caller.user_id, record)
                return erasure_out(record, self.settings)
            except ErasureRunning as running:
                if self.repo.extend(caller.user_id, running.erasure_id, at, {"requested_at": at, **contact}):
                    current = self.repo.get(caller.user_id, running.erasure_id)
                    if current is not None:
                        return erasure_out(current, self.settings)
        raise errors.Conflict("Your erasure keeps changing; retry", headers={"Retry-After": "1"})

    def receipt(self, caller: Caller, erasure_id: str) -> dict[str, Any]:
        found = self.repo.get(caller.user_id, erasure_id) if erasure_id.startswith("erasure_") else None
        if found is None or found.get("type") != "erasure" or _past_ttl(found):
            raise errors.ErasureNotFound(erasure_id)
        return erasure_out(found, self.settings)

    def _record(self, user_id: str, erasure_id: str, at: str, contact: dict[str, str]) -> dict[str, Any]:
        return {
            **keys.erasure_key(user_id, erasure_id),
            "type": "erasure",
            "erasure_id": erasure_id,
            "created_by": user_id,
            "status": "running",
            "phase": "ready",
            "requested_at": at,
            "erased_before": at,
            **contact,
            **dict.fromkeys(COUNTS, 0),
            # Due on the schedule's index once a lease lapses, so a worker gone for good is replaced.
            "GSI3PK": keys.due_pk(user_id, self.settings.due_shards),
            "GSI3SK": timeutil.epoch_seconds(timeutil.now()) + LEASE_SECONDS,
        }


def _past_ttl(record: dict[str, Any]) -> bool:
    ttl = record.get("ttl")
    return ttl is not None and int(ttl) <= timeutil.epoch_seconds(timeutil.now())
