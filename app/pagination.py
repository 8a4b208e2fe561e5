"""Cursor pagination (keyset, newest first): `limit` and `cursor` in the query string, and a
`next_cursor` that is null on the last page. Pure apart from reading the query string.

A cursor is opaque to clients: the position of the last item of a page (its time and id),
base64url JSON. Items inserted meanwhile never shift a page: the next page starts strictly
after that position, so no item is shown twice or skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sanic import Request

from app.errors import InvalidRequest

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR = 256
BAD_CURSOR = "The cursor is not one this service gave out."
MIN_YEAR, MAX_YEAR = 2000, 9998  # what a cursor of ours can hold


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    after: tuple[datetime, Any] | None  # the last item's (time, id) of the page before


def encode(at: datetime, item_id: Any) -> str:
    raw = json.dumps([at.isoformat(), str(item_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _uuid(raw: str) -> str:
    return str(uuid.UUID(raw))


def bigint(raw: str) -> int:
    """An id of a bigint column (the audit trail's)."""
    value = int(raw)
    if not 0 < value < 2**63:
        raise ValueError("out of range")
    return value


def decode(cursor: str, id_type: Callable[[str], Any] = _uuid) -> tuple[datetime, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, item_id = json.loads(raw)
        if not isinstance(at, str) or not isinstance(item_id, str):
            raise ValueError("not a cursor")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("naive")
        when = when.astimezone(UTC)  # out of range: OverflowError, here and not in PostgreSQL
        if not MIN_YEAR <= when.year <= MAX_YEAR:
            raise ValueError("out of range")
        return when, id_type(item_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise InvalidRequest(BAD_CURSOR) from None


def page_of(request: Request, id_type: Callable[[str], Any] = _uuid) -> Page:
    """The page a request asks for; `400 invalid_request` for a bad limit or cursor."""
    raw_limit = request.args.get("limit")
    if raw_limit is None:
        limit = DEFAULT_LIMIT
    elif raw_limit.isascii() and raw_limit.isdigit() and 1 <= int(raw_limit) <= MAX_LIMIT:
        limit = int(raw_limit)
    else:
        raise InvalidRequest(f"The limit must be a whole number from 1 to {MAX_LIMIT}.")
    cursor = request.args.get("cursor")
    if cursor is None:
        return Page(limit, None)
    if not cursor or len(cursor) > MAX_CURSOR:
        raise InvalidRequest(BAD_CURSOR)
    return Page(limit, decode(cursor, id_type))


def split(rows: list[T], page: Page, at: str = "created_at") -> tuple[list[T], str | None]:
    """Given up to one row more than the page holds (fetched to know whether more follow):
    the page's rows and the cursor of the next page (None on the last)."""
    if len(rows) <= page.limit:
        return rows, None
    last: Any = rows[page.limit - 1]
    return rows[: page.limit], encode(last[at], last["id"])
