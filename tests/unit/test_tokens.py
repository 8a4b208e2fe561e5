"""Unit tests of app/tokens.py: issuing, round trips, access vs refresh, and time (no I/O).

Every refusal must be an `app.tokens.TokenError` with a message safe to show a client;
`pytest.raises(TokenError)` lets any other exception escape and fail the test.
"""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import pytest

from app.config import Settings
from app.keyset import KeySet
from app.tokens import (
    ACCESS_TYP,
    MAX_TOKEN_LENGTH,
    REFRESH_TYP,
    AccessClaims,
    FixedKeys,
    KeysNotLoaded,
    RefreshClaims,
    Tokens,
)
from tests.support import SECRET
from tests.support.tokens import (
    ACCESS_TTL,
    AUDIENCE,
    DROP,
    ISSUER,
    REFRESH_TTL,
    SID,
    TOKEN_SETTINGS,
    access_claims,
    active_key,
    assert_refused,
    make_tokens,
    now,
    refresh_claims,
    sign,
)

# -- round trips ----------------------------------------------------------------------


def test_access_round_trip(tokens: Tokens) -> None:
    issued = tokens.issue_access(
        sub="42", sid=SID, scope="notes:read notes:write", username="alice"
    )
    claims = tokens.verify_access(issued.token)
    assert isinstance(claims, AccessClaims)
    assert claims.sub == "42"
    assert claims.sid == SID
    assert claims.jti == issued.jti
    assert claims.username == "alice"
    assert claims.scope == "notes:read notes:write"
    assert claims.scopes == frozenset({"notes:read", "notes:write"})
    assert claims.exp == issued.exp
    assert claims.exp - claims.iat == ACCESS_TTL
    assert abs(claims.iat - now()) <= 2


def test_access_token_header_and_claims(tokens: Tokens) -> None:
    issued = tokens.issue_access(sub="42", sid=SID, scope="notes:read", username="alice")
    header = jwt.get_unverified_header(issued.token)
    assert header["typ"] == "at+jwt"
    assert (header["alg"], header["kid"]) == (active_key().alg, active_key().kid)
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert set(payload) == {
        "iss", "aud", "sub", "iat", "exp", "jti", "sid", "scope", "username", "ver"
    }  # fmt: skip
    assert payload["iss"] == ISSUER and payload["aud"] == AUDIENCE
    assert type(payload["iat"]) is int and type(payload["exp"]) is int
    uuid.UUID(payload["jti"])


def test_access_tokens_get_fresh_jtis(tokens: Tokens) -> None:
    first = tokens.issue_access(sub="42", sid=SID, scope="", username="alice")
    second = tokens.issue_access(sub="42", sid=SID, scope="", username="alice")
    assert first.jti != second.jti
    assert first.token != second.token


def test_access_with_explicit_now(tokens: Tokens) -> None:
    issued_at = now() - 100
    issued = tokens.issue_access(
        sub="42", sid=SID, scope="notes:read", username="alice", now=issued_at
    )
    claims = tokens.verify_access(issued.token)
    assert claims.iat == issued_at
    assert claims.exp == issued_at + ACCESS_TTL == issued.exp


def test_refresh_round_trip(tokens: Tokens) -> None:
    jti = str(uuid.uuid4())
    issued = tokens.issue_refresh(sub="42", sid=SID, jti=jti, session_expires=now() + 10**8)
    claims = tokens.verify_refresh(issued.token)
    assert isinstance(claims, RefreshClaims)
    assert claims.sub == "42"
    assert claims.sid == SID
    assert claims.jti == jti == issued.jti
    assert claims.exp == issued.exp
    assert claims.exp - claims.iat == REFRESH_TTL


def test_refresh_token_header_and_claims(tokens: Tokens) -> None:
    issued = tokens.issue_refresh(
        sub="42", sid=SID, jti=str(uuid.uuid4()), session_expires=now() + 10**8
    )
    header = jwt.get_unverified_header(issued.token)
    assert header["typ"] == "refresh+jwt"
    assert (header["alg"], header["kid"]) == (active_key().alg, active_key().kid)
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert payload["grant_type"] == "refresh"
    assert set(payload) == {"iss", "aud", "sub", "iat", "exp", "jti", "sid", "grant_type"}


def test_refresh_exp_never_past_session_expires(tokens: Tokens) -> None:
    issued_at = now()
    session_expires = issued_at + 120  # far sooner than REFRESH_TTL
    issued = tokens.issue_refresh(
        sub="42", sid=SID, jti=str(uuid.uuid4()), session_expires=session_expires, now=issued_at
    )
    assert issued.exp == session_expires
    claims = tokens.verify_refresh(issued.token)
    assert claims.exp == session_expires
    assert claims.iat == issued_at


