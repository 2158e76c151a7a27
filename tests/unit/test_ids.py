"""Session ids and the run ids that name them."""

from __future__ import annotations

import pytest

from sessions_api import ids


@pytest.mark.parametrize(
    "session_id",
    [
        "session_0123456789abcdef",
        "0b6f4d4e-7c1a-4f0e-9a39-2d5c8e1f3a70",
        "a_b-c_d-",
        "run_01ARZ3NDEKTSV4RRFFQ69G5FAV_x",
    ],
)
def test_a_run_id_gives_back_the_session_it_was_made_for(session_id: str) -> None:
    assert ids.is_session_id(session_id)
    assert ids.request_session(ids.new_request_id(session_id)) == session_id


@pytest.mark.parametrize(
    "request_id",
    ["run_01ARZ3NDEKTSV4RRFFQ69G5FAV_short", "run_01ARZ3NDEKTSV4RRFFQ69G5FAV_abcd/efgh", "run_x_abcdefgh", "abcdefgh"],
)
def test_anything_else_is_no_run_id(request_id: str) -> None:
    assert ids.request_session(request_id) is None


def test_a_trailing_newline_is_no_session_id() -> None:
    assert not ids.is_session_id("abcdefgh\n")
    assert ids.request_session(ids.new_request_id("abcdefgh") + "\n") is None
