"""Every key of the single table is built here (see docs/architecture.md)."""

from __future__ import annotations

import zlib

SESSION_SK = "#SESSION"
COUNTERS_SK = "COUNTERS"
# `~` sorts after every timestamp, so newest-first listing meets the counters item first.
COUNTERS_GSI1SK = "~COUNTERS"
DECK_SK = "DECK"
RESULTS_SK = "RESULTS"
MESSAGE_PREFIX = "MSG#"
EXPORT_PREFIX = "EXPORT#"
SHARE_PREFIX = "SHARE#"
COMMENT_PREFIX = "COMMENT#"
EVENT_PREFIX = "EVENT#"
RUN_PREFIX = "RUN#"
RUN_EVENT_PREFIX = "RUNEVT#"
# Waiting runs in submission order; an interrupting run sorts before them all (`!` < any id).
RUN_QUEUE_PREFIX = "RUNQ#"
RUN_QUEUE_FIRST = "!"
IDEMPOTENCY_PREFIX = "IDEMPOTENCY#"
LIVE_PREFIX = "LIVE#"  # a WebSocket connection's subscription to a run, in the run's session partition
IDEMPOTENCY_SK = "IDEMPOTENCY"
TAKEOUT_PREFIX = "TAKEOUT#"  # an export-everything job, in its user's partition
TAKEOUT_LOCK_SK = "TAKEOUT"  # names a user's one unfinished export-everything job
# What a user wrote in a session not theirs (a comment, a history event, a run): found again, to anonymise, if
# they erase.
AUTHORED_PREFIX = "AUTHORED#"
ERASURE_PREFIX = "ERASURE#"  # an erasure (DELETE /me) and, once done, its receipt, in its user's partition
RATE_PREFIX = "RATE#"  # a user's writes in one second (dal/rates.py)


def session_pk(session_id: str) -> str:
    return f"SESSION#{session_id}"


def session_key(session_id: str) -> dict[str, str]:
    return {"PK": session_pk(session_id), "SK": SESSION_SK}


def user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def counters_key(user_id: str) -> dict[str, str]:
    return {"PK": user_pk(user_id), "SK": COUNTERS_SK}


def user_item_key(user_id: str, sort_key: str) -> dict[str, str]:
    return {"PK": user_pk(user_id), "SK": sort_key}


def takeout_key(user_id: str, job_id: str) -> dict[str, str]:
    return user_item_key(user_id, TAKEOUT_PREFIX + job_id)


def erasure_key(user_id: str, erasure_id: str) -> dict[str, str]:
    return user_item_key(user_id, ERASURE_PREFIX + erasure_id)


def rate_key(user_id: str, second: int) -> dict[str, str]:
    return user_item_key(user_id, f"{RATE_PREFIX}{second}")


def authored_key(user_id: str, session_id: str, pointer_id: str) -> dict[str, str]:
    return user_item_key(user_id, f"{AUTHORED_PREFIX}{session_id}#{pointer_id}")


def erasing_gsi1pk(user_id: str) -> str:
    """Where an erasure's hidden sessions wait for its worker's purge (the owner listing's index)."""
    return f"ERASING#{user_id}"


def owner_gsi1pk(user_id: str) -> str:
    return f"OWNER#{user_id}"


def activity_sk(last_activity_at: str, session_id: str) -> str:
    return f"{last_activity_at}#{session_id}"


def active_gsi2pk(user_id: str) -> str:
    return f"ACTIVE#{user_id}"


def shared_gsi2pk(recipient: str) -> str:
    return f"SHARED#{recipient}"


def due_shard(session_id: str, shards: int) -> int:
    return zlib.crc32(session_id.encode()) % shards


def due_gsi3pk(shard: int) -> str:
    return f"DUE#{shard}"


def due_pk(session_id: str, shards: int) -> str:
    """The due-index partition a session's expiry and purge are scheduled in."""
    return due_gsi3pk(due_shard(session_id, shards))


def message_key(session_id: str, message_id: str) -> dict[str, str]:
    return {"PK": session_pk(session_id), "SK": MESSAGE_PREFIX + message_id}


def export_key(session_id: str, export_id: str) -> dict[str, str]:
    return {"PK": session_pk(session_id), "SK": EXPORT_PREFIX + export_id}


def deck_key(session_id: str) -> dict[str, str]:
    return {"PK": session_pk(session_id), "SK": DECK_SK}


def results_key(session_id: str) -> dict[str, str]:
    return {"PK": session_pk(session_id), "SK": RESULTS_SK}