def test_refresh_exp_is_ttl_when_session_lasts_longer(tokens: Tokens) -> None:
    issued_at = now()
    issued = tokens.issue_refresh(
        sub="42",
        sid=SID,
        jti=str(uuid.uuid4()),
        session_expires=issued_at + REFRESH_TTL + 1,
        now=issued_at,
    )
    assert issued.exp == issued_at + REFRESH_TTL


def test_refresh_past_session_end_is_refused(tokens: Tokens) -> None:
    """A session already over gives a refresh token that is expired from birth."""
    issued = tokens.issue_refresh(
        sub="42", sid=SID, jti=str(uuid.uuid4()), session_expires=now() - 1
    )
    assert_refused(tokens.verify_refresh, issued.token)


def test_hand_built_valid_tokens_verify(tokens: Tokens) -> None:
    """The helpers below build valid tokens, so each refusal is due to its one defect."""
    assert tokens.verify_access(sign(access_claims())).sub == "42"
    assert tokens.verify_refresh(sign(refresh_claims(), REFRESH_TYP)).sub == "42"


def test_token_up_to_max_length_verifies(tokens: Tokens) -> None:
    username = ""
    token = tokens.issue_access(sub="42", sid=SID, scope="", username=username).token
    while len(token) <= MAX_TOKEN_LENGTH - 8:
        username += "x"
        token = tokens.issue_access(sub="42", sid=SID, scope="", username=username).token
    assert MAX_TOKEN_LENGTH - 8 < len(token) <= MAX_TOKEN_LENGTH
    assert tokens.verify_access(token).username == username


# -- access vs refresh ------------------------------------------------------------------


def test_verify_access_refuses_refresh_token(tokens: Tokens) -> None:
    refresh = tokens.issue_refresh(
        sub="42", sid=SID, jti=str(uuid.uuid4()), session_expires=now() + 10**8
    )
    assert_refused(tokens.verify_access, refresh.token)


def test_verify_refresh_refuses_access_token(tokens: Tokens) -> None:
    access = tokens.issue_access(sub="42", sid=SID, scope="notes:read", username="alice")
    assert_refused(tokens.verify_refresh, access.token)


def test_access_typ_with_grant_type_claim_is_refused(tokens: Tokens) -> None:
    token = sign(access_claims(grant_type="refresh"), ACCESS_TYP)
    assert_refused(tokens.verify_access, token)


def test_refresh_claims_with_access_typ_are_refused(tokens: Tokens) -> None:
    """A refresh token's claims relabelled at+jwt (the lifetime alone is too long)."""
    assert_refused(tokens.verify_access, sign(refresh_claims(), ACCESS_TYP))


@pytest.mark.parametrize(
    "grant_type",
    [
        pytest.param(DROP, id="missing"),
        pytest.param("password", id="password"),
        pytest.param("", id="empty"),
        pytest.param(["refresh"], id="list"),
    ],
)
def test_refresh_typ_without_refresh_grant_is_refused(tokens: Tokens, grant_type: Any) -> None:
    token = sign(refresh_claims(grant_type=grant_type), REFRESH_TYP)
    assert_refused(tokens.verify_refresh, token)


@pytest.mark.parametrize(
    "typ",
    [
        pytest.param(None, id="missing"),
        pytest.param("JWT", id="JWT"),
        pytest.param("refresh+jwt", id="refresh+jwt"),
        pytest.param("", id="empty"),
        pytest.param(["at+jwt"], id="list"),
    ],
)
def test_access_with_wrong_typ_is_refused(tokens: Tokens, typ: Any) -> None:
    if typ is None:
        token = sign(access_claims(), None)
    else:
        token = sign(access_claims(), None, headers={"typ": typ})
    assert_refused(tokens.verify_access, token)


@pytest.mark.parametrize(
    "typ",
    [
        pytest.param(None, id="missing"),
        pytest.param("JWT", id="JWT"),
        pytest.param("at+jwt", id="at+jwt"),
    ],
)
def test_refresh_with_wrong_typ_is_refused(tokens: Tokens, typ: str | None) -> None:
    assert_refused(tokens.verify_refresh, sign(refresh_claims(), typ))


# -- time -----------------------------------------------------------------------------


def test_expired_access_is_refused(tokens: Tokens) -> None:
    issued = tokens.issue_access(
        sub="42", sid=SID, scope="", username="alice", now=now() - ACCESS_TTL - 1
    )
    assert_refused(tokens.verify_access, issued.token)


def test_expired_refresh_is_refused(tokens: Tokens) -> None:
    issued_at = now() - REFRESH_TTL - 1
    issued = tokens.issue_refresh(
        sub="42", sid=SID, jti=str(uuid.uuid4()), session_expires=issued_at + 10**8, now=issued_at
    )
    assert_refused(tokens.verify_refresh, issued.token)


