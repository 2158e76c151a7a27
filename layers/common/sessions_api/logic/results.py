"""A session's results: an agent or worker stores them (and may complete the session); anyone who may
read the session reads them, as JSON or as a Markdown document."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.dal import items, keys, session_writes
from sessions_api.dal.results_repo import INLINE_LIMIT_BYTES, ResultsRepo
from sessions_api.identity import Caller
from sessions_api.logic import authorized, lifecycle
from sessions_api.logic.policy import Action
from sessions_api.models.entities import Status
from sessions_api.models.lifecycle import ResultsIn, ResultsOut
from sessions_api.settings import Settings

DOCUMENT_FIELDS = ("results", "summary", "citations", "confidence_score", "execution_metadata")


@dataclass
class Results:
    settings: Settings
    results_repo: ResultsRepo = field(default_factory=ResultsRepo)

    def put(self, caller: Caller, session_id: str, body: ResultsIn, *, if_match: int | None) -> dict[str, Any]:
        """Replace the results: one transaction with the session's activity and a history event.

        With `complete` the same transaction moves the session to `completed` (owner only, a row of the
        transition table); repeating it on a completed session just stores the results again, so a
        worker's retry is harmless. A document too large for an item goes to S3 first.
        """
        document = body.model_dump(mode="json", include=set(DOCUMENT_FIELDS))
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        payload_key = self._store_large(caller, session_id, text)

        moment = timeutil.now()
        at = timeutil.iso(moment)
        stored = [
            items.results(
                session_id,
                {
                    "stored_at": at,
                    "stored_by": caller.user_id,
                    **({"payload_key": payload_key} if payload_key else {"document": text}),
                },
            ),
            items.event(
                session_id,
                "results_stored",
                caller.user_id,
                at,
                size_bytes=len(text.encode("utf-8")),
                complete=body.complete,
            ),
        ]
        status: Status | None = None
        written = False
        if body.complete:
            try:
                lifecycle.Lifecycle(self.settings).write(
                    caller, session_id, lifecycle.Action.COMPLETE, if_match=if_match, with_items=stored
                )
                written = True
            except errors.InvalidStateTransition as refused:
                if refused.extra.get("current_status") != Status.COMPLETED:
                    raise
            status = Status.COMPLETED  # already completed: a retry stores the results only
        if not written:
            change = session_writes.touch(session_id, moment=moment, puts=stored, version=if_match)
            authorized.write(caller, Action.WRITE, change)
        return ResultsOut(
            session_id=session_id, status=status, stored_at=stored[0]["stored_at"], stored_by=caller.user_id, **document
        ).model_dump(mode="json")

    def _store_large(self, caller: Caller, session_id: str, text: str) -> str | None:
        """Results beyond an item's room go to S3 under the session's prefix (the owner's, read first)."""
        if len(text.encode("utf-8")) <= INLINE_LIMIT_BYTES:
            return None
        owner = authorized.read(caller, session_id, Action.WRITE).session["created_by"]
        key = keys.results_payload_s3_key(owner, session_id, ids.new_id("res"))
        self.results_repo.put_payload(key, text.encode("utf-8"))
        return key

    def get(self, caller: Caller, session_id: str) -> tuple[dict[str, Any], str]:
        """The results (empty fields while none are stored) with the session's status, and its title."""
        session = authorized.read(caller, session_id, Action.READ).session
        item = self.results_repo.get(session_id)
        document: dict[str, Any] = {}
        if item is not None:
            text = item["document"] if "document" in item else self.results_repo.get_payload(item["payload_key"])
            document = json.loads(text)
        out = ResultsOut(
            session_id=session_id,
            status=session["status"],
            stored_at=item["stored_at"] if item else None,
            stored_by=item["stored_by"] if item else None,
            **document,
        )
        return out.model_dump(mode="json"), session["title"]


def markdown(results: dict[str, Any], title: str) -> str:
    """The results as a readable Markdown document."""
    lines = [f"# {title}", ""]
    stored = f" · stored {results['stored_at']}" if results.get("stored_at") else " · no results stored yet"
    lines += [f"_Session `{results['session_id']}` · {results.get('status')}{stored}_", ""]
    if results.get("summary"):
        lines += ["## Summary", "", results["summary"], ""]
    if results.get("results") is not None:
        value = results["results"]
        lines += ["## Results", ""]
        lines += (
            [value, ""] if isinstance(value, str) else [*_fenced(json.dumps(value, indent=2, ensure_ascii=False)), ""]
        )
    if results.get("citations"):
        lines += ["## Citations", ""]
        lines += [f"{number}. {_citation(citation)}" for number, citation in enumerate(results["citations"], 1)]
        lines.append("")
    if results.get("confidence_score") is not None:
        lines += ["## Confidence", "", f"{results['confidence_score']:.0%}", ""]
    if results.get("execution_metadata"):
        lines += ["## Execution metadata", "", "| key | value |", "|---|---|"]
        for name, value in results["execution_metadata"].items():
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            lines.append(f"| {_cell(name)} | {_cell(shown)} |")
        lines.append("")
    return "\n".join(lines)


def _fenced(text: str) -> list[str]:
    fence = "```"
    while fence in text:  # a fence longer than any run of backticks inside
        fence += "`"
    return [f"{fence}json", text, fence]


def _citation(citation: Any) -> str:
    if isinstance(citation, str):
        return citation
    title, url = citation.get("title"), citation.get("url")
    text = f"[{title or url}]({url})" if isinstance(url, str) and url.startswith(("https://", "http://")) else title
    rest = [str(citation[name]) for name in ("source", "snippet") if citation.get(name)]
    return " — ".join([str(text or json.dumps(citation, ensure_ascii=False)), *rest])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
