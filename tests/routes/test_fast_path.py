"""The fast bearer path: the verified-token cache and the in-process revocation copy.

Behaviour, not speed: the cache never lets an expired, revoked or altered token through; the
copy is used only while its feed is trusted (and then Redis is not asked at all), the bearer
check falls back to Redis while it is not, and a dropped subscription comes back with every
revocation made meanwhile. Real PostgreSQL and Redis throughout; "workers" are several apps
in this process sharing them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from redis.asyncio import Redis

from app.revocation import rebuild as rebuild_module
from app.revocation.feed import REGISTER, TRUST_WINDOW
from app.revocation.mirror import EXACT_LIMIT, bucket_of, fingerprint
from app.revocation.store import shard_of
from app.tokens import AccessClaims
from tests.support import REDIS_URL, RUN_ID, Api
from tests.support.monitor import RedisCommands

PASSWORD = "correct horse"
NEW_PASSWORD = "battery staple 42"
TRUST_TIMEOUT = 3.0


# -- helpers ----------------------------------------------------------------------------


def claims_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def access_claims(token: str) -> AccessClaims:
    c = claims_of(token)
    return AccessClaims(c["sub"], c["sid"], c["jti"], c["scope"], c["username"], c["iat"], c["exp"])


def error_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response.text)
    return body


async def me(api: Api, token: str) -> Any:
    return await api.request("GET", "/api/me", token=token)


async def assert_me_ok(api: Api, tokens: dict[str, Any]) -> None:
    response = await me(api, tokens["access_token"])
    assert response.status == 200, response.text
    assert response.json["session_id"] == tokens["session_id"]


async def assert_me_refused(api: Api, token: str, why: str | None = None) -> None:
    response = await me(api, token)
    assert response.status == 401, (response.status, response.text)
    body = error_of(response)
    assert body["error"] == "invalid_token", body
    if why is not None:
        assert why in body["error_description"], body
    challenge = response.headers.get("www-authenticate", "")
    assert 'error="invalid_token"' in challenge, challenge


def cached(api: Api, token: str) -> bool:
    return api.app.ctx.bearer.cache.get(token, time.time()) is not None


async def wait_for(predicate: Callable[[], bool], within: float, what: str) -> float:
    """Poll `predicate` every few ms; the seconds it took. Fails after `within` seconds."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > within:
            pytest.fail(f"{what}: not within {within} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


async def started_and_trusted(api: Api) -> None:
    """Open the app's pools (first request), then wait for its revocation feed's trust."""
    response = await api.request("GET", "/health/live")
    assert response.status == 200, response.text
    await wait_for(
        lambda: api.app.ctx.revocations.mirror.trusted, TRUST_TIMEOUT, "revocation feed trusted"
    )


async def user_on(api: Api, username: str = "alice") -> dict[str, Any]:
    await api.register(username, PASSWORD)
    return await api.login(username, PASSWORD)


async def cache_on(api: Api, tokens: dict[str, Any]) -> None:
    """Two good answers, so that the token is in this app's verified cache."""
    for _ in range(2):
        await assert_me_ok(api, tokens)
    assert cached(api, tokens["access_token"])


async def feed_client_ids(redis: Redis, name: str) -> list[int]:
    """Redis client ids of the pub/sub connections named `name` (one per live feed)."""
    clients = await redis.client_list(_type="pubsub")
    return [int(c["id"]) for c in clients if c.get("name") == name]


def named_redis_url(name: str) -> str:
    """The test Redis, with every connection of the app (its feed's too) named `name`."""
    separator = "&" if "?" in REDIS_URL else "?"
    return f"{REDIS_URL}{separator}client_name={name}"


# -- through the app: what the cache may never accept -------------------------------------


async def test_cache_never_accepts_an_expired_token(make_api: Callable[..., Api]) -> None:
    api = make_api(access_token_ttl=2)
    await started_and_trusted(api)
    tokens = await user_on(api)
    token = tokens["access_token"]
    exp = claims_of(token)["exp"]
    assert time.time() < exp, "the login took longer than the token's lifetime"
    await assert_me_ok(api, tokens)
    assert cached(api, token)
    size = len(api.app.ctx.bearer.cache)

    await asyncio.sleep(max(0.0, exp - time.time()) + 0.2)
    assert time.time() > exp
    await assert_me_refused(api, token, "expired")
    assert len(api.app.ctx.bearer.cache) == size - 1  # evicted, not kept
    await assert_me_refused(api, token, "expired")  # and still refused, not re-cached


async def test_cache_never_accepts_a_revoked_token(api: Api) -> None:
    await started_and_trusted(api)
    tokens = await user_on(api)
    other = await api.login("alice", PASSWORD)
    await cache_on(api, tokens)
    await cache_on(api, other)

    response = await api.request("POST", "/auth/logout", token=tokens["access_token"])
    assert response.status == 204, response.text
    assert api.app.ctx.revocations.mirror.trusted
    assert api.app.ctx.revocations.mirror.check(access_claims(tokens["access_token"])) is True
    # the very next request, with the token still in the verified cache
    assert cached(api, tokens["access_token"])
    await assert_me_refused(api, tokens["access_token"], "revoked")
    await assert_me_refused(api, tokens["access_token"], "revoked")
    # the other session of the same user is untouched
    await assert_me_ok(api, other)


async def test_cache_never_accepts_an_altered_token(api: Api) -> None:
    await started_and_trusted(api)
    tokens = await user_on(api)
    token = tokens["access_token"]
    await cache_on(api, tokens)
    header, payload, signature = token.split(".")

    def flip(segment: str, index: int) -> str:
        char = segment[index]
        return segment[:index] + ("B" if char == "A" else "A") + segment[index + 1 :]

    altered = [
        ".".join((flip(header, len(header) // 2), payload, signature)),
        ".".join((header, flip(payload, len(payload) // 2), signature)),
        ".".join((header, flip(payload, 1), signature)),
        ".".join((header, payload, flip(signature, 0))),
        ".".join((header, payload, flip(signature, len(signature) // 2))),
    ]
    for bad in altered:
        assert bad != token
        await assert_me_refused(api, bad)
        assert not cached(api, bad)
        # the original, cached, still answers
        await assert_me_ok(api, tokens)
    assert cached(api, token)


async def test_cached_tokens_refused_after_logout_all(api: Api) -> None:
    await started_and_trusted(api)
    sessions = [await user_on(api)] + [await api.login("alice", PASSWORD) for _ in range(2)]
    bob = await user_on(api, "bob")
    for tokens in sessions + [bob]:
        await cache_on(api, tokens)

    response = await api.request("POST", "/auth/logout-all", token=sessions[1]["access_token"])
    assert response.status == 204, response.text
    assert api.app.ctx.revocations.mirror.trusted
    for tokens in sessions:
        assert cached(api, tokens["access_token"])
        await assert_me_refused(api, tokens["access_token"], "revoked")
    await assert_me_ok(api, bob)
    # a login after it works (issued in the same second as "not before" or later)
    fresh = await api.login("alice", PASSWORD)
    await cache_on(api, fresh)


async def test_cached_tokens_refused_after_password_change(api: Api) -> None:
    await started_and_trusted(api)
    sessions = [await user_on(api)] + [await api.login("alice", PASSWORD) for _ in range(2)]
    for tokens in sessions:
        await cache_on(api, tokens)

    response = await api.request(
        "POST",
        "/auth/password",
        token=sessions[0]["access_token"],
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status == 200, response.text
    new = response.json
    assert new["session_id"] not in {s["session_id"] for s in sessions}
    for tokens in sessions:
        assert cached(api, tokens["access_token"])
        await assert_me_refused(api, tokens["access_token"], "revoked")
    await cache_on(api, new)


# -- the fast path really serves ----------------------------------------------------------


async def test_fast_path_asks_redis_nothing_once_trusted(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await started_and_trusted(api)
    tokens = await user_on(api)
    token = tokens["access_token"]
    sid_key = api.app.ctx.revocations.store.session_key(tokens["session_id"])
    await cache_on(api, tokens)

    verifications = 0
    verify = api.app.ctx.tokens.verify_access

    def counting_verify(raw: str) -> AccessClaims:
        nonlocal verifications
        verifications += 1
        return verify(raw)

    monkeypatch.setattr(api.app.ctx.tokens, "verify_access", counting_verify)

    async with RedisCommands() as log:
        assert api.app.ctx.revocations.mirror.trusted
        for _ in range(20):
            await assert_me_ok(api, tokens)
        assert api.app.ctx.revocations.mirror.trusted
        await log.sync()
        trusted_mgets = log.mgets_of(sid_key)
    assert trusted_mgets == 0, f"{trusted_mgets} MGETs of {sid_key} while the copy was trusted"
    assert verifications == 0, "a cached token was verified again"

    # untrusted (and no feed to bring the trust back): every request asks Redis, once
    api.app.ctx.revocations.mirror.distrust()
    await api.app.ctx.revocations.feed.stop()
    assert not api.app.ctx.revocations.mirror.trusted
    async with RedisCommands() as log:
        for _ in range(20):
            await assert_me_ok(api, tokens)
        await log.sync()
        fallback_mgets = log.mgets_of(sid_key)
    assert fallback_mgets == 20, fallback_mgets
    assert verifications == 0
    assert cached(api, token)

    # and the fallback still refuses a revoked session (the feed is gone: no ack to wait for)
    response = await api.request("POST", "/auth/logout", token=token)
    assert response.status == 204, response.text
    await assert_me_refused(api, token, "revoked")


# -- the subscription drops and comes back -----------------------------------------------


async def test_revocations_during_a_subscription_drop_are_refused(
    make_api: Callable[..., Api], redis: Redis
) -> None:
    name = f"fastpath-{RUN_ID}-a-{uuid.uuid4().hex[:8]}"
    a = make_api(redis_url=named_redis_url(name))  # the worker whose subscription drops
    b = make_api()  # another worker on the same database and Redis prefix
    await started_and_trusted(a)
    await started_and_trusted(b)
    await a.register("alice", PASSWORD)
    mirror = a.app.ctx.revocations.mirror
    observed: list[tuple[str, bool]] = []  # (step, was A's copy trusted when it answered)

    async def kill_feed_of_a() -> int:
        ids = await feed_client_ids(redis, name)
        assert len(ids) == 1, f"expected one pub/sub client named {name}, got {ids}"
        killed = await redis.execute_command("CLIENT", "KILL", "ID", ids[0])
        assert int(killed) == 1
        return ids[0]

    async def refused_on_a(token: str, step: str) -> None:
        observed.append((step, mirror.trusted))
        await assert_me_refused(a, token, "revoked")

    # 1. killed, and at once a session is revoked through B: no waiting for A to notice
    first = await a.login("alice", PASSWORD)
    await cache_on(a, first)
    killed = await kill_feed_of_a()
    response = await b.request("POST", "/auth/logout", token=first["access_token"])
    assert response.status == 204, response.text
    await refused_on_a(first["access_token"], "right after the kill")
    await wait_for(lambda: mirror.trusted, TRUST_TIMEOUT, "A's feed trusted again")
    assert (await feed_client_ids(redis, name)) not in ([], [killed])
    assert mirror.check(access_claims(first["access_token"])) is True
    await refused_on_a(first["access_token"], "trusted again")

    # 2. killed and kept down (its feed stopped, so it does not reconnect at once): A knows
    # its copy is stale, and a revocation through B is refused by A asking Redis
    second = await a.login("alice", PASSWORD)
    await cache_on(a, second)
    await kill_feed_of_a()
    await a.app.ctx.revocations.feed.stop()
    assert not mirror.trusted
    response = await b.request("POST", "/auth/logout", token=second["access_token"])
    assert response.status == 204, response.text
    await refused_on_a(second["access_token"], "reconnecting")
    a.app.ctx.revocations.feed.start()
    await wait_for(lambda: mirror.trusted, TRUST_TIMEOUT, "A's feed trusted again")
    await refused_on_a(second["access_token"], "trusted again")

    # 3. a revocation written straight to Redis while the subscription is down, never
    # published: the snapshot that A loads when it is back has it
    third = await a.login("alice", PASSWORD)
    await cache_on(a, third)
    await kill_feed_of_a()
    await wait_for(lambda: not mirror.trusted, TRUST_TIMEOUT, "A distrusts its copy")
    store = a.app.ctx.revocations.store
    await store.write(store.entries([third["session_id"]]))
    assert await redis.exists(store.session_key(third["session_id"]))
    await wait_for(lambda: mirror.trusted, TRUST_TIMEOUT, "A's feed trusted again")
    assert mirror.check(access_claims(third["access_token"])) is True
    await refused_on_a(third["access_token"], "trusted after a silent revocation")

    # A still serves good tokens, from its trusted copy
    fourth = await a.login("alice", PASSWORD)
    await cache_on(a, fourth)
    assert mirror.trusted
    print(f"\nA's copy trusted when it refused: {observed}")
    # the Redis fallback did the refusing at least once (step 2 waits for it)
    assert any(not trusted for _, trusted in observed), observed
    assert any(trusted for _, trusted in observed), observed


# -- two workers sharing Redis ------------------------------------------------------------


async def test_logout_on_one_worker_is_refused_on_the_other_at_once(
    make_api: Callable[..., Api],
) -> None:
    a, b = make_api(), make_api()
    await started_and_trusted(a)
    await started_and_trusted(b)
    await a.register("alice", PASSWORD)
    durations = []
    for round_ in range(20):
        # the session starts on either worker; its token is cached on both
        tokens = await (a if round_ % 2 else b).login("alice", PASSWORD)
        await cache_on(a, tokens)
        await cache_on(b, tokens)
        assert a.app.ctx.revocations.mirror.trusted and b.app.ctx.revocations.mirror.trusted, round_

        started = time.perf_counter()
        response = await a.request("POST", "/auth/logout", token=tokens["access_token"])
        durations.append(time.perf_counter() - started)
        assert response.status == 204, (round_, response.text)
        assert b.app.ctx.revocations.mirror.trusted, (
            round_
        )  # refused by B's copy, not by asking Redis
        await assert_me_refused(b, tokens["access_token"], "revoked")
        await assert_me_refused(a, tokens["access_token"], "revoked")
    durations.sort()
    print(
        f"\nlogout through A (acks of both workers): median {durations[10] * 1000:.1f} ms, "
        f"max {durations[-1] * 1000:.1f} ms"
    )
    assert durations[-1] < 5, durations  # a hang, not a speed limit


async def test_a_worker_that_does_not_ack_is_waited_for_until_its_trust_has_lapsed(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A subscriber that never acknowledges (a stalled worker) holds the revocation's answer
    until any copy it may still trust has lapsed: never a 204 while a worker could serve
    the revoked token from a stale copy; never a hang either."""
    await started_and_trusted(api)
    tokens = await user_on(api)
    await cache_on(api, tokens)
    silent = Redis.from_url(REDIS_URL)
    pubsub = silent.pubsub()
    feed = api.app.ctx.revocations.feed
    try:
        # a live worker as the registry knows it, subscribed, that never acknowledges
        await pubsub.ssubscribe(feed.channels.events)
        await silent.eval(REGISTER, 1, feed.channels.workers, "stalled-worker", 60)
        started = time.monotonic()
        response = await api.request("POST", "/auth/logout", token=tokens["access_token"])
        took = time.monotonic() - started
    finally:
        await pubsub.aclose()
        await silent.aclose()
    assert response.status == 204, response.text
    assert took >= TRUST_WINDOW, f"answered after {took:.3f} s, before a stale copy lapsed"
    assert took < 5, took  # a hang
    assert any("acknowledged" in r.getMessage() for r in caplog.records), caplog.text
    await assert_me_refused(api, tokens["access_token"], "revoked")


async def test_acknowledgements_go_to_the_asker_only_from_every_live_worker(
    make_api: Callable[..., Api],
) -> None:
    """The workers to wait for come from the registry of live workers, not from PUBLISH's
    reply; each acknowledges on the asker's own channel, so a revocation costs Redis one
    message per worker each way (not one per pair of workers); a stopped worker leaves the
    registry and is not waited for."""
    apps = [make_api() for _ in range(3)]
    for app in apps:
        await started_and_trusted(app)
    feeds = [app.app.ctx.revocations.feed for app in apps]
    asker = feeds[0]
    tokens = await user_on(apps[0])
    async with RedisCommands() as log:
        response = await apps[0].request("POST", "/auth/logout", token=tokens["access_token"])
        assert response.status == 204, response.text
        await log.sync()
    acks = [c.split() for c in log.commands if c.startswith("SPUBLISH ") and ":ack:" in c]
    assert {ack[1] for ack in acks} == {asker.channels.ack(asker.worker)}, acks
    assert sorted(ack[2].split("|")[1] for ack in acks) == sorted(f.worker for f in feeds)
    events = [c for c in log.commands if c.startswith("SPUBLISH " + asker.channels.events)]
    assert len(events) == 1, events

    await feeds[2].stop()  # leaves the registry: nobody waits for its acknowledgement
    second = await apps[0].login("alice", PASSWORD)
    started = time.monotonic()
    response = await apps[1].request("POST", "/auth/logout", token=second["access_token"])
    assert response.status == 204, response.text
    assert time.monotonic() - started < 1.0  # not the ACK_TIMEOUT a missing worker costs
    await assert_me_refused(apps[0], second["access_token"], "revoked")
    feeds[2].start()
    await wait_for(lambda: feeds[2].mirror.trusted, TRUST_TIMEOUT, "feed trusted again")


async def test_a_shard_another_worker_is_rebuilding_is_trusted_by_nobody_until_it_is_back(
    make_api: Callable[..., Api], redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis lost a shard and another worker holds its rebuild lock (and is slow): a worker
    starting now neither trusts its copy nor answers from Redis (503, never 200), and once
    the lock is gone its own rebuild restores the shard from PostgreSQL."""
    monkeypatch.setattr(rebuild_module, "WAIT_FOR_OTHERS", 0.3)
    a = make_api()
    await started_and_trusted(a)
    tokens = await user_on(a)
    response = await a.request("POST", "/auth/logout", token=tokens["access_token"])
    assert response.status == 204
    store = a.app.ctx.revocations.store
    shard = shard_of(tokens["session_id"])
    await redis.delete(store.marker_key(shard), store.session_key(tokens["session_id"]))
    assert await store.lock_rebuild(shard)  # as another worker that rebuilds it
    b = make_api()
    assert (await b.request("GET", "/health/live")).status == 200
    await asyncio.sleep(2 * TRUST_WINDOW)
    assert not b.app.ctx.revocations.mirror.trusted
    response = await me(b, tokens["access_token"])
    assert response.status == 503, response.text
    await store.unlock_rebuild(shard)
    await assert_me_refused(b, tokens["access_token"], "revoked")  # rebuilt by this request
    assert await redis.exists(store.marker_key(shard))
    await wait_for(lambda: b.app.ctx.revocations.mirror.trusted, 8.0, "B trusted once whole")
    assert b.app.ctx.revocations.mirror.check(access_claims(tokens["access_token"])) is True


async def test_a_copy_too_large_to_hold_exactly_still_refuses_every_revoked_token(
    api: Api,
) -> None:
    """Past EXACT_LIMIT sessions a generation of the copy is a Bloom filter: a revoked token
    is then "perhaps" (None) and refused by asking Redis; a good one is still answered by
    the copy."""
    await started_and_trusted(api)
    tokens = await user_on(api)
    mirror = api.app.ctx.revocations.mirror
    bucket = bucket_of(time.time() + mirror.ttl)
    mirror.add_sessions(bucket, [fingerprint(uuid.uuid4().hex) for _ in range(EXACT_LIMIT + 1)])
    response = await api.request("POST", "/auth/logout", token=tokens["access_token"])
    assert response.status == 204, response.text
    assert mirror.check(access_claims(tokens["access_token"])) is None
    await assert_me_refused(api, tokens["access_token"], "revoked")
    fresh = await api.login("alice", PASSWORD)
    assert mirror.check(access_claims(fresh["access_token"])) is False
    await assert_me_ok(api, fresh)


# -- stopping the feed --------------------------------------------------------------------


async def test_feed_stops_while_it_is_busy(make_api: Callable[..., Api], redis: Redis) -> None:
    """`stop()` ends the feed even when it is applying revocations (and sending acks) at that
    moment, as a worker does when it shuts down while others revoke; and a stopped feed
    never trusts the copy again."""
    api = make_api()
    await started_and_trusted(api)
    feed = api.app.ctx.revocations.feed
    mirror = api.app.ctx.revocations.mirror
    flooding = True

    async def flood() -> None:
        # revocations as another worker publishes them, back to back
        while flooding:
            await redis.spublish(feed.channels.events, f"{uuid.uuid4().hex}|s:{uuid.uuid4()}|")

    trials, hung, retrusted, stops = 12, 0, 0, 0
    flooder = asyncio.create_task(flood())
    try:
        for trial in range(trials):
            if hung >= 3:
                break  # shown enough: each hang costs seconds
            stops += 1
            if trial:
                feed.start()
                await wait_for(lambda: mirror.trusted, TRUST_TIMEOUT, "feed trusted again")
            await asyncio.sleep(0.02 + 0.01 * (trial % 5))
            task = feed._task
            assert task is not None
            stopper = asyncio.create_task(feed.stop())
            done, _ = await asyncio.wait({stopper}, timeout=2)
            if not done:
                hung += 1
                await asyncio.sleep(0.8)  # a beat comes every HEARTBEAT while the loop lives
                retrusted += mirror.trusted
                # end it for good, so that the fixture's teardown does not hang too
                for _ in range(100):
                    if task.done():
                        break
                    task.cancel()
                    await asyncio.sleep(0.05)
                assert task.done(), "the feed task survived 100 cancellations"
                await stopper
            assert task.done()
            assert not mirror.trusted
    finally:
        flooding = False
        await flooder
    assert hung == 0, (
        f"RevocationFeed.stop() did not return within 2 s in {hung} of {stops} stops while "
        f"the feed was busy: its task.cancel() was lost and the feed kept running "
        f"(the copy was trusted again {retrusted} times after stop())"
    )
