"""Security decisions raced over real HTTP against `sanic app.main --workers 2`, in rounds
with varied timing: whatever interleaving the round produced, the invariant must hold."""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher

from app.accounts.registration import Registration
from app.db import Database
from app.scopes import ADMIN_SCOPE, DEFAULT_SCOPE
from tests.support import DATABASE_URL, ROOT, live_server, server_env

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
NEW_PASSWORD = "another horse battery"
ADMIN_PASSWORD = "admin password 123"
LOGINS = 8  # concurrent logins per round (the limiter counts attempts in flight: 10 at most)
DELAYS = (0.0, 0.005, 0.02, 0.04, 0.08, 0.12, 0.2, 0.3)  # when the racing change starts
_names = itertools.count()


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[str]:
    """Behind "a proxy" (PROXIES_COUNT=1): each round logs in from an address of its own, so
    that the login limiter, which counts attempts in flight, leaves the races alone."""
    with live_server(workers=2, PROXIES_COUNT="1") as base:
        yield base


def new_username(kind: str = "racer") -> str:
    return f"{kind}_{next(_names)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_user(username: str, password: str, scope: str = DEFAULT_SCOPE) -> None:
    db = await Database.open(DATABASE_URL, max_size=1)
    try:
        await Registration(db).create(username, password, scope)
    finally:
        await db.close()


_addresses = itertools.count(1)


