"""/api/notes CRUD under the notes:read / notes:write scopes, each user seeing only their own
notes, and /api/me answering from the access token."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import pytest

from tests.support import Api
from tests.support.asserts import assert_error

PASSWORD = "correct horse"
NOTE_FIELDS = {"id", "title", "body", "created_at", "updated_at"}
JSON = {"content-type": "application/json"}


def assert_note(body: dict[str, Any], title: str, text: str) -> None:
    assert set(body) == NOTE_FIELDS, body
    uuid.UUID(body["id"])
    assert body["title"] == title
    assert body["body"] == text
    created = datetime.fromisoformat(body["created_at"])
    updated = datetime.fromisoformat(body["updated_at"])
    assert created.tzinfo is not None and updated >= created


async def create(api: Api, token: str, title: str = "Groceries", body: str = "milk") -> Any:
    response = await api.request(
        "POST", "/api/notes", token=token, json={"title": title, "body": body}
    )
    assert response.status == 201, response.text
    return response.json


async def test_create_answers_201_with_the_note(api: Api) -> None:
    token = (await api.user())["access_token"]
    response = await api.request(
        "POST", "/api/notes", token=token, json={"title": "Groceries", "body": "milk\neggs"}
    )
    assert response.status == 201, response.text
    assert response.headers.get("content-type", "").startswith("application/json")
    assert_note(response.json, "Groceries", "milk\neggs")
    assert response.json["created_at"] == response.json["updated_at"]
    fetched = await api.request("GET", f"/api/notes/{response.json['id']}", token=token)
    assert fetched.status == 200
    assert fetched.json == response.json


async def test_empty_body_text_and_unicode_are_kept(api: Api) -> None:
    token = (await api.user())["access_token"]
    for title, text in [("t", ""), ("Ünïcødé ✓ 😀", "日本語\ttab"), ("x" * 200, "y" * 5000)]:
        note = await create(api, token, title, text)
        assert_note(note, title, text)
        fetched = await api.request("GET", f"/api/notes/{note['id']}", token=token)
        assert_note(fetched.json, title, text)


async def test_list_is_newest_first_and_only_the_callers(api: Api) -> None:
    alice = (await api.user("alice"))["access_token"]
    bob = (await api.user("bob"))["access_token"]
    empty = await api.request("GET", "/api/notes", token=alice)
    assert empty.status == 200
    assert empty.json == {"notes": [], "next_cursor": None}
    created = []
    for index in range(4):
        created.append(await create(api, alice, f"alice {index}", str(index)))
        await asyncio.sleep(0.01)
    bobs = await create(api, bob, "bob's", "secret")
    listed = await api.request("GET", "/api/notes", token=alice)
    assert listed.status == 200
    assert set(listed.json) == {"notes", "next_cursor"}
    assert listed.json["notes"] == list(reversed(created))
    assert all(set(note) == NOTE_FIELDS for note in listed.json["notes"])
    bob_list = await api.request("GET", "/api/notes", token=bob)
    assert bob_list.json == {"notes": [bobs], "next_cursor": None}


async def test_update_replaces_title_and_body(api: Api) -> None:
    token = (await api.user())["access_token"]
    note = await create(api, token, "old", "old body")
    await asyncio.sleep(0.01)
    response = await api.request(
        "PUT", f"/api/notes/{note['id']}", token=token, json={"title": "new", "body": "new body"}
    )
    assert response.status == 200, response.text
    assert_note(response.json, "new", "new body")
    assert response.json["id"] == note["id"]
    assert response.json["created_at"] == note["created_at"]
    assert datetime.fromisoformat(response.json["updated_at"]) > datetime.fromisoformat(
        note["updated_at"]
    )
    fetched = await api.request("GET", f"/api/notes/{note['id']}", token=token)
    assert fetched.json == response.json
    listed = await api.request("GET", "/api/notes", token=token)
    assert listed.json["notes"] == [response.json]


async def test_delete_answers_204_and_the_note_is_gone(api: Api) -> None:
    token = (await api.user())["access_token"]
    keep = await create(api, token, "keep", "")
    gone = await create(api, token, "gone", "")
    response = await api.request("DELETE", f"/api/notes/{gone['id']}", token=token)
    assert response.status == 204
    assert response.text == ""
    assert_error(
        await api.request("GET", f"/api/notes/{gone['id']}", token=token), 404, "not_found"
    )
    assert_error(
        await api.request("DELETE", f"/api/notes/{gone['id']}", token=token), 404, "not_found"
    )
    put = await api.request(
        "PUT", f"/api/notes/{gone['id']}", token=token, json={"title": "back", "body": ""}
    )
    assert_error(put, 404, "not_found")
    listed = await api.request("GET", "/api/notes", token=token)
    assert listed.json == {"notes": [keep], "next_cursor": None}


@pytest.mark.parametrize(
    "note_id",
    [
        str(uuid.uuid4()),
        "00000000-0000-0000-0000-000000000000",
        "not-a-uuid",
        "123",
        "1" * 200,
        "%27%20OR%201%3D1",
        "%00",
    ],
)
async def test_missing_or_malformed_id_is_404(api: Api, note_id: str) -> None:
    token = (await api.user())["access_token"]
    await create(api, token)
    for method, kwargs in [
        ("GET", {}),
        ("PUT", {"json": {"title": "t", "body": "b"}}),
        ("DELETE", {}),
    ]:
        response = await api.request(method, f"/api/notes/{note_id}", token=token, **kwargs)
        assert_error(response, 404, "not_found")
    assert len((await api.request("GET", "/api/notes", token=token)).json["notes"]) == 1


async def test_another_users_note_is_not_found_and_stays_unchanged(api: Api) -> None:
    alice = (await api.user("alice"))["access_token"]
    bob = (await api.user("bob"))["access_token"]
    note = await create(api, alice, "alice's", "private")
    path = f"/api/notes/{note['id']}"
    missing = assert_error(
        await api.request("GET", f"/api/notes/{uuid.uuid4()}", token=bob), 404, "not_found"
    )
    # bob can't tell alice's note from a missing one
    assert assert_error(await api.request("GET", path, token=bob), 404, "not_found") == missing
    put = await api.request("PUT", path, token=bob, json={"title": "pwned", "body": "pwned"})
    assert assert_error(put, 404, "not_found") == missing
    assert assert_error(await api.request("DELETE", path, token=bob), 404, "not_found") == missing
    assert (await api.request("GET", "/api/notes", token=bob)).json == {
        "notes": [],
        "next_cursor": None,
    }
    after = await api.request("GET", path, token=alice)
    assert after.status == 200
    assert after.json == note


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("missing title", {"body": "b"}),
        ("empty title", {"title": "", "body": "b"}),
        ("null title", {"title": None, "body": "b"}),
        ("number title", {"title": 5, "body": "b"}),
        ("list title", {"title": ["t"], "body": "b"}),
        ("title over 200", {"title": "x" * 201, "body": "b"}),
        ("emoji title over 200", {"title": "😀" * 201, "body": "b"}),
        ("missing body", {"title": "t"}),
        ("null body", {"title": "t", "body": None}),
        ("number body", {"title": "t", "body": 42}),
        ("object body", {"title": "t", "body": {"text": "b"}}),
        ("bool body", {"title": "t", "body": False}),
    ],
)
async def test_invalid_note_is_400(api: Api, name: str, payload: dict[str, Any]) -> None:
    token = (await api.user())["access_token"]
    note = await create(api, token, "original", "kept")
    assert_error(
        await api.request("POST", "/api/notes", token=token, json=payload), 400, "invalid_request"
    )
    put = await api.request("PUT", f"/api/notes/{note['id']}", token=token, json=payload)
    assert_error(put, 400, "invalid_request")
    listed = await api.request("GET", "/api/notes", token=token)
    assert listed.json == {"notes": [note], "next_cursor": None}


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", b'["title", "body"]', b'"note"', b"null", b"[" * 50_000],
    ids=["empty", "broken", "array", "list", "string", "null", "deeply-nested"],
)
async def test_malformed_json_is_400(api: Api, content: bytes) -> None:
    token = (await api.user())["access_token"]
    response = await api.request("POST", "/api/notes", token=token, content=content, headers=JSON)
    assert_error(response, 400, "invalid_request")
    assert (await api.request("GET", "/api/notes", token=token)).json == {
        "notes": [],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    "content",
    [
        b'{"title": "a\\u0000b", "body": ""}',
        b'{"title": "ok", "body": "nul \\u0000 inside"}',
        b'{"title": "lone \\ud800 surrogate", "body": ""}',
        b'{"title": "ok", "body": "lone \\udfff surrogate"}',
    ],
    ids=["nul-title", "nul-body", "surrogate-title", "surrogate-body"],
)
async def test_text_that_cannot_be_stored_is_400_not_5xx(api: Api, content: bytes) -> None:
    token = (await api.user())["access_token"]
    response = await api.request("POST", "/api/notes", token=token, content=content, headers=JSON)
    assert_error(response, 400, "invalid_request")
    listed = await api.request("GET", "/api/notes", token=token)
    assert listed.status == 200
    assert listed.json == {"notes": [], "next_cursor": None}


async def test_read_only_token_can_read_but_not_write(api: Api) -> None:
    full = await api.user()
    note = await create(api, full["access_token"])
    read_only = (await api.login(scope="notes:read"))["access_token"]
    assert (await api.request("GET", "/api/notes", token=read_only)).json == {
        "notes": [note],
        "next_cursor": None,
    }
    fetched = await api.request("GET", f"/api/notes/{note['id']}", token=read_only)
    assert fetched.json == note
    for method, path, kwargs in [
        ("POST", "/api/notes", {"json": {"title": "t", "body": "b"}}),
        ("PUT", f"/api/notes/{note['id']}", {"json": {"title": "t", "body": "b"}}),
        ("DELETE", f"/api/notes/{note['id']}", {}),
    ]:
        response = await api.request(method, path, token=read_only, **kwargs)
        assert_error(response, 403, "insufficient_scope")
        assert 'scope="notes:write"' in response.headers.get("www-authenticate", "")
    assert (await api.request("GET", "/api/notes", token=read_only)).json == {
        "notes": [note],
        "next_cursor": None,
    }


async def test_write_only_token_can_write_but_not_read(api: Api) -> None:
    await api.register()
    write_only = (await api.login(scope="notes:write"))["access_token"]
    note = await create(api, write_only, "w", "o")
    for path in ["/api/notes", f"/api/notes/{note['id']}"]:
        response = await api.request("GET", path, token=write_only)
        assert_error(response, 403, "insufficient_scope")
        assert 'scope="notes:read"' in response.headers.get("www-authenticate", "")
    put = await api.request(
        "PUT", f"/api/notes/{note['id']}", token=write_only, json={"title": "w2", "body": ""}
    )
    assert put.status == 200
    assert (await api.request("DELETE", f"/api/notes/{note['id']}", token=write_only)).status == 204


async def test_notes_need_a_token(api: Api) -> None:
    token = (await api.user())["access_token"]
    note = await create(api, token)
    change = {"json": {"title": "x", "body": "y"}}
    for method, path, kwargs in [
        ("GET", "/api/notes", {}),
        ("POST", "/api/notes", change),
        ("GET", f"/api/notes/{note['id']}", {}),
        ("PUT", f"/api/notes/{note['id']}", change),
        ("DELETE", f"/api/notes/{note['id']}", {}),
    ]:
        response = await api.request(method, path, **kwargs)
        assert_error(response, 401, "missing_token")
    assert (await api.request("GET", f"/api/notes/{note['id']}", token=token)).json == note


# -- /api/me ----------------------------------------------------------------------------


async def test_me_matches_the_token_response(api: Api) -> None:
    account = await api.register("Alice")
    tokens = await api.login("Alice")
    response = await api.request("GET", "/api/me", token=tokens["access_token"])
    assert response.status == 200
    assert response.json == {
        "id": account["id"],
        "username": "Alice",
        "scope": tokens["scope"],
        "session_id": tokens["session_id"],
    }
    assert response.json["id"] == tokens["account_id"]


async def test_me_follows_narrowed_scope_and_refresh(api: Api) -> None:
    await api.register()
    tokens = await api.login(scope="notes:read")
    me = await api.request("GET", "/api/me", token=tokens["access_token"])
    assert me.json["scope"] == "notes:read"
    refreshed = await api.refresh(tokens["refresh_token"])
    assert refreshed.status == 200
    after = await api.request("GET", "/api/me", token=refreshed.json["access_token"])
    assert after.json == {
        "id": tokens["account_id"],
        "username": "alice",
        "scope": "notes:read",
        "session_id": tokens["session_id"],
    }


async def test_me_differs_per_session_and_user(api: Api) -> None:
    a1 = await api.user("alice")
    a2 = await api.login("alice")
    b = await api.user("bob")
    answers = [
        (await api.request("GET", "/api/me", token=t["access_token"])).json for t in (a1, a2, b)
    ]
    assert answers[0]["id"] == answers[1]["id"] != answers[2]["id"]
    assert len({a["session_id"] for a in answers}) == 3
    assert [a["username"] for a in answers] == ["alice", "alice", "bob"]
