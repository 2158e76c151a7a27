"""Purging one hidden (tombstoned) session: its S3 objects and child items first, its own item last.

A crash or a spent time budget anywhere leaves the session item in place, still due in GSI3 and
invisible to every read (the tombstone), so the next run simply continues; nothing is half-visible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sessions_api.dal import keys
from sessions_api.dal.purge_repo import BATCH_WRITE_MAX, PurgeRepo

CHILD_PAGE = 500


class OutOfTime(Exception):
    """The run's time budget is spent; the work left is the next run's."""


@dataclass
class Budget:
    remaining_ms: Callable[[], int]
    margin_ms: int

    def spent(self) -> bool:
        return self.remaining_ms() <= self.margin_ms

    def check(self) -> None:
        if self.spent():
            raise OutOfTime


@dataclass
class Purged:
    items: int = 0
    objects: int = 0
    done: bool = False  # the session item itself is gone (False: another run got there first)


def purge_session(session_id: str, owner: str, budget: Budget, repo: PurgeRepo) -> Purged:
    """Delete everything of a tombstoned session; raises OutOfTime with the session still due."""
    purged = Purged()
    prefix = keys.s3_session_prefix(owner, session_id)
    while versions := repo.object_versions(prefix):
        budget.check()
        repo.delete_objects(versions)
        purged.objects += len(versions)
    while children := repo.child_keys(session_id, limit=CHILD_PAGE):
        for start in range(0, len(children), BATCH_WRITE_MAX):
            budget.check()
            chunk = children[start : start + BATCH_WRITE_MAX]
            repo.delete_items(chunk)
            purged.items += len(chunk)
    purged.done = repo.delete_session_item(session_id)
    return purged
