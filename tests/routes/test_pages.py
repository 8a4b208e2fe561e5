"""Cursor pages on sessions, notes and events: limit and cursor in the query, next_cursor null
on the last page, stable while items are added; MAX_SESSIONS_PER_USER ends the oldest."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import Api
from tests.support.asserts import access_refused, assert_error, refresh_refused

PASSWORD = "correct horse"


async def all_pages(
    api: Api, path: str, key: str, token: str, limit: int, between: Any = None
) -> list[list[dict[str, Any]]]:
    """Every page of `path`, calling `between()` after each page."""
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await api.request("GET", path, token=token, params=params)
        assert response.status == 200, response.text
        pages.append(response.json[key])
        cursor = response.json["next_cursor"]
        if cursor is None:
            return pages
        assert len(response.json[key]) == limit
        if between is not None:
            await between()


async def test_notes_pages_are_stable_while_notes_are_added(api: Api) -> None:
    token = (await api.user("alice", PASSWORD))["access_token"]
    made = []
    for index in range(7):
        response = await api.request(
            "POST", "/api/notes", token=token, json={"title": f"n{index}", "body": ""}
        )
        made.append(response.json["id"])
    added = []

    async def add() -> None:
        response = await api.request(
            "POST", "/api/notes", token=token, json={"title": "later", "body": ""}
        )
        added.append(response.json["id"])

    pages = await all_pages(api, "/api/notes", "notes", token, 3, between=add)
    assert [len(page) for page in pages] == [3, 3, 1]
    seen = [note["id"] for page in pages for note in page]
    assert seen == list(reversed(made))  # newest first, none twice, none skipped
    assert len(added) == 2
    # a first page asked for now starts with what was added
    first = await api.request("GET", "/api/notes", token=token, params={"limit": 2})
    assert [note["id"] for note in first.json["notes"]] == list(reversed(added))


async def test_sessions_and_events_pages(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    for _ in range(4):
        await api.login("alice", PASSWORD)
    token = tokens["access_token"]
    pages = await all_pages(api, "/auth/sessions", "sessions", token, 2)
    assert [len(page) for page in pages] == [2, 2, 1]
    ids = [session["id"] for page in pages for session in page]
    assert len(set(ids)) == 5 and ids[-1] == tokens["session_id"]
    assert [s["current"] for page in pages for s in page] == [False] * 4 + [True]
    pages = await all_pages(api, "/auth/events", "events", token, 2)
    assert [event["type"] for page in pages for event in page] == ["login"] * 5
    # the default page holds everything here; an exact fit ends with a null cursor
    whole = await api.request("GET", "/auth/sessions", token=token, params={"limit": 5})
    assert len(whole.json["sessions"]) == 5 and whole.json["next_cursor"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "١"},  # a digit, but not an ASCII one
        {"cursor": "not a cursor"},
        {"cursor": "x" * 300},
        {"cursor": base64.urlsafe_b64encode(b'["2026-01-01T00:00:00", "1"]').decode()},
        {"cursor": base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", "nope"]').decode()},
        {"cursor": base64.urlsafe_b64encode(b'{"a": 1}').decode()},
        {"cursor": base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", 5]').decode()},
        {"cursor": base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", [1]]').decode()},
        {"cursor": base64.urlsafe_b64encode(b'["0001-01-01T00:00:00+14:00", "1"]').decode()},
        {"cursor": base64.urlsafe_b64encode(b'["9999-12-31T23:59:59-14:00", "1"]').decode()},
        {"cursor": base64.urlsafe_b64encode(b'[1, "1"]').decode()},
    ],
)
@pytest.mark.parametrize("path", ["/api/notes", "/auth/sessions", "/auth/events"])
async def test_a_bad_limit_or_cursor_is_400(api: Api, path: str, params: dict[str, str]) -> None:
    token = (await api.user("alice", PASSWORD))["access_token"]
    response = await api.request("GET", path, token=token, params=params)
    assert_error(response, 400, "invalid_request")


async def test_an_event_cursor_out_of_range_is_400(api: Api) -> None:
    token = (await api.user("alice", PASSWORD))["access_token"]
    for item in ("99999999999999999999999", "0", "-5"):
        raw = f'["2026-01-01T00:00:00+00:00", "{item}"]'.encode()
        cursor = base64.urlsafe_b64encode(raw).decode()
        response = await api.request("GET", "/auth/events", token=token, params={"cursor": cursor})
        assert_error(response, 400, "invalid_request")


async def test_a_login_past_the_session_limit_ends_the_oldest(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(max_sessions_per_user=3)
    oldest = await api.user("alice", PASSWORD)
    second = await api.login("alice", PASSWORD)
    await api.login("alice", PASSWORD)
    newest = await api.login("alice", PASSWORD)
    await access_refused(api, oldest["access_token"])
    await refresh_refused(api, oldest["refresh_token"])
    listed = await api.request("GET", "/auth/sessions", token=newest["access_token"])
    ids = [session["id"] for session in listed.json["sessions"]]
    assert len(ids) == 3 and oldest["session_id"] not in ids and second["session_id"] in ids
    events = await api.request("GET", "/auth/events", token=newest["access_token"])
    ended = [event for event in events.json["events"] if event["type"] == "session_ended"]
    assert [(e["session_id"], e["detail"]) for e in ended] == [
        (oldest["session_id"], {"reason": "session_limit"})
    ]
