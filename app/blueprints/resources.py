"""Routes under /api: who am I, and the caller's own notes."""

from __future__ import annotations

from typing import Any

import asyncpg
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json
from sanic_ext.extensions.openapi import openapi

from app.bearer import caller, requires
from app.blueprints.common import (
    PAGE_PARAMETERS,
    answers,
    iso,
    json_body,
    object_schema,
    paged,
    path_id,
)
from app.db import Database
from app.errors import ERROR_SCHEMA, NotFound
from app.inputs import read_json, required_string, string
from app.pagination import page_of, split
from app.stores import notes

bp = Blueprint("resources", url_prefix="/api")

MAX_TITLE = 200
NO_NOTE = "No such note."  # missing, malformed id, or another user's: all alike
MAX_BODY = 10_000
_NOTE_IN = object_schema(
    ["title", "body"],
    title={"type": "string", "minLength": 1, "maxLength": MAX_TITLE, "pattern": "^[^\\x00]*$"},
    body={"type": "string", "maxLength": MAX_BODY, "pattern": "^[^\\x00]*$"},
)


_NOTE = object_schema(
    ["id", "title", "body", "created_at", "updated_at"],
    id={"type": "string", "format": "uuid"},
    title={"type": "string"},
    body={"type": "string"},
    created_at={"type": "string", "format": "date-time"},
    updated_at={"type": "string", "format": "date-time"},
)
_ME = object_schema(
    ["id", "username", "scope", "session_id"],
    id={"type": "string"},
    username={"type": "string"},
    scope={"type": "string"},
    session_id={"type": "string"},
)


def _note(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "title": row["title"],
        "body": row["body"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def _note_fields(request: Request) -> tuple[str, str]:
    body = read_json(request)
    title = required_string(body, "title", max_length=MAX_TITLE)
    text = string(body, "body", max_length=MAX_BODY, allow_empty=True)
    assert text is not None
    return title, text


@bp.get("/me")
@openapi.definition(
    operation="getMe",
    summary="The caller, from the access token alone",
    response=answers((200, _ME, "The caller")),
)
@requires()
async def me(request: Request) -> HTTPResponse:
    claims = caller(request)
    return json(
        {
            "id": claims.sub,
            "username": claims.username,
            "scope": claims.scope,
            "session_id": claims.sid,
        }
    )


@bp.get("/notes")
@openapi.definition(
    summary="The caller's notes, newest first, a page at a time",
    parameter=PAGE_PARAMETERS,
    response=answers((200, paged("notes", _NOTE), "A page of notes")),
)
@requires("notes:read")
async def list_notes(request: Request, db: Database) -> HTTPResponse:
    page = page_of(request)
    rows = await notes.page_for(db, caller(request).sub, limit=page.limit + 1, after=page.after)
    rows, cursor = split(rows, page)
    return json({"notes": [_note(row) for row in rows], "next_cursor": cursor})


@bp.post("/notes")
@openapi.definition(
    summary="Create a note", body=json_body(_NOTE_IN), response=answers((201, _NOTE, "Created"))
)
@requires("notes:write")
async def create_note(request: Request, db: Database) -> HTTPResponse:
    title, text = _note_fields(request)
    row = await notes.create(db, caller(request).sub, title, text)
    return json(_note(row), status=201)


@bp.get("/notes/<note_id:str>")
@openapi.definition(
    summary="One of the caller's notes",
    response=answers((200, _NOTE, "The note"), (404, ERROR_SCHEMA, "No such note of the caller")),
)
@requires("notes:read")
async def get_note(request: Request, note_id: str, db: Database) -> HTTPResponse:
    row = await notes.get(db, caller(request).sub, path_id(note_id, NO_NOTE))
    if row is None:
        raise NotFound(NO_NOTE)
    return json(_note(row))


@bp.put("/notes/<note_id:str>")
@openapi.definition(
    summary="Replace a note",
    body=json_body(_NOTE_IN),
    response=answers((200, _NOTE, "The note"), (404, ERROR_SCHEMA, "No such note of the caller")),
)
@requires("notes:write")
async def update_note(request: Request, note_id: str, db: Database) -> HTTPResponse:
    nid = path_id(note_id, NO_NOTE)
    title, text = _note_fields(request)
    row = await notes.update(db, caller(request).sub, nid, title, text)
    if row is None:
        raise NotFound(NO_NOTE)
    return json(_note(row))


@bp.delete("/notes/<note_id:str>")
@openapi.definition(
    summary="Delete a note",
    response=answers((204, None, "Deleted"), (404, ERROR_SCHEMA, "No such note of the caller")),
)
@requires("notes:write")
async def delete_note(request: Request, note_id: str, db: Database) -> HTTPResponse:
    if not await notes.delete(db, caller(request).sub, path_id(note_id, NO_NOTE)):
        raise NotFound(NO_NOTE)
    return empty()