def share_sk(recipient_kind: str, recipient: str) -> str:
    return f"{SHARE_PREFIX}{recipient_kind.upper()}#{recipient}"


def share_key(session_id: str, recipient_kind: str, recipient: str) -> dict[str, str]:
    return {"PK": session_pk(session_id), "SK": share_sk(recipient_kind, recipient)}


def comment_key(session_id: str, comment_id: str) -> dict[str, str]:
    return {"PK": session_pk(session_id), "SK": COMMENT_PREFIX + comment_id}


def event_key(session_id: str, event_id: str) -> dict[str, str]:
    return {"PK": session_pk(session_id), "SK": EVENT_PREFIX + event_id}


def run_key(session_id: str, request_id: str) -> dict[str, str]:
    return {"PK": session_pk(session_id), "SK": RUN_PREFIX + request_id}


def run_event_key(session_id: str, request_id: str, number: int) -> dict[str, str]:
    """Event `number` of a run (zero-padded, so the sort key is the order)."""
    return {"PK": session_pk(session_id), "SK": f"{RUN_EVENT_PREFIX}{request_id}#{number:07d}"}


def run_queue_key(session_id: str, request_id: str, *, first: bool = False) -> dict[str, str]:
    return {"PK": session_pk(session_id), "SK": RUN_QUEUE_PREFIX + (RUN_QUEUE_FIRST if first else "") + request_id}


def idempotency_record_key(record_id: str, session_id: str | None) -> dict[str, str]:
    """A request's record in its session's partition (purged with it); a create's in a partition of its own."""
    if session_id is not None:
        return {"PK": session_pk(session_id), "SK": IDEMPOTENCY_PREFIX + record_id}
    return {"PK": IDEMPOTENCY_PREFIX + record_id, "SK": IDEMPOTENCY_SK}


def idempotency_pointer_key(session_id: str, record_id: str) -> dict[str, str]:
    """In the created session's partition: names the create's record, so the purge deletes both."""
    return {"PK": session_pk(session_id), "SK": IDEMPOTENCY_PREFIX + record_id}


def pointed_idempotency_record(sort_key: str) -> dict[str, str] | None:
    """The create record a partition item's sort key points to, if it is an idempotency item."""
    if not sort_key.startswith(IDEMPOTENCY_PREFIX):
        return None
    return idempotency_record_key(sort_key.removeprefix(IDEMPOTENCY_PREFIX), None)


def s3_user_prefix(owner: str) -> str:
    """Objects of a user that belong to no one session (their export-everything archives)."""
    return f"users/{owner}/"


def s3_sessions_prefix(owner: str) -> str:
    """Every session's objects of one owner."""
    return f"sessions/{owner}/"


def takeout_s3_key(owner: str, job_id: str) -> str:
    return f"{s3_user_prefix(owner)}takeout/{job_id}.zip"


def s3_session_prefix(owner: str, session_id: str) -> str:
    return f"{s3_sessions_prefix(owner)}{session_id}/"


def deck_payload_s3_key(owner: str, session_id: str, version: int, write_id: str) -> str:
    """A deck too large for its item: one object per write, so two writers racing for one version never
    overwrite (or, the loser cleaning up, delete) each other's object."""
    return f"{s3_session_prefix(owner, session_id)}payloads/deck-{version}-{write_id}.json"


def export_s3_key(owner: str, session_id: str, export_id: str, extension: str) -> str:
    return f"{s3_session_prefix(owner, session_id)}exports/{export_id}.{extension}"


def message_payload_s3_key(owner: str, session_id: str, message_id: str) -> str:
    """A message whose content is too large for its item."""
    return f"{s3_session_prefix(owner, session_id)}payloads/{message_id}.json"


def run_input_s3_key(owner: str, session_id: str, request_id: str) -> str:
    """A chat run's input (its message and slide context) too large to keep on the run's item (`run_…`)."""
    return f"{s3_session_prefix(owner, session_id)}payloads/{request_id}.json"


def results_payload_s3_key(owner: str, session_id: str, payload_id: str) -> str:
    """Results too large for their item, one object per PUT (the item names the current one)."""
    return f"{s3_session_prefix(owner, session_id)}payloads/{payload_id}.json"


def connection_key(connection_id: str) -> dict[str, str]:
    """A live (WebSocket) connection: who it is, and which runs it follows."""
    return {"PK": f"CONN#{connection_id}", "SK": "#CONN"}


def subscription_key(session_id: str, request_id: str, connection_id: str) -> dict[str, str]:
    return {"PK": session_pk(session_id), "SK": f"{LIVE_PREFIX}{request_id}#{connection_id}"}
