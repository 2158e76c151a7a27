"""Sharing a session: grant, list, revoke, the sessions shared with the caller, and comments.

A share is one item per recipient in the session's partition (`SHARE#USER#<sub>` or
`SHARE#EMAIL#<email>`), indexed on GSI2 under `SHARED#<recipient>` by the time it was shared. Who may
do what with a share is `logic/policy.py`; every write goes through `logic/authorized.py`. Comments:
the owner and `collaborate` recipients write them, every reader reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sessions_api import errors, ids, timeutil
from sessions_api.cursor import CursorCodec
from sessions_api.dal import items, keys, partition, session_writes
from sessions_api.dal.comments_repo import CommentsRepo
from sessions_api.dal.sessions_repo import erased, totals, visible
from sessions_api.dal.shares_repo import SharesRepo
from sessions_api.identity import Caller
from sessions_api.logic import authorized, policy
from sessions_api.logic.policy import Action
from sessions_api.models.entities import Status, plain, session_out
from sessions_api.models.sharing import CommentIn, CommentOut, GrantOut, ShareIn, ShareOut, recipient_kind
from sessions_api.settings import Settings

SHARE_ID = re.compile(r"^shr_[0-9A-HJKMNP-TV-Z]{26}$")
SHARED_SCOPE = "sessions:shared"


def grant_out(item: dict[str, Any], now_iso: str) -> dict[str, Any]:
    data = plain(item)
    return GrantOut(
        share_id=data["share_id"],
        recipient=data["recipient"],
        recipient_kind=data["recipient_kind"],
        permissions=data["permission"],
        message=data.get("message"),
        expires_at=data.get("expires_at"),
        expired=not policy.share_is_live(data, now_iso),
        created_at=data["created_at"],
        created_by=data["created_by"],
    ).model_dump(mode="json")


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
class Sharing:
    settings: Settings
    shares: SharesRepo = field(default_factory=SharesRepo)
    comments: CommentsRepo = field(default_factory=CommentsRepo)

    @property
    def cursors(self) -> CursorCodec:
        return CursorCodec.from_settings(self.settings)

    # -- share ----------------------------------------------------------------------------------
    def share(self, caller: Caller, session_id: str, body: ShareIn, *, session_url: str) -> dict[str, Any]:
        """One item per recipient, the `shared` event and the session's touch in one transaction.

        Sharing again with a recipient replaces their earlier grant (permission, expiry, message, share id).
        """
        for index, recipient in enumerate(body.recipients):
            if recipient in (caller.user_id, caller.email):
                raise errors.validation_error(f"body.recipients.{index}", "you cannot share a session with yourself")
        moment = timeutil.now()
        at = timeutil.iso(moment)
        expires_at = self._expiry(body.expiration, moment)
        share_id = ids.new_id("shr")
        grants = [
            items.share(
                session_id,
                share_id=share_id,
                recipient=recipient,
                kind=str(recipient_kind(recipient)),
                permission=str(body.permissions),
                owner=caller.user_id,
                at=at,
                message=body.message,
                expires_at=expires_at,
            )
            for recipient in body.recipients
        ]
        event = items.event(
            session_id,
            "shared",
            caller.user_id,
            at,
            share_id=share_id,
            permissions=str(body.permissions),
            recipient_count=len(grants),
        )
        authorized.write(caller, Action.MANAGE, session_writes.touch(session_id, moment=moment, puts=[*grants, event]))
        return ShareOut(
            share_id=share_id,
            session_id=session_id,
            share_url=session_url,
            recipients=body.recipients,
            permissions=body.permissions,
            message=body.message,
            expires_at=expires_at,
            created_at=at,
        ).model_dump(mode="json")

    @staticmethod
    def _expiry(expiration: datetime | None, moment: datetime) -> str | None:
        if expiration is None:
            return None
        expires_at = timeutil.iso(expiration)
        if expires_at <= timeutil.iso(moment):
            raise errors.validation_error("body.expiration", "expiration must be in the future")
        return expires_at

    # -- list and revoke ------------------------------------------------------------------------
    def grants(self, caller: Caller, session_id: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
        """Who has access, one entry per recipient (owner only: recipients are the owner's business)."""
        authorized.read(caller, session_id, Action.MANAGE)
        scope = f"shares:{session_id}"
        start = partition.resume_key(
            self.cursors, cursor, user=caller.user_id, scope=scope, session_id=session_id, prefix=keys.SHARE_PREFIX
        )
        page = self.shares.grants(session_id, limit=limit, start_key=start)
        now_iso = timeutil.now_iso()
        return {
            "session_id": session_id,
            "shares": [grant_out(item, now_iso) for item in page.items],
            "next_cursor": self.cursors.encode(page.next_key, user=caller.user_id, scope=scope)
            if page.next_key
            else None,
            "has_more": page.next_key is not None,
        }

    def revoke(self, caller: Caller, session_id: str, share_id: str) -> None:
        """Delete every recipient item of the share at once; the next request of a recipient is refused."""
        access = authorized.read(caller, session_id, Action.MANAGE)
        grants = self.shares.of_share(session_id, share_id) if SHARE_ID.match(share_id) else []
        if not grants:
            raise errors.ShareNotFound(share_id)
        moment = timeutil.now()
        at = timeutil.iso(moment)
        event = items.event(
            session_id, "share_revoked", caller.user_id, at, share_id=share_id, recipient_count=len(grants)
        )
        deletes = [{"PK": grant["PK"], "SK": grant["SK"]} for grant in grants]
        if access.session["status"] == Status.EXPIRED:  # revoking never reopens an expired session
            change = session_writes.stamp_expired(session_id, at=at, puts=[event], deletes=deletes)
        else:
            change = session_writes.touch(session_id, moment=moment, puts=[event], deletes=deletes)
        authorized.write(caller, Action.MANAGE, change, access=access)

    # -- shared with me -------------------------------------------------------------------------
    def shared_with_me(self, caller: Caller, *, limit: int, cursor: str | None) -> dict[str, Any]:
        """Sessions shared with the caller (by user id and by e-mail), newest share first.

        Two GSI2 queries (one per identity) are merged by share time; the page's sessions and the
        caller's share items are then read strongly in one BatchGet, so a revoked or expired share, a
        deleted or purged session, never shows even while the index lags. A session shared with both
        identities is listed once, at its newest live share.
        """
        before = None
        if cursor:
            before = self.cursors.decode(cursor, user=caller.user_id, scope=SHARED_SCOPE).get("before")
            if not isinstance(before, str):
                raise errors.BadRequest("The cursor is not valid")
        identities = [caller.user_id, *([caller.email] if caller.email else [])]
        streams = [self.shares.shared_with(who, limit=limit + 1, before=before) for who in identities]
        positions = sorted({item["GSI2SK"]: item["session_id"] for s in streams for item in s.items}.items())[::-1]
        # An index page cut short leaves older entries unseen: nothing older than its last one is final yet.
        horizon = max((s.items[-1]["GSI2SK"] for s in streams if s.more and s.items), default="")
        eligible = [(position, sid) for position, sid in positions if position >= horizon]
        page = eligible[:limit]
        has_more = bool(page) and (len(eligible) > limit or any(s.more for s in streams))
        owners = {item["session_id"]: str(item["created_by"]) for s in streams for item in s.items}
        sessions, counters = self._confirmed(caller, page, owners)
        next_cursor = (
            self.cursors.encode({"before": page[-1][0]}, user=caller.user_id, scope=SHARED_SCOPE) if has_more else None
        )
        return {
            "sessions": sessions,
            "count": len(sessions),
            "next_cursor": next_cursor,
            "has_more": has_more,
            **totals(counters),  # the caller's own sessions, as the contract defines them for every listing
        }

    def _confirmed(
        self, caller: Caller, page: list[tuple[str, str]], owners: dict[str, str]
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The page's live sessions, and the caller's counters read in the same batch, with their owners'
        (whose erasure hides their sessions at once: `sessions_repo.erased`)."""

        def share_keys(sid: str) -> list[dict[str, str]]:
            mine = [keys.share_key(sid, "user", caller.user_id)]
            return mine + ([keys.share_key(sid, "email", caller.email)] if caller.email else [])

        session_ids = list(dict.fromkeys(sid for _, sid in page))
        counters_key = keys.counters_key(caller.user_id)
        owner_keys = [
            keys.counters_key(owner)
            for owner in sorted({owners[sid] for sid in session_ids})
            if owner != caller.user_id
        ]
        sessions_and_shares = (key for sid in session_ids for key in (keys.session_key(sid), *share_keys(sid)))
        found = {
            (item["PK"], item["SK"]): item
            for item in self.shares.get_many([counters_key, *owner_keys, *sessions_and_shares])
        }
        owner_counters = {pk: item for (pk, sk), item in found.items() if sk == keys.COUNTERS_SK}
        now = timeutil.now()
        now_iso, now_epoch = timeutil.iso(now), now.timestamp()
        listed = []
        for position, sid in page:
            session = visible(found.get((keys.session_pk(sid), keys.SESSION_SK)), now_epoch)
            if session is not None and erased(session, owner_counters.get(keys.user_pk(session["created_by"]))):
                session = None
            shares = [found[(key["PK"], key["SK"])] for key in share_keys(sid) if (key["PK"], key["SK"]) in found]
            live = [share for share in shares if policy.share_is_live(share, now_iso)]
            if session is None or not live or max(share["GSI2SK"] for share in live) != position:
                continue  # gone, revoked, expired, or listed at the caller's newer share of it
            best = max(live, key=lambda share: policy.SHARE_PERMISSIONS[share["permission"]])
            listed.append(
                {
                    **session_out(session).model_dump(mode="json"),
                    "permission": best["permission"],
                    "share_id": best["share_id"],
                    "shared_at": best["created_at"],
                    "share_expires_at": best.get("expires_at"),
                }
            )
        return listed, found.get((counters_key["PK"], counters_key["SK"]))

    # -- comments -------------------------------------------------------------------------------
    def comment(self, caller: Caller, session_id: str, body: CommentIn) -> dict[str, Any]:
        """The comment, the `commented` event and the session's touch in one transaction."""
        moment = timeutil.now()
        at = timeutil.iso(moment)
        comment_id = ids.new_id("cmt")
        fields: dict[str, Any] = {
            "session_id": session_id,
            "content": body.content,
            "comment_type": str(body.comment_type),
            "author": caller.user_id,  # from the verified claims only, never from the body
            "created_at": at,
        }
        if body.reference_point is not None:
            fields["reference_point"] = body.reference_point.model_dump(exclude_none=True)
        item = items.comment(session_id, comment_id, fields)
        event = items.event(
            session_id, "commented", caller.user_id, at, comment_id=comment_id, comment_type=str(body.comment_type)
        )
        authorized.write(caller, Action.COMMENT, session_writes.touch(session_id, moment=moment, puts=[item, event]))
        return comment_out(item)

    def list_comments(self, caller: Caller, session_id: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
        """Oldest first, the order of the conversation they annotate."""
        authorized.read(caller, session_id, Action.READ)
        scope = f"comments:{session_id}"
        start = partition.resume_key(
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
