"""The erasure worker's use case: hide, purge, then others' data, in batches, holding a lease (see
`logic/erasure.py` for the whole story). It purges a session exactly as the schedule purges a deleted one.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sessions_api import errors, timeutil
from sessions_api.dal import keys
from sessions_api.dal.erasure_repo import ErasureRepo
from sessions_api.dal.purge_repo import BATCH_WRITE_MAX, PurgeRepo
from sessions_api.dal.sessions_repo import WriteRefused
from sessions_api.logic import turns
from sessions_api.logic.erasure import COUNTS, LEASE_SECONDS
from sessions_api.logic.expiry import Budget, OutOfTime, purge_session
from sessions_api.settings import Settings

ANONYMOUS = "erased-user"
MARGIN_MS = 30_000
# A parked session the worker never purges (it is gone for good) is purged by the schedule after this.
SCHEDULE_PURGE_AFTER_SECONDS = 3600


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))

    def add(self, name: str, count: int = 1) -> None:
        self.counts[name] += count

    def take(self) -> dict[str, int]:
        taken, self.counts = self.counts, dict.fromkeys(COUNTS, 0)
        return taken


@dataclass
class Eraser:
    settings: Settings
    repo: ErasureRepo = field(default_factory=ErasureRepo)
    purge_repo: PurgeRepo = field(default_factory=PurgeRepo)

    def run(self, user_id: str, erasure_id: str, remaining_ms: Callable[[], int]) -> bool:
        """Work on the erasure until it is done (True) or this invocation's time is spent (handed on)."""
        worker = uuid.uuid4().hex
        now_epoch = timeutil.epoch_seconds(timeutil.now())
        record = self.repo.claim(
            user_id, erasure_id, worker=worker, now_epoch=now_epoch, lease_until=now_epoch + LEASE_SECONDS
        )
        if record is None:
            return False  # done, or another worker holds it: nothing to do here
        step = _Step(self, user_id, erasure_id, worker, record, Budget(remaining_ms, MARGIN_MS))
        try:
            while True:
                step.hide_all()
                step.purge_parked()
                step.others_data()
                step.checkpoint()
                finished = self.repo.complete(
                    user_id,
                    erasure_id,
                    worker=worker,
                    erased_before=step.erased_before,
                    at=timeutil.now_iso(),
                    ttl=timeutil.epoch_seconds(timeutil.plus(timeutil.now(), days=self.settings.erasure_receipt_days)),
                )
                if finished:
                    return True
        except OutOfTime:
            step.checkpoint()
            self.repo.hand_on(user_id, erasure_id, worker=worker)
            return False
        except _LeaseLost:
            return False


class _LeaseLost(Exception):
    """Another worker holds the erasure now (this one was too slow to renew): stop at once."""


