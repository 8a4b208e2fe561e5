"""The purge: exactly the sessions no token can need any more and the events past the
retention go, in batches, never a live session (not even one being refreshed meanwhile);
the periodic run happens once per interval whoever asks."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg

from app import maintenance
from app.config import Settings
from tests.support import Api

PASSWORD = "correct horse"


def horizon(settings: Settings) -> int:
    return maintenance.session_horizon(settings)


async def age_session(db: asyncpg.Connection, sid: str, column: str, seconds: float) -> None:
    await db.execute(
        f"UPDATE sessions SET {column} = now() - make_interval(secs => $2) WHERE id = $1",
        sid,
        float(seconds),
    )


async def session_ids(db: asyncpg.Connection) -> set[str]:
    return {str(row["id"]) for row in await db.fetch("SELECT id FROM sessions")}


async def test_the_purge_deletes_exactly_what_may_go(api: Api, db: asyncpg.Connection) -> None:
    settings: Settings = api.app.ctx.settings
    live = await api.user("alice", PASSWORD)
    ended_now = await api.login("alice", PASSWORD)
    ended_long_ago = await api.login("alice", PASSWORD)
    ended_lately = await api.login("alice", PASSWORD)
    expired_long_ago = await api.login("alice", PASSWORD)
    expired_lately = await api.login("alice", PASSWORD)
    for tokens in (ended_now, ended_long_ago, ended_lately):
        assert (
            await api.request("POST", "/auth/logout", token=tokens["access_token"])
        ).status == 204
    await age_session(db, ended_long_ago["session_id"], "revoked_at", horizon(settings) + 5)
    await age_session(db, ended_lately["session_id"], "revoked_at", horizon(settings) - 60)
    await age_session(db, expired_long_ago["session_id"], "expires_at", horizon(settings) + 5)
    await age_session(db, expired_lately["session_id"], "expires_at", horizon(settings) - 60)
    user_id = live["account_id"]
    await db.execute(
        "INSERT INTO events (type, user_id, at) VALUES ('login', $1, now() - interval '91 days'),"
        " ('login', $1, now() - interval '89 days')",
        user_id,
    )
    events_before = await db.fetchval("SELECT count(*) FROM events")

    purged = await maintenance.purge_now(api.app.ctx.db, settings)
    assert purged == maintenance.Purged(sessions=2, events=1)
    left = await session_ids(db)
    gone = {ended_long_ago["session_id"], expired_long_ago["session_id"]}
    assert not gone & left
    every = {t["session_id"] for t in (live, ended_now, ended_lately, expired_long_ago)}
    assert left == (every | {expired_lately["session_id"]}) - gone
    assert await db.fetchval("SELECT count(*) FROM events") == events_before - 1
    assert (
        await db.fetchval("SELECT count(*) FROM events WHERE at < now() - interval '90 days'") == 0
    )
    # the live session works on; a token of a purged session is refused like an ended one
    assert (await api.refresh(live["refresh_token"])).status == 200
    assert (await api.refresh(ended_long_ago["refresh_token"])).status == 401
    # nothing more to do
    assert await maintenance.purge_now(api.app.ctx.db, settings) == maintenance.Purged(0, 0)


async def test_the_purge_works_in_batches(api: Api, db: asyncpg.Connection) -> None:
    settings: Settings = api.app.ctx.settings
    await api.user("alice", PASSWORD)
    old = [await api.login("alice", PASSWORD) for _ in range(5)]
    for tokens in old:
        await age_session(db, tokens["session_id"], "expires_at", horizon(settings) + 1)
    async with api.app.ctx.db.connection() as conn:
        purged = await maintenance.purge(conn, settings, batch=2)
    assert purged.sessions == 5
    assert len(await session_ids(db)) == 1


async def test_the_periodic_purge_runs_once_per_interval(api: Api, db: asyncpg.Connection) -> None:
    settings = dataclasses.replace(api.app.ctx.settings, purge_interval=3600)
    await api.user("alice", PASSWORD)
    # many workers (of many hosts) look at once: one runs it
    results = await asyncio.gather(
        *(maintenance.purge_if_due(api.app.ctx.db, settings) for _ in range(8))
    )
    assert sum(result is not None for result in results) == 1
    assert await maintenance.purge_if_due(api.app.ctx.db, settings) is None  # not due yet
    # once the interval has passed, it is due again: once
    await db.execute("UPDATE maintenance SET last_run = now() - interval '3601 seconds'")
    results = await asyncio.gather(
        *(maintenance.purge_if_due(api.app.ctx.db, settings) for _ in range(4))
    )
    assert sum(result is not None for result in results) == 1
    # the command line's purge does not wait for the interval
    assert await maintenance.purge_now(api.app.ctx.db, settings) is not None


async def test_the_purge_never_takes_a_session_being_refreshed(
    api: Api, db: asyncpg.Connection
) -> None:
    settings: Settings = api.app.ctx.settings
    await api.user("alice", PASSWORD)
    sessions = [await api.login("alice", PASSWORD) for _ in range(6)]
    for round_ in range(5):
        doomed = await api.login("alice", PASSWORD)
        await age_session(db, doomed["session_id"], "expires_at", horizon(settings) + 1)

        async def refresh_all(delay: float) -> list[int]:
            await asyncio.sleep(delay)
            statuses = []
            for index, tokens in enumerate(sessions):
                response = await api.refresh(tokens["refresh_token"])
                statuses.append(response.status)
                if response.status == 200:
                    sessions[index] = response.json
            return statuses

        async def purge_repeatedly(delay: float) -> int:
            await asyncio.sleep(delay)
            total = 0
            for _ in range(3):
                purged = await maintenance.purge_now(api.app.ctx.db, settings)
                total += purged.sessions if purged else 0
            return total

        statuses, purged = await asyncio.gather(
            refresh_all(0.002 * round_), purge_repeatedly(0.003 * (4 - round_))
        )
        assert statuses == [200] * len(sessions), (round_, statuses)
        assert purged == 1
        assert {t["session_id"] for t in sessions} <= await session_ids(db)
