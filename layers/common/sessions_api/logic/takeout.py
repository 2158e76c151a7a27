"""Export everything (POST /me/export): every session the caller owns, as one zip in S3, made by a worker.

The request writes the job (`queued`, phase `ready`) and the user's lock in one transaction, whatever the
user owns; the table's stream hands the job to `TakeoutWorkerFunction`, which streams the archive into an
S3 multipart upload session by session (`dal/archive.py`): per session a JSON document (the session,
all its messages with contents from S3 where they live there, deck, comments, shares) and a Markdown
transcript, then `index.json` and `index.md`. Memory holds one session and one part, whatever the total.

One job at a time per user: the lock's condition refuses a second POST (409, naming the job) unless the
job it names has ended, or is dead (its worker's lease lapsed `DEAD_AFTER_SECONDS` ago, or it waited for a
worker longer than the stream keeps a record), which every read then reports `failed`.

The worker holds a lease on the job, renewed with each progress write, every one conditioned on the job still
being `running` under that worker; a stream redelivery after a crash waits for the lease to lapse and starts
over (the crashed attempt's upload aborted). A job is one invocation (15 minutes): an archive's upload state
(its parts, its zip directory, the unfinished part) cannot be carried in an item, and one invocation writes
far more than the API's largest users own (benchmarks/takeout.py); one that runs out of time fails, and says so.

An erasure (DELETE /me) ends every job asked before its mark: reads report it `cancelled` at once (no download
link for erased data), and its worker stops at its next progress write (it reads the mark), aborts the upload
and leaves nothing; the erasure's own worker later deletes the jobs and their archives. Cancelling from
outside is either of: setting the job's `status` to `cancelled`, or deleting it.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sessions_api import errors, ids, timeutil
from sessions_api.dal import archive, keys
from sessions_api.dal.comments_repo import CommentsRepo
from sessions_api.dal.messages_repo import MessagesRepo
from sessions_api.dal.sessions_repo import erased
from sessions_api.dal.shares_repo import SharesRepo
from sessions_api.dal.takeout_repo import Replacing, TakeoutLocked, TakeoutRepo
from sessions_api.identity import Caller
from sessions_api.logic.decks import Decks
from sessions_api.logic.messages import message_out
from sessions_api.logic.sharing import comment_out, grant_out
from sessions_api.models.entities import plain, session_out
from sessions_api.models.takeout import TakeoutJobOut, TakeoutStatus
from sessions_api.settings import Settings

JOB_ID = re.compile(r"^takeout_[0-9A-HJKMNP-TV-Z]{26}$")
LEASE_SECONDS = 120
# A lease renewed this long before it lapses, whatever the work in between (a long session's messages).
RENEW_AFTER_SECONDS = 30
# Progress is written at most this often (each write also renews the lease and reads the erasure mark).
PROGRESS_SECONDS = 1.0
# Lambda retries a failed record at once; a job whose lease lapsed this long ago has no worker coming back.
DEAD_AFTER_SECONDS = 300
# A record waits at most this long for a worker (the mapping's MaximumRecordAgeInSeconds), then is dropped.
QUEUED_SECONDS = 3600
MARGIN_MS = 30_000  # what completing (the zip's directory, the last part, the job's end) may take
DOWNLOAD_URL_SECONDS = 15 * 60
_PAGE = 500
_UNFINISHED = ("queued", "running")
ERASED_ERROR = "Cancelled: you erased everything (DELETE /me)"
DEAD_ERROR = "The export's worker stopped; start a new export"
TOO_LONG_ERROR = "The export did not fit in one worker's run; ask support"

Markdown = Callable[[dict[str, Any]], bytes]


def shown_status(job: dict[str, Any], counters: dict[str, Any] | None, now_epoch: int) -> tuple[str, str | None]:
    """(status, error) as every read reports the job: stored, or what an erasure or a dead worker made it."""
    status, error = str(job["status"]), job.get("error")
    if status in ("failed", "cancelled"):
        return status, error
    if erased(job, counters):  # a finished archive goes with the erasure too
        return "cancelled", ERASED_ERROR
    if status in _UNFINISHED and int(job["lease_until"]) < now_epoch - DEAD_AFTER_SECONDS:
        return "failed", DEAD_ERROR
    return status, error


def archive_name(created_at: str) -> str:
    return f"sessions-export-{created_at[:10]}.zip"


def _expires_at(job: dict[str, Any], settings: Settings) -> str | None:
    completed_at = job.get("completed_at")
    if not completed_at:
        return None
    return timeutil.iso(timeutil.plus(timeutil.parse(completed_at), days=settings.export_retention_days))


class _Stop(Exception):
    """The job is no longer this worker's to finish: `erased` (the user erased everything since it was asked),
    else cancelled, taken over or deleted by someone else."""

    def __init__(self, *, erased: bool) -> None:
        super().__init__("erased" if erased else "lost")
        self.erased = erased


class _OutOfTime(Exception):
    pass


@dataclass
class Takeout:
    settings: Settings
    repo: TakeoutRepo = field(default_factory=TakeoutRepo)
    messages: MessagesRepo = field(default_factory=MessagesRepo)
    comments: CommentsRepo = field(default_factory=CommentsRepo)
    shares: SharesRepo = field(default_factory=SharesRepo)
    decks: Decks = field(default_factory=Decks)
    sleep: Callable[[float], None] = time.sleep

    # -- the requests -------------------------------------------------------------------------------
    def start(self, caller: Caller) -> dict[str, Any]:
        """The job, queued; a 409 naming the user's unfinished job if they have one (nothing stored then)."""
        user_id, moment = caller.user_id, timeutil.now()
        at, now_epoch = timeutil.iso(moment), timeutil.epoch_seconds(moment)
        job_id = ids.new_id("takeout")
        retention = self.settings.export_retention_days
        job = {
            **keys.takeout_key(user_id, job_id),
            "type": "takeout",
            "job_id": job_id,
            "created_by": user_id,
            "status": "queued",
            "phase": "ready",  # the stream's filter hands it to a worker
            "created_at": at,
            "sessions_done": 0,
            "attempt": 0,
            "s3_key": keys.takeout_s3_key(user_id, job_id),
            # Waiting for a worker is a lease too: a record the stream never delivers leaves a dead job.
            "lease_until": now_epoch + QUEUED_SECONDS,
            "ttl": timeutil.epoch_seconds(timeutil.plus(moment, days=retention)),
        }
        lock = {
            **keys.user_item_key(user_id, keys.TAKEOUT_LOCK_SK),
            "type": "takeout_lock",
            "job_id": job_id,
            "created_at": at,
            "ttl": now_epoch + QUEUED_SECONDS + 86_400,
        }
        replacing: Replacing | None = None
        for _ in range(3):
            try:
                self.repo.start(job, lock, replacing)
                return self._out(job, None, now_epoch)
            except TakeoutLocked as locked:
                replacing = self._stale(user_id, locked.job_id, at, now_epoch)
        raise errors.Conflict("Your exports keep changing; retry", headers={"Retry-After": "1"})

    def _stale(self, user_id: str, held: str, at: str, now_epoch: int) -> Replacing:
        """How to replace a lock naming `held`, which must have ended; else the 409 naming it."""
        current = self.repo.get(user_id, held) if held else None
        if current is None:  # deleted (by an erasure) or expired: the lock names nothing
            return Replacing(lock_job_id=held)
        status, error = shown_status(current, self.repo.counters(user_id), now_epoch)
        if status in _UNFINISHED:
            raise errors.Conflict(
                f"Your export {held} is still {status}: follow it at /api/v1/me/export/{held}",
                extra={"job_id": held},
            )
        if current["status"] not in _UNFINISHED:
            return Replacing(lock_job_id=held)
        # It never said it ended: it ends now, unless its worker came back since it was read.
        return Replacing(
            lock_job_id=held,
            job_key=keys.takeout_key(user_id, held),
            status=str(current["status"]),
            lease_until=int(current["lease_until"]),
            ended_as=status,
            error=error,
            at=at,
        )

    def job(self, caller: Caller, job_id: str) -> dict[str, Any]:
        """The job's progress, and once completed a fresh link to its archive; 404 for anyone else's."""
        found = self.repo.get(caller.user_id, job_id) if JOB_ID.fullmatch(job_id) else None
        now_epoch = timeutil.epoch_seconds(timeutil.now())
        if found is None or found.get("type") != "takeout" or int(found.get("ttl", now_epoch + 1)) <= now_epoch:
            raise errors.NotFound(f"Export job {job_id} does not exist")
        counters = self.repo.counters(caller.user_id) if found["status"] in (*_UNFINISHED, "completed") else None
        return self._out(found, counters, now_epoch)

    def _out(self, job: dict[str, Any], counters: dict[str, Any] | None, now_epoch: int) -> dict[str, Any]:
        data = plain(job)
        status, error = shown_status(data, counters, now_epoch)
        download: dict[str, Any] = {}
        if status == "completed":
            download = {
                "download_url": self.repo.download_url(
                    data["s3_key"],
                    expires_in=DOWNLOAD_URL_SECONDS,
                    content_disposition=f'attachment; filename="{archive_name(data["created_at"])}"',
                ),
                "download_url_expires_at": timeutil.iso(
                    timeutil.plus(timeutil.now(), minutes=DOWNLOAD_URL_SECONDS / 60)
                ),
                "expires_at": _expires_at(data, self.settings),
                "size_bytes": data.get("size_bytes"),
            }
        return TakeoutJobOut(
            job_id=data["job_id"],
            status=cast(TakeoutStatus, status),
            created_at=data["created_at"],
            started_at=data.get("started_at"),
            completed_at=data.get("completed_at"),
            sessions=data.get("sessions"),
            sessions_done=int(data.get("sessions_done", 0)),
            error=error,
            **download,
        ).model_dump(mode="json")

    # -- the worker ---------------------------------------------------------------------------------
    def run(
        self,
        user_id: str,
        job_id: str,
        *,
        markdown: Markdown,
        remaining_ms: Callable[[], int],
        part_size: int = archive.PART_SIZE,
    ) -> str:
        """Make the job's archive: `completed`, `failed`, `cancelled`, `stopped` (someone else ended it meanwhile)
        or `skipped` (not this worker's to run)."""
        worker = uuid.uuid4().hex
        job = self._claim(user_id, job_id, worker, remaining_ms)
        if job is None:
            return "skipped"
        if job.get("upload_id"):  # the crashed attempt's parts
            archive.abort_upload(job["s3_key"], job["upload_id"])
        work = _Work(self, plain(job), worker, remaining_ms)
        try:
            uploaded = work.write_archive(markdown, part_size)
        except _Stop as stop:
            work.abort()
            if not stop.erased:
                return "stopped"  # cancelled, taken over or deleted by someone else: nothing more to write
            work.end("cancelled", error=ERASED_ERROR)
            return "cancelled"
        except (_OutOfTime, archive.ArchiveTooLarge):
            work.abort()
            work.end("failed", error=TOO_LONG_ERROR)
            return "failed"
        except Exception:
            with contextlib.suppress(Exception):  # the retry aborts the recorded upload anyway
                work.abort()
            self.repo.let_go(user_id, job_id, worker=worker, now_epoch=timeutil.epoch_seconds(timeutil.now()))
            raise  # Lambda retries the record, which starts over at once
        at = timeutil.now_iso()
        if not work.end(
            "completed", completed_at=at, size_bytes=uploaded.size_bytes, archive_version=uploaded.version_id
        ):
            archive.delete_version(uploaded.key, uploaded.version_id)  # cancelled at the last moment
            return "cancelled"
        return "completed"

    def _claim(self, user_id: str, job_id: str, worker: str, remaining_ms: Callable[[], int]) -> dict[str, Any] | None:
        """The job, claimed; a redelivery waits for a crashed worker's lease to lapse (a renewed lease: a live
        worker holds it, and this delivery has nothing to do)."""
        seen: int | None = None
        while True:
            moment = timeutil.now()
            now_epoch = timeutil.epoch_seconds(moment)
            claimed = self.repo.claim(
                user_id,
                job_id,
                worker=worker,
                at=timeutil.iso(moment),
                now_epoch=now_epoch,
                lease_until=now_epoch + LEASE_SECONDS,
                dead_before=now_epoch - DEAD_AFTER_SECONDS,
            )
            if claimed is not None:
                return claimed
            current = self.repo.get(user_id, job_id)
            if current is None or current["status"] not in _UNFINISHED or current.get("phase") == "ready":
                return None
            lease_until = int(current["lease_until"])
            wait = lease_until - now_epoch + 1
            if lease_until == seen or lease_until < now_epoch - DEAD_AFTER_SECONDS:
                return None
            if seen is not None or wait * 1000 > remaining_ms() - MARGIN_MS:
                return None  # renewed while we waited (alive), or no time to wait: not ours
            seen = lease_until
            self.sleep(max(wait, 0))


