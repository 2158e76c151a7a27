"""Exports: the session rendered to a file in S3, recorded, and handed out as a presigned download.

Order of a fresh export: read (session, deck, messages, comments) → render → put the file in S3 →
one transaction with the export record, an `exported` history event and the session's pointer to its
latest export of that format. The record is written only once the file exists, so no record ever
points at a missing or partial file; a transaction that fails leaves an unreferenced file, which the
bucket's lifecycle rule (tag `kind=export`) or the session purge removes.

An export is a read of the content, not a change to it: it is allowed on any session the caller can
see (completed, cancelled, expired while still retained), and it neither moves the session's activity
time or expiry nor bumps its `version` (its ETag), which is why an unchanged session can reuse its
latest export: the reuse key is the content fingerprint (session version, deck version, message count,
status, format and renderer version).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from sessions_api import errors, ids, timeutil
from sessions_api.cursor import CursorCodec
from sessions_api.dal import items, keys, partition, session_writes, table
from sessions_api.dal.comments_repo import CommentsRepo
from sessions_api.dal.exports_repo import ExportsRepo
from sessions_api.dal.messages_repo import MessagesRepo
from sessions_api.identity import Caller
from sessions_api.logic import authorized
from sessions_api.logic.decks import Decks
from sessions_api.logic.messages import message_out
from sessions_api.logic.policy import Access, Action
from sessions_api.logic.sharing import comment_out
from sessions_api.models.decks import ExportFormat
from sessions_api.models.entities import plain, session_out
from sessions_api.settings import Settings


@dataclass(frozen=True)
class FileType:
    extension: str
    content_type: str


FILE_TYPES: dict[ExportFormat, FileType] = {
    ExportFormat.PPTX: FileType("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ExportFormat.PDF: FileType("pdf", "application/pdf"),
    ExportFormat.DOCX: FileType("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ExportFormat.MARKDOWN: FileType("md", "text/markdown; charset=utf-8"),
    ExportFormat.JSON: FileType("json", "application/json"),
}
DOWNLOAD_URL_SECONDS = 15 * 60
# Bump when the renderers change what they produce, so no older file is reused for unchanged content.
RENDERER_VERSION = 3
MAX_EXPORT_MESSAGES = 5_000
MAX_EXPORT_COMMENTS = 2_000
_MESSAGES_PAGE = 500
_COMMENTS_PAGE = 500
# A reused file must outlive its download link: the lifecycle rule deletes it `export_retention_days`
# after creation at the earliest.
_REUSE_MARGIN = timedelta(hours=1)
_PUBLIC_FIELDS = (
    "export_id",
    "session_id",
    "format",
    "content_type",
    "file_name",
    "size_bytes",
    "sha256",
    "slide_count",
    "message_count",
    "created_at",
    "created_by",
)

Renderer = Callable[[str, dict[str, Any]], bytes]
_ASCII_SPELLING = str.maketrans({"€": "EUR", "£": "GBP", "—": "-", "–": "-", "’": "'", "‘": "'", "“": "", "”": ""})


def format_from_accept(accept: str | None) -> ExportFormat | None:
    """The export format an `Accept` header names by its file type (JSON names the API's own answer)."""
    if not accept:
        return None
    wanted = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    for export_format, file_type in FILE_TYPES.items():
        if export_format is not ExportFormat.JSON and file_type.content_type.split(";")[0] in wanted:
            return export_format
    return None


def file_name(title: str, extension: str) -> tuple[str, str]:
    """(an ASCII-only name for `filename=`, the Unicode name for `filename*=`), both safe as file names."""
    # Control and format characters (a right-to-left override can disguise `fdp.exe` as `exe.pdf`) go too.
    name = "".join(
        " " if unicodedata.category(char)[0] == "C" else char for char in unicodedata.normalize("NFC", title)
    )
    name = re.sub(r"[\"\\/:*?<>|;%]+", " ", name)  # quotes, paths and what file systems reserve
    name = " ".join(name.split()).strip(" .")[:120].strip(" .") or "session"
    ascii_name = unicodedata.normalize("NFKD", name.translate(_ASCII_SPELLING)).encode("ascii", "ignore").decode()
    ascii_name = " ".join(re.sub(r"[^A-Za-z0-9 ._()\[\]+,=@!&'#$-]+", " ", ascii_name).split()).strip(" .")
    return f"{ascii_name or 'session'}.{extension}", f"{name}.{extension}"


def content_disposition(title: str, extension: str) -> str:
    """RFC 6266: a plain `filename` for every client, `filename*` (RFC 8187) for the Unicode name."""
    ascii_name, unicode_name = file_name(title, extension)
    header = f'attachment; filename="{ascii_name}"'
    if unicode_name != ascii_name:
        header += f"; filename*=UTF-8''{quote(unicode_name, safe='')}"
    return header


def fingerprint(session: dict[str, Any], export_format: ExportFormat) -> str:
    data = plain(session)
    return (
        f"{export_format}:s{data['version']}:d{data.get('deck_version', 0)}:m{data.get('message_count', 0)}"
        f":{data['status']}:r{RENDERER_VERSION}"
    )


def _latest_attribute(export_format: ExportFormat) -> str:
    return f"latest_export_{export_format}"


@dataclass
class Exports:
    settings: Settings
    render: Renderer
    repo: ExportsRepo = field(default_factory=ExportsRepo)
    messages_repo: MessagesRepo = field(default_factory=MessagesRepo)
    comments_repo: CommentsRepo = field(default_factory=CommentsRepo)
    decks: Decks = field(default_factory=Decks)

    # -- create -----------------------------------------------------------------------------------
    # `create` and `latest_or_create` return the stored summary (with its S3 key, so an Idempotency-Key
    # replay can still be presented); `present` turns it into the API's answer with a fresh link.
    def create(self, caller: Caller, session_id: str, export_format: ExportFormat) -> dict[str, Any]:
        return self._export(caller, authorized.read(caller, session_id, Action.EXPORT), export_format)

    def latest_or_create(self, caller: Caller, session_id: str, export_format: ExportFormat) -> dict[str, Any]:
        """The latest export of this format if the content has not changed since, else a fresh one."""
        access = authorized.read(caller, session_id, Action.EXPORT)
        session = access.session
        latest = plain(session.get(_latest_attribute(export_format)))
        if (
            isinstance(latest, dict)
            and latest.get("fingerprint") == fingerprint(session, export_format)
            and timeutil.parse(latest["created_at"]) + self._retention() - _REUSE_MARGIN > timeutil.now()
        ):
            return dict(latest)
        return self._export(caller, access, export_format)

    def _retention(self) -> timedelta:
        return timedelta(days=self.settings.export_retention_days)

    def _export(self, caller: Caller, access: Access, export_format: ExportFormat) -> dict[str, Any]:
        session = access.session
        session_id = session["session_id"]
        moment = timeutil.now()
        at = timeutil.iso(moment)
        stored_deck = self.decks.read(session_id)
        with_messages = export_format in (ExportFormat.DOCX, ExportFormat.MARKDOWN, ExportFormat.JSON)
        messages, truncated = self._messages(session_id) if with_messages else ([], False)
        comments = self._comments(session_id) if export_format is ExportFormat.JSON else []
        source = {
            "session": session_out(session).model_dump(mode="json"),
            "deck": stored_deck.deck,
            "deck_version": stored_deck.version,
            "messages": messages,
            "messages_truncated": truncated,
            "comments": comments,
            "exported_at": at,
        }
        body = self.render(str(export_format), source)

        file_type = FILE_TYPES[export_format]
        export_id = ids.new_id("exp")
        s3_key = keys.export_s3_key(session["created_by"], session_id, export_id, file_type.extension)
        disposition = content_disposition(session["title"], file_type.extension)
        self.repo.store_file(s3_key, body, content_type=file_type.content_type, content_disposition=disposition)

        summary = {
            "export_id": export_id,
            "session_id": session_id,
            "format": str(export_format),
            "content_type": file_type.content_type,
            "file_name": file_name(session["title"], file_type.extension)[1],
            "size_bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "slide_count": len(stored_deck.deck.get("slides") or []),
            "message_count": len(messages),
            "created_at": at,
            "created_by": caller.user_id,
            "s3_key": s3_key,
            "fingerprint": fingerprint(session, export_format),
        }
        # The record goes when the lifecycle rule may delete its file, never later.
        record = items.export_record(session_id, summary, ttl=int((moment + self._retention()).timestamp()))
        event = items.event(session_id, "exported", caller.user_id, at, export_id=export_id, format=str(export_format))
        change = session_writes.record_export(session_id, record, event, summary=summary)
        authorized.write(caller, Action.EXPORT, change, access=access)
        return summary

    def _messages(self, session_id: str) -> tuple[list[dict[str, Any]], bool]:
        """The conversation, oldest first, contents resolved from S3 where they live there."""
        found: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while len(found) < MAX_EXPORT_MESSAGES:
            limit = min(_MESSAGES_PAGE, MAX_EXPORT_MESSAGES - len(found))
            page = self.messages_repo.page(session_id, limit=limit, ascending=True, start_key=start)
            found += [message_out(item) for item in page.items]
            start = page.next_key
            if start is None:
                return found, False
        return found, True

    def _comments(self, session_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while len(found) < MAX_EXPORT_COMMENTS:
            page = self.comments_repo.page(session_id, limit=_COMMENTS_PAGE, start_key=start)
            found += [comment_out(item) for item in page.items]
            start = page.next_key
            if start is None:
                break
        return found[:MAX_EXPORT_COMMENTS]

    # -- read -------------------------------------------------------------------------------------
    def get(self, caller: Caller, session_id: str, export_id: str) -> dict[str, Any]:
        authorized.read(caller, session_id, Action.READ)
        item = self.repo.get(session_id, export_id) if export_id.startswith("exp_") else None
        if item is None or table.is_expired_by_ttl(item, timeutil.now().timestamp()):
            raise errors.ExportNotFound(export_id)
        return self.present(plain(item))

    def list(self, caller: Caller, session_id: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
        authorized.read(caller, session_id, Action.READ)
        scope = f"exports:{session_id}"
        cursors = CursorCodec.from_settings(self.settings)
        start = partition.resume_key(
            cursors, cursor, user=caller.user_id, scope=scope, session_id=session_id, prefix=keys.EXPORT_PREFIX
        )
        page = self.repo.page(session_id, limit=limit, start_key=start)
        now_epoch = timeutil.now().timestamp()
        exports = [self.present(plain(item)) for item in page.items if not table.is_expired_by_ttl(item, now_epoch)]
        return {
            "session_id": session_id,
            "exports": exports,
            "next_cursor": cursors.encode(page.next_key, user=caller.user_id, scope=scope) if page.next_key else None,
            "has_more": page.next_key is not None,
        }

    def present(self, summary: dict[str, Any]) -> dict[str, Any]:
        """The export as the API shows it, with a fresh presigned download link."""
        expires = timeutil.now() + timedelta(seconds=DOWNLOAD_URL_SECONDS)
        extension = FILE_TYPES[ExportFormat(summary["format"])].extension
        title = summary["file_name"].removesuffix("." + extension)
        url = self.repo.download_url(
            summary["s3_key"],
            expires_in=DOWNLOAD_URL_SECONDS,
            content_disposition=content_disposition(title, extension),
            content_type=summary["content_type"],
        )
        out = {name: summary[name] for name in _PUBLIC_FIELDS}
        return {**out, "download_url": url, "expires_at": timeutil.iso(expires)}
