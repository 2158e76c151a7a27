"""Paging a session's comments or shares never ends early when DynamoDB stops a query at 1 MB."""

from __future__ import annotations

from typing import Any

from sessions_api.dal import keys, partition


def test_a_query_cut_at_1_mb_still_hands_on_a_cursor(table: Any) -> None:
    # Given 30 comments of ~100 KB each: one query reads at most 1 MB, so it stops after about ten
    for i in range(30):
        table.put_item(Item={**keys.comment_key("session_0123456789abcdef", f"cmt_{i:03d}"), "blob": "x" * 100_000})
    # When every page is followed
    seen, start = [], None
    while True:
        page = partition.page("session_0123456789abcdef", keys.COMMENT_PREFIX, limit=25, start_key=start)
        seen += [item["SK"] for item in page.items]
        if page.next_key is None:
            break
        start = page.next_key
    # Then none was skipped
    assert len(seen) == 30 and len(set(seen)) == 30
