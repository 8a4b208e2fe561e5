"""Unit tests of app/bearer.py's pure parts: the Authorization header, the verified-token cache."""

from __future__ import annotations

import pytest

from app.bearer import VerifiedTokens, bearer_token
from app.errors import InvalidBearerRequest
from tests.support.tokens import fake_claims


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("BeArEr abc", "abc"),
        ("  Bearer abc  ", "abc"),
        ("Bearer   abc", "abc"),
    ],
)
def test_bearer_token_reads_the_token(header: str, token: str) -> None:
    assert bearer_token(header) == token


def test_no_header_is_no_token() -> None:
    assert bearer_token(None) is None


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic abc", "Bearerabc", "Bearer a b", "Token abc", "abc"],
)
def test_a_malformed_header_is_invalid_request(header: str) -> None:
    with pytest.raises(InvalidBearerRequest) as caught:
        bearer_token(header)
    assert caught.value.status == 400
    assert caught.value.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_request"'


def test_verified_tokens_never_return_an_expired_token_and_evict_it() -> None:
    cache = VerifiedTokens()
    claims = fake_claims(exp=2000)
    cache.put("token", claims)
    assert cache.get("token", 1999.999) is claims
    assert len(cache) == 1
    # at its exp the token is dead (exp is the first second it is not valid), and forgotten
    assert cache.get("token", 2000.0) is None
    assert len(cache) == 0
    # forgotten: even asking with an earlier clock gets nothing back
    assert cache.get("token", 1500.0) is None
    assert cache.get("other", 1500.0) is None


def test_verified_tokens_stay_bounded_at_max_size() -> None:
    cache = VerifiedTokens(max_size=10)
    for n in range(57):
        cache.put(f"token-{n}", fake_claims(n))
        assert len(cache) <= 10
        # the token just stored is always there
        assert cache.get(f"token-{n}", 1500.0) == fake_claims(n)
    # the newest survive, the oldest went
    assert cache.get("token-0", 1500.0) is None
    assert cache.get("token-56", 1500.0) is not None


def test_verified_tokens_key_is_the_whole_token() -> None:
    cache = VerifiedTokens()
    cache.put("aaa.bbb.ccc", fake_claims())
    for other in ("aaa.bbb.ccd", "aaa.bbc.ccc", "aab.bbb.ccc", "aaa.bbb.cc", "aaa.bbb.ccc "):
        assert cache.get(other, 1500.0) is None
