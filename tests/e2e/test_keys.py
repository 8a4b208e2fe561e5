"""Signing keys over real HTTP: other services verify from the JWKS alone, rotation is a
non-event across two server processes sharing one database, retired keys go on schedule,
and the verifier module and introspection work as a resource server would use them."""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest

from app.verifier import Introspection, TokenError, UnknownKey, Verifier
from devtools import free_port
from tests import support
from tests.support import live_server, reset_keys, run_cli

pytestmark = pytest.mark.e2e

# Short lifetimes, so that a retired key's horizon passes within a test:
# 3 s refresh + 1 s skew + 16 s a host may sign with keys read that long ago = 20 s.
SHORT = {"ACCESS_TOKEN_TTL": "2", "REFRESH_TOKEN_TTL": "3", "CLOCK_SKEW": "1"}
ES256 = {"JWT_ALGORITHM": "ES256", "JWKS_MAX_AGE": "1"}


@pytest.fixture(autouse=True)
async def fresh_keys() -> AsyncIterator[None]:
    """Each test starts its servers on a fresh key set, and leaves none behind."""
    await reset_keys()
    yield
    await reset_keys()


@pytest.fixture
def hosts() -> Iterator[tuple[str, str]]:
    """Two server processes (two hosts) on one database, ES256."""
    with live_server(workers=2, **ES256) as first, live_server(workers=2, **ES256) as second:
        yield first, second