@dataclass
class _Step:
    erasures: Eraser
    user_id: str
    erasure_id: str
    worker: str
    record: dict[str, Any] | None
    budget: Budget
    tally: Tally = field(default_factory=Tally)

    @property
    def erased_before(self) -> str:
        assert self.record is not None
        return str(self.record["erased_before"])

    def checkpoint(self) -> None:
        """The counts so far into the receipt, the lease renewed, and the mark as it is now."""
        lease_until = timeutil.epoch_seconds(timeutil.now()) + LEASE_SECONDS
        self.record = self.erasures.repo.progress(
            self.user_id, self.erasure_id, worker=self.worker, lease_until=lease_until, counts=self.tally.take()
        )
        if self.record is None:
            raise _LeaseLost

    def hide_all(self) -> None:
        repo, start = self.erasures.repo, None
        while True:
            self.budget.check()
            page = repo.owned_page(self.user_id, start)
            for session in page.items:
                if str(session.get("created_at", "")) <= self.erased_before:
                    self._hide(session)
            self.checkpoint()
            start = page.next_key
            if start is None:
                return

    def _hide(self, session: dict[str, Any]) -> None:
        settings, repo = self.erasures.settings, self.erasures.repo
        session_id = session["session_id"]
        for run in repo.unfinished_runs(session_id):  # an erasure racing a chat ends the run
            with contextlib.suppress(errors.InvalidStateTransition, errors.NotFound):
                turns.cancel(settings, run)
        moment = timeutil.now()
        purge_due = (
            keys.due_pk(session_id, settings.due_shards),
            timeutil.epoch_seconds(moment) + SCHEDULE_PURGE_AFTER_SECONDS,
        )
        for _ in range(3):
            try:
                repo.hide(
                    session,
                    erased_before=self.erased_before,
                    at=timeutil.iso(moment),
                    purge_due=purge_due,
                    ttl=purge_due[1] + 86_400,
                )
                self.tally.add("sessions")
                return
            except WriteRefused as refused:
                current = refused.current
                if current is None or current.get("deleted_at") or current.get("created_by") != self.user_id:
                    return  # deleted meanwhile (its own purge is queued) or never the user's
                session = current  # its status changed: hide it as it is now

    def purge_parked(self) -> None:
        while parked := self.erasures.repo.erasing_page(self.user_id).items:
            for session in parked:
                self.budget.check()
                purged = purge_session(session["session_id"], self.user_id, self.budget, self.erasures.purge_repo)
                self.tally.add("items_deleted", purged.items + int(purged.done))
                self.tally.add("objects_deleted", purged.objects)
            self.checkpoint()

    def others_data(self) -> None:
        repo, purge_repo = self.erasures.repo, self.erasures.purge_repo
        email = (self.record or {}).get("email")
        recipients = [self.user_id, *([email] if email else [])]
        shares = [key for recipient in recipients for key in repo.shares_to(recipient)]
        for start in range(0, len(shares), BATCH_WRITE_MAX):
            self.budget.check()
            purge_repo.delete_items(shares[start : start + BATCH_WRITE_MAX])
            self.tally.add("shares_removed", len(shares[start : start + BATCH_WRITE_MAX]))
        for pointer in repo.user_items(self.user_id, keys.AUTHORED_PREFIX):
            self.budget.check()
            for named in pointer["named"]:
                anonymised = repo.anonymise(named["key"], self.user_id, named["field"], ANONYMOUS)
                self.tally.add("entries_anonymised", int(anonymised))
            purge_repo.delete_items([{"PK": pointer["PK"], "SK": pointer["SK"]}])
            self.tally.add("items_deleted")
        self._rate_counters()
        self._takeouts()

    def _rate_counters(self) -> None:
        """The user's write counters of the seconds up to the request (their TTL may take days to act)."""
        repo, purge_repo = self.erasures.repo, self.erasures.purge_repo
        last = timeutil.epoch_seconds(timeutil.parse(self.erased_before))
        counters = [
            {"PK": item["PK"], "SK": item["SK"]}
            for item in repo.user_items(self.user_id, keys.RATE_PREFIX)
            if int(item["SK"].removeprefix(keys.RATE_PREFIX)) <= last
        ]
        for start in range(0, len(counters), BATCH_WRITE_MAX):
            self.budget.check()
            purge_repo.delete_items(counters[start : start + BATCH_WRITE_MAX])
            self.tally.add("items_deleted", len(counters[start : start + BATCH_WRITE_MAX]))

    def _takeouts(self) -> None:
        """Export-everything jobs asked before the mark: cancelled (a running worker stops at its next
        write), their archives and records deleted."""
        repo, purge_repo = self.erasures.repo, self.erasures.purge_repo
        jobs = [
            job
            for job in repo.user_items(self.user_id, keys.TAKEOUT_PREFIX)
            if str(job.get("created_at", "")) <= self.erased_before
        ]
        for job in jobs:
            self.budget.check()
            while versions := purge_repo.object_versions(keys.takeout_s3_key(self.user_id, job["job_id"])):
                purge_repo.delete_objects(versions)
                self.tally.add("objects_deleted", len(versions))
        doomed_ids = {job["job_id"] for job in jobs}
        lock = [
            item
            for item in repo.user_items(self.user_id, keys.TAKEOUT_LOCK_SK)
            if item["SK"] == keys.TAKEOUT_LOCK_SK and item.get("job_id") in doomed_ids
        ]
        doomed = [{"PK": item["PK"], "SK": item["SK"]} for item in [*jobs, *lock]]
        for start in range(0, len(doomed), BATCH_WRITE_MAX):
            purge_repo.delete_items(doomed[start : start + BATCH_WRITE_MAX])
            self.tally.add("items_deleted", len(doomed[start : start + BATCH_WRITE_MAX]))