def test_access_issued_in_future_is_refused(tokens: Tokens) -> None:
    issued = tokens.issue_access(sub="42", sid=SID, scope="", username="alice", now=now() + 60)
    assert_refused(tokens.verify_access, issued.token)


def test_refresh_issued_in_future_is_refused(tokens: Tokens) -> None:
    issued = tokens.issue_refresh(
        sub="42", sid=SID, jti=str(uuid.uuid4()), session_expires=now() + 10**8, now=now() + 60
    )
    assert_refused(tokens.verify_refresh, issued.token)


SKEW = 30  # CLOCK_SKEW's default


@pytest.mark.parametrize("ahead", [1, 5, SKEW - 2])
def test_a_token_from_a_host_whose_clock_runs_ahead_is_accepted(tokens: Tokens, ahead: int) -> None:
    """Issued by a host whose clock is `ahead` seconds fast: within CLOCK_SKEW, it verifies."""
    access = tokens.issue_access(sub="42", sid=SID, scope="", username="a", now=now() + ahead)
    assert tokens.verify_access(access.token).iat >= now() + ahead - 1
    refresh = tokens.issue_refresh(
        sub="42", sid=SID, jti=str(uuid.uuid4()), session_expires=now() + 10**8, now=now() + ahead
    )
    tokens.verify_refresh(refresh.token)
    tokens.verify_access(sign(access_claims(nbf=now() + ahead)))


@pytest.mark.parametrize("ahead", [SKEW + 5, 300])
def test_a_token_dated_further_ahead_than_the_skew_is_refused(tokens: Tokens, ahead: int) -> None:
    access = tokens.issue_access(sub="42", sid=SID, scope="", username="a", now=now() + ahead)
    assert "not valid yet" in str(assert_refused(tokens.verify_access, access.token))
    assert_refused(tokens.verify_access, sign(access_claims(nbf=now() + ahead)))


def test_the_skew_never_extends_a_token_past_its_exp(tokens: Tokens) -> None:
    """CLOCK_SKEW tolerates an early `iat`, never a late `exp`: expired means expired."""
    expired = sign(access_claims(iat=now() - ACCESS_TTL, exp=now() - 1))
    assert "expired" in str(assert_refused(tokens.verify_access, expired))
    just = sign(access_claims(iat=now() - ACCESS_TTL + 1, exp=now()))
    assert_refused(tokens.verify_access, just)


def test_access_nbf_in_future_is_refused(tokens: Tokens) -> None:
    assert_refused(tokens.verify_access, sign(access_claims(nbf=now() + 60)))


def test_refresh_nbf_in_future_is_refused(tokens: Tokens) -> None:
    assert_refused(tokens.verify_refresh, sign(refresh_claims(nbf=now() + 60), REFRESH_TYP))


def test_access_lifetime_longer_than_configured_is_refused(tokens: Tokens) -> None:
    iat = now() - 10
    assert_refused(tokens.verify_access, sign(access_claims(iat=iat, exp=iat + ACCESS_TTL + 1)))


def test_access_signed_by_longer_ttl_issuer_is_refused(tokens: Tokens) -> None:
    """Same key, but an issuer configured with a longer access TTL."""
    longer = make_tokens(Settings(jwt_secret=SECRET, access_token_ttl=ACCESS_TTL * 10))
    issued = longer.issue_access(sub="42", sid=SID, scope="", username="alice")
    assert_refused(tokens.verify_access, issued.token)


def test_refresh_lifetime_longer_than_configured_is_refused(tokens: Tokens) -> None:
    iat = now()
    token = sign(refresh_claims(iat=iat, exp=iat + REFRESH_TTL + 1), REFRESH_TYP)
    assert_refused(tokens.verify_refresh, token)


def test_no_signing_with_keys_read_too_long_ago_or_never(tokens: Tokens) -> None:
    """A worker that could not read the keys lately might sign with a key another host
    retired past its horizon: 503 instead. Verifying goes on (the keys it has are right)."""

    class Stale(FixedKeys):
        def can_sign(self) -> bool:
            return False

    token = tokens.issue_access(sub="42", sid=SID, scope="", username="alice").token
    stale = Tokens(TOKEN_SETTINGS, Stale(KeySet([active_key()])))
    with pytest.raises(KeysNotLoaded):
        stale.issue_access(sub="42", sid=SID, scope="", username="alice")
    assert stale.verify_access(token).sub == "42"
    for empty in (Tokens(TOKEN_SETTINGS), Tokens(TOKEN_SETTINGS, FixedKeys(None))):
        with pytest.raises(KeysNotLoaded):
            empty.verify_access(token)
        with pytest.raises(KeysNotLoaded):
            empty.issue_access(sub="42", sid=SID, scope="", username="alice")