def new_address() -> dict[str, str]:
    index = next(_addresses)
    return {"X-Forwarded-For": f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"}


async def login(
    http: httpx.AsyncClient, username: str, password: str, address: dict[str, str] | None = None
) -> httpx.Response:
    return await http.post(
        "/auth/login",
        json={"username": username, "password": password},
        headers=address or new_address(),
    )


async def assert_dead(http: httpx.AsyncClient, tokens: dict[str, Any], what: str) -> None:
    """Neither the access token nor the refresh token of this login works any more."""
    me = await http.get("/api/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401, (what, me.status_code, me.text)
    refreshed = await http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401, (what, refreshed.status_code, refreshed.text)


async def logins_racing(
    server: str, change: Callable[[httpx.AsyncClient, str, dict[str, Any]], Awaitable[None]]
) -> None:
    """Round after round, a new user: LOGINS logins with its password, and `change` (a
    password change, a disable) started DELAYS[round] later. Once `change` has returned, no
    login of the round may work: not those done before it, nor those still in flight."""
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        for delay in DELAYS:
            username = new_username()
            await create_user(username, PASSWORD)
            owner = (await login(http, username, PASSWORD)).json()
            address = new_address()
            logins = [
                asyncio.create_task(login(http, username, PASSWORD, address)) for _ in range(LOGINS)
            ]
            await asyncio.sleep(delay)
            await change(http, username, owner)
            answers = await asyncio.gather(*logins)
            assert all(a.status_code in (200, 401) for a in answers), [a.text for a in answers]
            for answer in answers:
                if answer.status_code == 200:
                    await assert_dead(http, answer.json(), f"login, change after {delay} s")


async def test_logins_in_flight_never_outlive_a_password_change(server: str) -> None:
    async def change(http: httpx.AsyncClient, username: str, owner: dict[str, Any]) -> None:
        answer = await http.post(
            "/auth/password",
            headers=bearer(owner["access_token"]),
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert answer.status_code == 200, answer.text
        # the session the change started works
        me = await http.get("/api/me", headers=bearer(answer.json()["access_token"]))
        assert me.status_code == 200, me.text

    await logins_racing(server, change)


async def test_logins_in_flight_never_outlive_a_disable(server: str) -> None:
    admin = new_username("admin")
    await create_user(admin, ADMIN_PASSWORD, f"{DEFAULT_SCOPE} {ADMIN_SCOPE}")
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        admin_tokens = (await login(http, admin, ADMIN_PASSWORD)).json()

    async def disable(http: httpx.AsyncClient, username: str, owner: dict[str, Any]) -> None:
        answer = await http.post(
            f"/api/admin/users/{username}/disable", headers=bearer(admin_tokens["access_token"])
        )
        assert answer.status_code == 204, answer.text

    await logins_racing(server, disable)


async def test_a_password_change_never_outlives_a_disable(server: str) -> None:
    admin = new_username("admin")
    await create_user(admin, ADMIN_PASSWORD, f"{DEFAULT_SCOPE} {ADMIN_SCOPE}")
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        admin_tokens = (await login(http, admin, ADMIN_PASSWORD)).json()
        for round_, delay in enumerate(DELAYS):
            username = new_username()
            await create_user(username, PASSWORD)
            owner = (await login(http, username, PASSWORD)).json()
            change = asyncio.create_task(
                http.post(
                    "/auth/password",
                    headers=bearer(owner["access_token"]),
                    json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                )
            )
            await asyncio.sleep(delay / 2)
            disabled = await http.post(
                f"/api/admin/users/{username}/disable", headers=bearer(admin_tokens["access_token"])
            )
            assert disabled.status_code == 204, disabled.text
            answer = await change
            assert answer.status_code in (200, 401), (round_, answer.status_code, answer.text)
            if answer.status_code == 200:
                await assert_dead(http, answer.json(), f"password change, round {round_}")
            await assert_dead(http, owner, f"the owner's first login, round {round_}")


async def test_a_rehash_on_login_never_brings_an_old_password_back(server: str) -> None:
    """Hashes made with weaker argon2 parameters are rehashed on login; a login that verified
    the old password must not write its rehash over a password changed meanwhile."""
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        for round_, delay in enumerate(DELAYS):
            username = new_username()
            await create_user(username, PASSWORD)
            owner = (await login(http, username, PASSWORD)).json()
            await set_hash(username, weak.hash(PASSWORD))  # as stored before the upgrade
            logins = [asyncio.create_task(login(http, username, PASSWORD)) for _ in range(4)]
            await asyncio.sleep(delay / 3)
            changed = await http.post(
                "/auth/password",
                headers=bearer(owner["access_token"]),
                json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            )
            assert changed.status_code in (200, 403), changed.text
            await asyncio.gather(*logins)
            if changed.status_code == 200:
                old = await login(http, username, PASSWORD)
                assert old.status_code == 401, (round_, "the old password works again", old.text)
                assert (await login(http, username, NEW_PASSWORD)).status_code == 200


async def set_hash(username: str, password_hash: str) -> None:
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        await connection.execute(
            "UPDATE users SET password_hash = $2 WHERE lower(username) = $1",
            username,
            password_hash,
        )
    finally:
        await connection.close()


async def run_cli(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=server_env(),
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, (args, out, err)


async def test_a_scope_removal_racing_a_refresh_leaves_no_token_with_the_scope(
    server: str,
) -> None:
    """`set-scope` demotes an admin while a refresh is in flight; the users row is held for
    a moment (as a slow link or another transaction would), so the two meet in every order.
    Whatever the order, no token the admin holds afterwards can use the admin scope."""
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        for round_, delay in enumerate((0.0, 0.05, 0.15, 0.3, 0.6)):
            admin = new_username("demoted")
            await create_user(admin, ADMIN_PASSWORD, f"{DEFAULT_SCOPE} {ADMIN_SCOPE}")
            tokens = (await login(http, admin, ADMIN_PASSWORD)).json()
            holder = await asyncpg.connect(DATABASE_URL)
            held = holder.transaction()
            await held.start()
            await holder.execute("SELECT 1 FROM users WHERE lower(username) = $1 FOR UPDATE", admin)
            demotion = asyncio.create_task(run_cli("set-scope", admin, DEFAULT_SCOPE))
            await asyncio.sleep(delay)
            refresh = asyncio.create_task(
                http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            )
            await asyncio.sleep(0.2)
            await held.rollback()
            await holder.close()
            await demotion
            answer = await refresh
            assert answer.status_code == 200, (round_, answer.text)
            for token in (tokens["access_token"], answer.json()["access_token"]):
                used = await http.post(f"/api/admin/users/{admin}/enable", headers=bearer(token))
                assert used.status_code in (401, 403), (round_, used.status_code, used.text)
            assert "admin" not in answer.json()["scope"].split() or (
                (
                    await http.get("/api/me", headers=bearer(answer.json()["access_token"]))
                ).status_code
                == 401
            ), round_


async def test_concurrent_logins_past_the_session_limit_leave_exactly_the_limit(
    database: str,
) -> None:
    """MAX_SESSIONS_PER_USER=3, eight logins at once over two workers, staggered differently
    each round: once all have answered, exactly three sessions live, and every token of the
    others is refused."""
    limit = 3
    with live_server(workers=2, PROXIES_COUNT="1", MAX_SESSIONS_PER_USER=str(limit)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for stagger in (0.0, 0.002, 0.01, 0.03):
                username = new_username("limited")
                await create_user(username, PASSWORD)

                async def one(index: int, name: str = username, gap: float = stagger) -> Any:
                    await asyncio.sleep(index * gap)
                    return await login(http, name, PASSWORD)

                answers = await asyncio.gather(*(one(i) for i in range(8)))
                assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
                connection = await asyncpg.connect(DATABASE_URL)
                try:
                    live = {
                        str(row["id"])
                        for row in await connection.fetch(
                            "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id"
                            " WHERE u.username = $1 AND s.revoked_at IS NULL",
                            username,
                        )
                    }
                finally:
                    await connection.close()
                assert len(live) == limit, (stagger, live)
                for answer in answers:
                    tokens = answer.json()
                    me = await http.get("/api/me", headers=bearer(tokens["access_token"]))
                    if tokens["session_id"] in live:
                        assert me.status_code == 200, (stagger, me.text)
                    else:
                        await assert_dead(http, tokens, f"beyond the limit, stagger {stagger}")
