"""Comments on a session: the owner and `collaborate` recipients write them, every reader reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sessions_api import ids, timeutil
from sessions_api.cursor import CursorCodec
from sessions_api.dal import keys
from sessions_api.dal.comments_repo import CommentsRepo
from sessions_api.dal.sessions_repo import SessionsRepo
from sessions_api.identity import Caller
from sessions_api.logic import access, activity, guard, history, paging
from sessions_api.logic.sharing import not_expired
from sessions_api.models.entities import plain
from sessions_api.models.sharing import CommentIn, CommentOut
from sessions_api.settings import Settings


def comment_out(item: dict[str, Any]) -> dict[str, Any]:
    data = plain(item)
    return CommentOut(
        comment_id=data["comment_id"],
        session_id=data["session_id"],
        content=data["content"],
        comment_type=data["comment_type"],
        reference_point=data.get("reference_point"),
        author=data["author"],
        created_at=data["created_at"],
    ).model_dump(mode="json")


@dataclass
class Comments:
    settings: Settings
    repo: SessionsRepo = field(default_factory=SessionsRepo)
    comments: CommentsRepo = field(default_factory=CommentsRepo)

    @property
    def cursors(self) -> CursorCodec:
        return paging.codec(self.settings)

    def create(self, caller: Caller, session_id: str, body: CommentIn) -> dict[str, Any]:
        """The comment, the `commented` event and the session's touch in one transaction."""
        moment = timeutil.now()
        at = timeutil.iso(moment)
        comment_id = ids.new_id("cmt")
        item: dict[str, Any] = {
            **keys.comment_key(session_id, comment_id),
            "type": "comment",
            "comment_id": comment_id,
            "session_id": session_id,
            "content": body.content,
            "comment_type": str(body.comment_type),
            "author": caller.user_id,  # from the verified claims only, never from the body
            "created_at": at,
        }
        if body.reference_point is not None:
            item["reference_point"] = body.reference_point.model_dump(exclude_none=True)
        event = history.event_item(
            session_id, "commented", caller.user_id, at, comment_id=comment_id, comment_type=str(body.comment_type)
        )
        guard.write_session(
            caller,
            session_id,
            access.Action.COMMENT,
            lambda expr: activity.touch(not_expired(expr), session_id, moment),
            extra_items=[item, event],
            repo=self.repo,
        )
        return comment_out(item)

    def list(self, caller: Caller, session_id: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
        """Oldest first, the order of the conversation they annotate."""
        guard.load_session(caller, session_id, access.Action.READ, self.repo)
        scope = f"comments:{session_id}"
        start = paging.partition_start(
            self.cursors, cursor, user=caller.user_id, scope=scope, session_id=session_id, prefix=keys.COMMENT_PREFIX
        )
        page = self.comments.page(session_id, limit=limit, start_key=start)
        return {
            "session_id": session_id,
            "comments": [comment_out(item) for item in page.items],
            "next_cursor": self.cursors.encode(page.next_key, user=caller.user_id, scope=scope)
            if page.next_key
            else None,
            "has_more": page.next_key is not None,
        }