@dataclass
class _Work:
    """One worker's attempt at a job: its lease, its progress, its upload."""

    takeout: Takeout
    job: dict[str, Any]
    worker: str
    remaining_ms: Callable[[], int]
    upload: archive.ZipUpload | None = None
    sessions: int = 0
    done: int = 0
    renewed: float = field(default_factory=time.monotonic)
    reported: float = 0.0

    @property
    def user_id(self) -> str:
        return str(self.job["created_by"])

    @property
    def job_id(self) -> str:
        return str(self.job["job_id"])

    def write_archive(self, markdown: Markdown, part_size: int) -> archive.Uploaded:
        takeout = self.takeout
        moment = timeutil.now()
        counters = self._counters()
        owned = takeout.repo.owned_sessions(self.user_id, counters, timeutil.epoch_seconds(moment))
        self.sessions = len(owned)
        self.upload = archive.ZipUpload.start(
            self.job["s3_key"],
            tags={"kind": "export"},  # the bucket's lifecycle rule expires exports by this tag
            content_type="application/zip",
            content_disposition=f'attachment; filename="{archive_name(self.job["created_at"])}"',
            part_size=part_size,
        )
        self.checkpoint(force=True, upload_id=self.upload.upload_id, sessions=self.sessions)
        index: list[dict[str, Any]] = []
        for session in owned:
            if self.remaining_ms() < MARGIN_MS:
                raise _OutOfTime
            index.append(self._add_session(session, markdown, moment))
            self.done += 1
            self.checkpoint()
        exported_at = timeutil.iso(moment)
        listing = {"exported_at": exported_at, "user_id": self.user_id, "session_count": len(index), "sessions": index}
        self.upload.add("index.json", _json(listing), moment)
        self.upload.add("index.md", _index_markdown(listing), moment)
        self.checkpoint(force=True)
        return self.upload.finish()

    def _add_session(self, session: dict[str, Any], markdown: Markdown, moment: datetime) -> dict[str, Any]:
        """The session's two files into the archive; its line of the index. Nothing of it is kept after."""
        takeout, session_id = self.takeout, str(session["session_id"])
        stored_deck = takeout.decks.read(session_id)
        messages = [
            message_out(item)
            for item in self._all(
                lambda start: takeout.messages.page(session_id, limit=_PAGE, ascending=True, start_key=start)
            )
        ]
        comments = self._all(lambda start: takeout.comments.page(session_id, limit=_PAGE, start_key=start))
        now_iso = timeutil.iso(moment)
        shares = self._all(lambda start: takeout.shares.grants(session_id, limit=_PAGE, start_key=start))
        shown = session_out(session).model_dump(mode="json")
        document = {
            "session": shown,
            "messages": messages,
            "deck": stored_deck.deck if stored_deck.version else None,
            "deck_version": stored_deck.version,
            "comments": [comment_out(item) for item in comments],
            "shares": [grant_out(item, now_iso) for item in shares],
            "exported_at": now_iso,
        }
        files = {"json": f"sessions/{session_id}.json", "markdown": f"sessions/{session_id}.md"}
        assert self.upload is not None
        self.upload.add(files["json"], _json(document), moment)
        source = {**document, "deck": stored_deck.deck, "messages_truncated": False}
        self.upload.add(files["markdown"], markdown(source), moment)
        return {
            "session_id": session_id,
            "title": shown["title"],
            "status": shown["status"],
            "created_at": shown["created_at"],
            "message_count": len(messages),
            "files": files,
        }

    def _all(self, page: Callable[[dict[str, Any] | None], Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            current = page(start)
            found += current.items
            start = current.next_key
            if start is None:
                return found
            self.checkpoint()  # a long session keeps the lease alive

    def checkpoint(self, *, force: bool = False, **fields: Any) -> None:
        """Progress and the lease, at most every `PROGRESS_SECONDS` (or when the lease needs it); `_Stop`
        when the job is no longer ours, or the user erased everything since asking."""
        now = time.monotonic()
        if not force and now - self.reported < PROGRESS_SECONDS and now - self.renewed < RENEW_AFTER_SECONDS:
            return
        if erased(self.job, self._counters()):
            raise _Stop(erased=True)
        size = self.upload.size_bytes if self.upload else 0
        held = self.takeout.repo.progress(
            self.user_id,
            self.job_id,
            worker=self.worker,
            lease_until=timeutil.epoch_seconds(timeutil.now()) + LEASE_SECONDS,
            sessions_done=self.done,
            size_bytes=size,
            **fields,
        )
        if not held:
            raise _Stop(erased=False)
        self.renewed = self.reported = now

    def _counters(self) -> dict[str, Any] | None:
        return self.takeout.repo.counters(self.user_id)

    def abort(self) -> None:
        if self.upload is not None:
            self.upload.abort()

    def end(self, status: str, **fields: Any) -> bool:
        """The job's last state and its lock released, if the job is still ours."""
        repo, settings = self.takeout.repo, self.takeout.settings
        moment = timeutil.now()
        fields.setdefault("completed_at", timeutil.iso(moment))
        ended = repo.end(
            self.user_id,
            self.job_id,
            worker=self.worker,
            ttl=timeutil.epoch_seconds(timeutil.plus(moment, days=settings.export_retention_days)),
            status=status,
            sessions=self.sessions,
            sessions_done=self.done,
            **{name: value for name, value in fields.items() if value is not None},
        )
        if ended:
            repo.release(self.user_id, self.job_id)
        return ended


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")


def _index_markdown(listing: dict[str, Any]) -> bytes:
    lines = [f"# Your sessions, exported {listing['exported_at']}", "", f"{listing['session_count']} sessions.", ""]
    if listing["sessions"]:
        lines += ["| Session | Created | Status | Messages | Files |", "|---|---|---|---|---|"]
    for entry in listing["sessions"]:
        title = str(entry["title"]).replace("|", "\\|").replace("\n", " ")
        files = entry["files"]
        lines.append(
            f"| {title} | {entry['created_at']} | {entry['status']} | {entry['message_count']} "
            f"| [transcript]({files['markdown']}) · [data]({files['json']}) |"
        )
    return ("\n".join(lines) + "\n").encode("utf-8")
