"""app/verifier.py without a server: reading a JWKS, and when the verifier fetches it (an
httpx transport in this process stands for the service's /.well-known/jwks.json)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.verifier import KeysUnavailable, UnknownKey, Verifier, _max_age, parse_jwks
from tests.support.tokens import access_claims, key_of, sign

ES = key_of("ES256")


class Jwks:
    """The JWKS endpoint: counts fetches, answers what it is set to."""

    def __init__(self, document: Any, status: int = 200):
        self.document, self.status, self.fetches = document, status, 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        await asyncio.sleep(0.01)
        return httpx.Response(
            self.status, json=self.document, headers={"Cache-Control": "public, max-age=300"}
        )


def verifier(endpoint: Jwks, **options: Any) -> Verifier:
    http = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    return Verifier("http://auth.test/.well-known/jwks.json", http=http, **options)


def test_parse_jwks_keeps_usable_public_signing_keys_only() -> None:
    jwk = ES.jwk()
    assert jwk is not None
    document = {
        "keys": [
            jwk,
            {**jwk, "kid": "enc", "use": "enc"},
            {**jwk, "kid": "private", "d": "AAAA"},
            {"kty": "oct", "kid": "hmac", "alg": "HS256", "k": "c2VjcmV0"},
            {**jwk, "kid": "broken", "x": "!!"},
            {**jwk, "kid": 7},
            "not a key",
        ]
    }
    assert list(parse_jwks(document)) == [ES.kid]
    assert parse_jwks({"keys": "nope"}) == {} and parse_jwks([]) == {}


def test_max_age_is_read_and_bounded() -> None:
    assert _max_age("public, max-age=120", 300.0, 5.0, 3600.0) == 120.0
    assert _max_age(None, 300.0, 5.0, 3600.0) == 300.0
    assert _max_age("max-age=0", 300.0, 5.0, 3600.0) == 5.0
    assert _max_age("max-age=999999", 300.0, 5.0, 3600.0) == 3600.0


async def test_concurrent_unknown_kids_share_one_fetch_and_then_wait() -> None:
    endpoint = Jwks({"keys": [ES.jwk()]})
    checker = verifier(endpoint, min_refetch=60.0)
    token = sign(access_claims(), signer=ES)
    assert (await checker.verify(token)).sub == "42"
    assert endpoint.fetches == 1
    forged = [sign(access_claims(), signer=ES, headers={"kid": f"k{n}"}) for n in range(50)]
    results = await asyncio.gather(*(checker.verify(t) for t in forged), return_exceptions=True)
    assert all(isinstance(result, UnknownKey) for result in results)
    assert endpoint.fetches == 1  # refetched at most once per min_refetch, and none yet
    await checker.aclose()


async def test_a_jwks_outage_without_keys_is_keys_unavailable_and_backs_off() -> None:
    endpoint = Jwks({}, status=503)
    checker = verifier(endpoint, min_refetch=60.0)
    token = sign(access_claims(), signer=ES)
    with pytest.raises(KeysUnavailable):
        await checker.verify(token)
    with pytest.raises((KeysUnavailable, UnknownKey)):
        await checker.verify(token)
    assert endpoint.fetches == 1  # no fetch per request while the JWKS is down
    await checker.aclose()


async def test_an_empty_answer_never_replaces_good_keys() -> None:
    endpoint = Jwks({"keys": [ES.jwk()]})
    checker = verifier(endpoint, min_refetch=0.0)
    token = sign(access_claims(), signer=ES)
    await checker.verify(token)
    endpoint.document = {"keys": []}
    with pytest.raises(UnknownKey):
        await checker.verify(sign(access_claims(), signer=ES, headers={"kid": "unknown"}))
    assert endpoint.fetches == 2
    assert (await checker.verify(token)).sub == "42"
    await checker.aclose()