async def login(client: httpx.AsyncClient, base: str, username: str = "alice") -> dict[str, str]:
    await client.post(
        f"{base}/auth/register", json={"username": username, "password": "correct horse"}
    )
    response = await client.post(
        f"{base}/auth/login", json={"username": username, "password": "correct horse"}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def me(client: httpx.AsyncClient, base: str, token: str) -> int:
    response = await client.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def rotate(*flags: str, **env: str) -> str:
    code, out, err = await run_cli("keys", "rotate", *flags, env=support.server_env(**env))
    assert code == 0, (out, err)
    return out


async def until(predicate: object, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while True:
        if await predicate():  # type: ignore[operator]
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_pyjwkclient_verifies_access_tokens_from_the_jwks_alone(
    hosts: tuple[str, str],
) -> None:
    base, _ = hosts
    async with httpx.AsyncClient(timeout=10) as client:
        tokens = await login(client, base)
        response = await client.get(f"{base}/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=1"
    published = response.json()["keys"]
    assert len(published) == 2  # the current key and the next one
    assert all(key["use"] == "sig" and key["alg"] == "ES256" for key in published)
    assert not any("d" in key for key in published)  # public halves only

    def verify() -> dict[str, object]:
        signing = jwt.PyJWKClient(f"{base}/.well-known/jwks.json").get_signing_key_from_jwt(
            tokens["access_token"]
        )
        claims: dict[str, object] = jwt.decode(
            tokens["access_token"],
            signing.key,
            algorithms=["ES256"],
            audience="jwt-refresh-api",
            issuer="jwt-refresh-api",
        )
        return claims

    claims = await asyncio.to_thread(verify)
    assert claims["username"] == "alice"
    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"


async def test_two_hosts_sign_and_verify_each_other_through_a_rotation(
    hosts: tuple[str, str],
) -> None:
    first, second = hosts
    async with httpx.AsyncClient(timeout=10) as client:
        before = await login(client, first)
        assert await me(client, second, before["access_token"]) == 200
        old_kid = kid(before["access_token"])
        out = await rotate("--force", **ES256)
        assert "signs now" in out

        async def first_signs_with_a_new_key() -> bool:
            fresh = await login(client, first, "bob")
            if kid(fresh["access_token"]) == old_kid:
                return False
            # the second host may not have read the keys since: an unknown kid makes it
            # read them at once
            assert await me(client, second, fresh["access_token"]) == 200
            return True

        await until(first_signs_with_a_new_key, within=10)
        # nobody was logged out: the token from before the rotation works on both hosts,
        # and its refresh token rotates (on the other host) to a pair of the new key
        for base in (first, second):
            assert await me(client, base, before["access_token"]) == 200
        refreshed = await client.post(
            f"{second}/auth/refresh", json={"refresh_token": before["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        assert await me(client, first, refreshed.json()["access_token"]) == 200
        # and a retry of that refresh, on the first host, is the same pair byte for byte
        retried = await client.post(
            f"{first}/auth/refresh", json={"refresh_token": before["refresh_token"]}
        )
        assert retried.json() == refreshed.json()


async def test_requests_in_flight_through_a_rotation_all_succeed() -> None:
    with live_server(workers=2, **ES256) as base:
        async with httpx.AsyncClient(timeout=10) as client:
            tokens = await login(client, base)
            statuses: list[int] = []

            async def hammer() -> None:
                for _ in range(60):
                    statuses.append(await me(client, base, tokens["access_token"]))

            async def logins() -> list[str]:
                kids = []
                for n in range(12):
                    kids.append(kid((await login(client, base, f"user{n}"))["access_token"]))
                    await asyncio.sleep(0.5)
                return kids

            async def rotations() -> None:
                await asyncio.sleep(0.5)
                await rotate("--force", **ES256)

            _, kids, _ = await asyncio.gather(hammer(), logins(), rotations())
    assert set(statuses) == {200}
    assert len(set(kids)) == 2  # before and after the rotation


async def test_a_rotation_without_force_waits_for_the_jwks_max_age() -> None:
    env = {"JWT_ALGORITHM": "ES256", "JWKS_MAX_AGE": "3600", "KEY_ROTATION_INTERVAL": "7200"}
    await rotate("--force", **env)  # a fresh database: keys created, then rotated at once
    code, out, err = await run_cli("keys", "rotate", env=support.server_env(**env))
    assert code != 0, (code, out, err)
    assert "JWKS_MAX_AGE" in err and "--force" in err and "Traceback" not in err
    code, out, err = await run_cli("keys", "list", env=support.server_env(**env))
    assert code == 0, err
    states = [line.split()[0] for line in out.splitlines()]
    assert sorted(states) == ["current", "next", "retired"], out


async def test_a_retired_key_disappears_on_schedule_and_its_tokens_with_it() -> None:
    env = {**ES256, **SHORT}
    with live_server(workers=1, **env) as base:
        async with httpx.AsyncClient(timeout=10) as client:
            jwks = f"{base}/.well-known/jwks.json"
            old = kid((await login(client, base))["access_token"])
            await rotate("--force", **env)
            rotated_at = time.monotonic()

            async def new_key_signs() -> bool:
                return kid((await login(client, base, "bob"))["access_token"]) != old

            await until(new_key_signs)
            published = {key["kid"] for key in (await client.get(jwks)).json()["keys"]}
            assert old in published  # retired, still published: its tokens may live

            async def gone() -> bool:
                listed = {key["kid"] for key in (await client.get(jwks)).json()["keys"]}
                return old not in listed

            await until(gone, within=35)
            # 3 s refresh lifetime + 1 s skew + 16 s (keyset.SIGN_STALE_AFTER + 1)
            assert time.monotonic() - rotated_at >= 19.5
            connection = await asyncpg.connect(support.DATABASE_URL)
            try:

                async def deleted() -> bool:
                    return not await connection.fetchval(
                        "SELECT count(*) FROM signing_keys WHERE kid = $1", old
                    )

                await until(deleted, within=10)
            finally:
                await connection.close()


async def test_automatic_rotation_runs_once_per_interval_across_hosts() -> None:
    env = {**ES256, "KEY_ROTATION_INTERVAL": "4", "JWKS_MAX_AGE": "1"}
    with live_server(workers=2, **env) as first, live_server(workers=2, **env) as second:
        async with httpx.AsyncClient(timeout=10) as client:
            tokens = await login(client, first, "carol")
            kids = {kid(tokens["access_token"])}
            started = time.monotonic()
            while time.monotonic() - started < 14:
                # refreshed on one host, used on the other: every pair of every key works
                for here, there in ((first, second), (second, first)):
                    refreshed = await client.post(
                        f"{here}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
                    )
                    assert refreshed.status_code == 200, refreshed.text
                    tokens = refreshed.json()
                    kids.add(kid(tokens["access_token"]))
                    assert await me(client, there, tokens["access_token"]) == 200
                await asyncio.sleep(0.5)
    connection = await asyncpg.connect(support.DATABASE_URL)
    try:
        activations = await connection.fetch(
            "SELECT extract(epoch FROM activated_at) AS at FROM signing_keys"
            " WHERE activated_at IS NOT NULL ORDER BY activated_at"
        )
    finally:
        await connection.close()
    times = [float(row["at"]) for row in activations]
    # one rotation per interval across 4 workers on 2 hosts: each key signed for at least the
    # interval (planned on PostgreSQL's clock), never two rotations for one due time
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert len(gaps) >= 2 and all(gap >= 4.0 for gap in gaps), gaps
    assert len(kids) >= 3


async def service_account(username: str, password: str) -> None:
    """Created as the README says: `create-user NAME --scope introspect --password-stdin`."""
    code, _, err = await run_cli(
        "create-user",
        username,
        "--scope",
        "introspect",
        "--password-stdin",
        env=support.server_env(**ES256),
        stdin=password.encode() + b"\n",
    )
    assert code == 0, err


async def test_introspection_is_inactive_within_one_request_of_a_logout() -> None:
    with live_server(workers=2, **ES256) as base:
        await service_account("resource-server", "service password 1")
        introspection = Introspection(base, "resource-server", "service password 1")
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                for round_ in range(5):
                    tokens = await login(client, base, f"dave{round_}")
                    active = await introspection.active(tokens["access_token"])
                    assert active is not None and active["username"] == f"dave{round_}"
                    refresh = await introspection.active(tokens["refresh_token"])
                    assert refresh is not None and refresh["token_use"] == "refresh_token"
                    logout = await client.post(
                        f"{base}/auth/logout",
                        headers={"Authorization": f"Bearer {tokens['access_token']}"},
                    )
                    assert logout.status_code == 204
                    assert await introspection.active(tokens["access_token"]) is None
                    assert await introspection.active(tokens["refresh_token"]) is None
        finally:
            await introspection.aclose()


async def test_the_verifier_follows_a_rotation_and_resists_random_kids() -> None:
    with live_server(workers=2, **ES256) as base:
        verifier = Verifier(f"{base}/.well-known/jwks.json", min_refetch=2.0)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                tokens = await login(client, base)
                claims = await verifier.verify(tokens["access_token"], scopes={"notes:read"})
                assert claims.username == "alice"
                with pytest.raises(Exception, match="scope"):
                    await verifier.verify(tokens["access_token"], scopes={"admin"})
                with pytest.raises(TokenError):  # a refresh token is no access token
                    await verifier.verify(tokens["refresh_token"])
                # an attacker's random kids: a refetch at most every min_refetch seconds
                fetches = verifier.fetches
                header, payload, signature = tokens["access_token"].split(".")
                for n in range(200):
                    forged_header = jwt.utils.base64url_encode(
                        json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": f"k{n}"}).encode()
                    ).decode()
                    with pytest.raises(UnknownKey):
                        await verifier.verify(f"{forged_header}.{payload}.{signature}")
                assert verifier.fetches - fetches <= 1
                # a rotation: the new kid is unknown to the verifier's cached JWKS, and
                # found by one refetch
                await rotate("--force", **ES256)
                await asyncio.sleep(2.1)

                async def new_kid_verified() -> bool:
                    fresh = await login(client, base, "erin")
                    if kid(fresh["access_token"]) == kid(tokens["access_token"]):
                        return False
                    return (await verifier.verify(fresh["access_token"])).username == "erin"

                await until(new_kid_verified)
                assert (await verifier.verify(tokens["access_token"])).username == "alice"
        finally:
            await verifier.aclose()


def test_the_verifier_imports_none_of_the_server() -> None:
    """Another service has PyJWT and httpx, not Sanic, asyncpg or Redis."""
    code = (
        "import sys\n"
        "for name in ('sanic', 'sanic_ext', 'asyncpg', 'redis', 'argon2', 'prometheus_client'):\n"
        "    sys.modules[name] = None\n"
        "import app.verifier as v\n"
        "assert v.Verifier and v.Introspection\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=support.ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr


def readme_resource_server() -> str:
    text = (support.ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Keys, rotation") : text.index("## Operating it")]
    (block,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return block


def start_resource_server(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """`sanic notes_api:app` from `workdir`, with this checkout importable (app.verifier)."""
    env = {**support.server_env(), "PYTHONPATH": f"{workdir}:{support.ROOT}"}
    with open(workdir / "notes_api.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sanic", "notes_api:app", "--port", str(port), "--no-motd"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_the_readme_resource_server_works_as_written(tmp_path: Path) -> None:
    """The README's ten-line Sanic resource server, run as written (only the service's address
    changed): JWKS-verified routes, and introspection where a logout must count at once."""
    with live_server(workers=1, **ES256) as base:
        await service_account("notes-api", "service password")
        (tmp_path / "notes_api.py").write_text(
            readme_resource_server().replace("http://127.0.0.1:8000", base)
        )
        port = free_port()
        process = start_resource_server(tmp_path, port)
        notes = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(timeout=10) as client:

                async def up() -> bool:
                    assert process.poll() is None, (tmp_path / "notes_api.log").read_text()
                    try:
                        await client.get(f"{notes}/hello")
                    except httpx.TransportError:
                        return False
                    return True

                await until(up, within=30)
                tokens = await login(client, base)
                auth = {"Authorization": f"Bearer {tokens['access_token']}"}
                hello = await client.get(f"{notes}/hello", headers=auth)
                assert (hello.status_code, hello.json()) == (200, {"hello": "alice"})
                assert (await client.get(f"{notes}/hello")).status_code == 401
                assert (await client.post(f"{notes}/payments", headers=auth)).status_code == 200
                logout = await client.post(f"{base}/auth/logout", headers=auth)
                assert logout.status_code == 204
                # the JWKS-verified route can't know of the logout; the introspected one does
                assert (await client.get(f"{notes}/hello", headers=auth)).status_code == 200
                assert (await client.post(f"{notes}/payments", headers=auth)).status_code == 401
        finally:
            process.terminate()
            process.wait(timeout=10)


async def test_a_revoked_key_stops_its_tokens_on_every_worker_at_once() -> None:
    """A compromised key: rotate away from it, then revoke it. Every token it signed, cached
    as verified or not, is refused on every worker within a reload; the signing key itself
    can't be revoked."""
    with live_server(workers=2, **ES256) as base:
        async with httpx.AsyncClient(timeout=10) as client:
            before = await login(client, base)
            compromised = kid(before["access_token"])
            code, _, err = await run_cli(
                "keys", "revoke", compromised, env=support.server_env(**ES256)
            )
            assert code != 0 and "rotate first" in err, err
            await rotate("--force", **ES256)
            for _ in range(8):  # verified and cached by both workers
                assert await me(client, base, before["access_token"]) == 200
            code, out, err = await run_cli(
                "keys", "revoke", compromised, env=support.server_env(**ES256)
            )
            assert code == 0 and "revoked" in out, err
            revoked_at = time.monotonic()

            async def refused_everywhere() -> bool:
                statuses = {await me(client, base, before["access_token"]) for _ in range(8)}
                return statuses == {401}

            await until(refused_everywhere, within=10)
            assert time.monotonic() - revoked_at < 7
            jwks = (await client.get(f"{base}/.well-known/jwks.json")).json()
            assert compromised not in {key["kid"] for key in jwks["keys"]}
            refreshed = await client.post(
                f"{base}/auth/refresh", json={"refresh_token": before["refresh_token"]}
            )
            assert refreshed.status_code == 401  # its refresh token too: log in again
            fresh = await login(client, base, "frank")
            assert await me(client, base, fresh["access_token"]) == 200
            code, _, err = await run_cli("keys", "revoke", "nope", env=support.server_env(**ES256))
            assert code != 0 and "no signing key" in err


async def test_refreshes_racing_a_rotation_across_hosts_all_get_the_one_pair(
    hosts: tuple[str, str],
) -> None:
    """In rounds with varied timing: 8 refreshes of one token, split over two hosts, race an
    operator's rotation. The winner's pair is signed by whichever key was current for it; every
    other answer carries that same pair of tokens byte for byte (signed again by the same key,
    on a host whose current key is already another), and it works on both hosts. (Only
    `expires_in` may differ: the contract counts it from the moment of each answer.)"""
    first, second = hosts
    rng = random.Random(11)
    async with httpx.AsyncClient(timeout=10) as client:
        for round_ in range(4):
            tokens = await login(client, first, f"racer{round_}")

            async def refresh(n: int, tokens: dict[str, str] = tokens) -> httpx.Response:
                await asyncio.sleep(rng.uniform(0, 0.6))
                return await client.post(
                    f"{(first, second)[n % 2]}/auth/refresh",
                    json={"refresh_token": tokens["refresh_token"]},
                )

            async def rotation() -> None:
                await asyncio.sleep(rng.uniform(0, 0.4))
                await rotate("--force", **ES256)

            *answers, _ = await asyncio.gather(*(refresh(n) for n in range(8)), rotation())
            assert [answer.status_code for answer in answers] == [200] * 8, round_
            pairs = {(a.json()["access_token"], a.json()["refresh_token"]) for a in answers}
            assert len(pairs) == 1, (round_, [jwt.get_unverified_header(p[0]) for p in pairs])
            pair = answers[0].json()
            for base in (first, second):
                assert await me(client, base, pair["access_token"]) == 200
