"""Unit tests of app/tokens.py: issuing and verifying access and refresh JWTs (no I/O).

Every refusal must be an `app.tokens.TokenError` with a message safe to show a client;
`pytest.raises(TokenError)` lets any other exception escape and fail the test.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from app.config import Settings
from app.tokens import (
    ACCESS_TYP,
    MAX_TOKEN_LENGTH,
    REFRESH_TYP,
    REQUIRED_CLAIMS,
    AccessClaims,
    RefreshClaims,
    TokenError,
    Tokens,
)
from tests.support import SECRET

SETTINGS = Settings(jwt_secret=SECRET)
ISSUER = SETTINGS.jwt_issuer
AUDIENCE = SETTINGS.jwt_audience
ACCESS_TTL = SETTINGS.access_token_ttl
REFRESH_TTL = SETTINGS.refresh_token_ttl
SID = "0f0e8d52-4c1a-4d8e-9a55-3f1b2c3d4e5f"
DROP = object()  # claim value meaning "leave this claim out"


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(SETTINGS)


def now() -> int:
    return int(time.time())


def access_claims(**overrides: Any) -> dict[str, Any]:
    """The claims of a valid access token; `name=DROP` removes a claim."""
    iat = now()
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "42",
        "iat": iat,
        "exp": iat + ACCESS_TTL,
        "jti": str(uuid.uuid4()),
        "sid": SID,
        "scope": "notes:read notes:write",
        "username": "alice",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not DROP}


def refresh_claims(**overrides: Any) -> dict[str, Any]:
    """The claims of a valid refresh token; `name=DROP` removes a claim."""
    iat = now()
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "42",
        "iat": iat,
        "exp": iat + REFRESH_TTL,
        "jti": str(uuid.uuid4()),
        "sid": SID,
        "grant_type": "refresh",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not DROP}


def sign(
    claims: Any,
    typ: str | None = ACCESS_TYP,
    *,
    key: str = SECRET,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
) -> str:
    """Sign any JSON payload (object or not) with an explicit JOSE header."""
    header: dict[str, Any] = {"typ": typ}  # PyJWS drops a falsy typ instead of adding "JWT"
    header.update(headers or {})
    payload = json.dumps(claims, separators=(",", ":")).encode()
    token: str = jwt.api_jws.encode(payload, key, algorithm=algorithm, headers=header)
    if not header["typ"]:
        assert "typ" not in jwt.get_unverified_header(token)
    return token


def assert_refused(verify: Callable[[Any], Any], token: Any) -> TokenError:
    with pytest.raises(TokenError) as caught:
        verify(token)
    message = str(caught.value)
    assert message and "Traceback" not in message
    return caught.value


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
    assert header["alg"] == "HS256"
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert set(payload) == {"iss", "aud", "sub", "iat", "exp", "jti", "sid", "scope", "username"}
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
    assert header["alg"] == "HS256"
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


def test_access_nbf_in_future_is_refused(tokens: Tokens) -> None:
    assert_refused(tokens.verify_access, sign(access_claims(nbf=now() + 60)))


def test_refresh_nbf_in_future_is_refused(tokens: Tokens) -> None:
    assert_refused(tokens.verify_refresh, sign(refresh_claims(nbf=now() + 60), REFRESH_TYP))


def test_access_lifetime_longer_than_configured_is_refused(tokens: Tokens) -> None:
    iat = now() - 10
    assert_refused(tokens.verify_access, sign(access_claims(iat=iat, exp=iat + ACCESS_TTL + 1)))


def test_access_signed_by_longer_ttl_issuer_is_refused(tokens: Tokens) -> None:
    """Same key, but an issuer configured with a longer access TTL."""
    longer = Tokens(Settings(jwt_secret=SECRET, access_token_ttl=ACCESS_TTL * 10))
    issued = longer.issue_access(sub="42", sid=SID, scope="", username="alice")
    assert_refused(tokens.verify_access, issued.token)


def test_refresh_lifetime_longer_than_configured_is_refused(tokens: Tokens) -> None:
    iat = now()
    token = sign(refresh_claims(iat=iat, exp=iat + REFRESH_TTL + 1), REFRESH_TYP)
    assert_refused(tokens.verify_refresh, token)


# -- claim types ------------------------------------------------------------------------

_T = now()
WRONG_TIME_TYPES = [
    pytest.param("iat", float(_T), id="iat-float"),
    pytest.param("iat", str(_T), id="iat-string"),
    pytest.param("iat", True, id="iat-true"),
    pytest.param("iat", None, id="iat-null"),
    pytest.param("iat", [_T], id="iat-list"),
    pytest.param("exp", float(_T + 300), id="exp-float"),
    pytest.param("exp", str(_T + 300), id="exp-string"),
    pytest.param("exp", True, id="exp-true"),
    pytest.param("exp", None, id="exp-null"),
    pytest.param("exp", {"t": _T + 300}, id="exp-object"),
    pytest.param("exp", 10**400, id="exp-huge"),
]


@pytest.mark.parametrize(("name", "value"), WRONG_TIME_TYPES)
def test_access_time_claim_of_wrong_type_is_refused(tokens: Tokens, name: str, value: Any) -> None:
    assert_refused(tokens.verify_access, sign(access_claims(**{name: value})))


@pytest.mark.parametrize(("name", "value"), WRONG_TIME_TYPES)
def test_refresh_time_claim_of_wrong_type_is_refused(tokens: Tokens, name: str, value: Any) -> None:
    assert_refused(tokens.verify_refresh, sign(refresh_claims(**{name: value}), REFRESH_TYP))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("sub", 42, id="sub-int"),
        pytest.param("sub", "", id="sub-empty"),
        pytest.param("sub", None, id="sub-null"),
        pytest.param("sid", "", id="sid-empty"),
        pytest.param("sid", 7, id="sid-int"),
        pytest.param("jti", "", id="jti-empty"),
        pytest.param("jti", ["x"], id="jti-list"),
        pytest.param("scope", ["notes:read"], id="scope-list"),
        pytest.param("scope", None, id="scope-null"),
        pytest.param("scope", DROP, id="scope-missing"),
        pytest.param("username", 1, id="username-int"),
    ],
)
def test_access_claim_of_wrong_type_is_refused(tokens: Tokens, name: str, value: Any) -> None:
    assert_refused(tokens.verify_access, sign(access_claims(**{name: value})))


@pytest.mark.parametrize(
    "sid",
    [
        pytest.param("not-a-uuid", id="word"),
        pytest.param("1234", id="digits"),
        pytest.param(SID + "0", id="uuid-plus-one"),
        pytest.param("../../etc/passwd", id="path"),
    ],
)
def test_sid_not_a_uuid_is_refused(tokens: Tokens, sid: str) -> None:
    issued = tokens.issue_access(sub="42", sid=sid, scope="", username="alice")
    assert_refused(tokens.verify_access, issued.token)
    refresh = tokens.issue_refresh(
        sub="42", sid=sid, jti=str(uuid.uuid4()), session_expires=now() + 10**8
    )
    assert_refused(tokens.verify_refresh, refresh.token)


# -- required claims, issuer, audience ------------------------------------------------


@pytest.mark.parametrize("name", REQUIRED_CLAIMS)
def test_access_missing_required_claim_is_refused(tokens: Tokens, name: str) -> None:
    assert_refused(tokens.verify_access, sign(access_claims(**{name: DROP})))


@pytest.mark.parametrize("name", REQUIRED_CLAIMS)
def test_refresh_missing_required_claim_is_refused(tokens: Tokens, name: str) -> None:
    assert_refused(tokens.verify_refresh, sign(refresh_claims(**{name: DROP}), REFRESH_TYP))


def test_required_claims_are_the_contract() -> None:
    assert set(REQUIRED_CLAIMS) == {"iss", "aud", "sub", "iat", "exp", "jti", "sid"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("iss", "someone-else", id="iss-other"),
        pytest.param("iss", ISSUER[:-1], id="iss-prefix"),
        pytest.param("iss", ISSUER + "x", id="iss-longer"),
        pytest.param("iss", [ISSUER], id="iss-list"),
        pytest.param("iss", "", id="iss-empty"),
        pytest.param("aud", "someone-else", id="aud-other"),
        pytest.param("aud", [AUDIENCE], id="aud-list"),
        pytest.param("aud", [AUDIENCE, "other"], id="aud-list-two"),
        pytest.param("aud", AUDIENCE.upper(), id="aud-upper"),
        pytest.param("aud", "", id="aud-empty"),
    ],
)
def test_wrong_issuer_or_audience_is_refused(tokens: Tokens, name: str, value: Any) -> None:
    assert_refused(tokens.verify_access, sign(access_claims(**{name: value})))
    assert_refused(tokens.verify_refresh, sign(refresh_claims(**{name: value}), REFRESH_TYP))


def test_token_of_other_issuer_settings_is_refused(tokens: Tokens) -> None:
    for other in (
        Settings(jwt_secret=SECRET, jwt_issuer="other-issuer"),
        Settings(jwt_secret=SECRET, jwt_audience="other-audience"),
    ):
        issued = Tokens(other).issue_access(sub="42", sid=SID, scope="", username="alice")
        assert_refused(tokens.verify_access, issued.token)


# -- signature and algorithm ------------------------------------------------------------


def test_wrong_key_is_refused(tokens: Tokens) -> None:
    assert_refused(tokens.verify_access, sign(access_claims(), key="another-secret-" + "y" * 40))
    other = Tokens(Settings(jwt_secret="another-secret-" + "y" * 40))
    issued = other.issue_access(sub="42", sid=SID, scope="", username="alice")
    assert_refused(tokens.verify_access, issued.token)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithm_is_refused(tokens: Tokens, algorithm: str) -> None:
    assert_refused(tokens.verify_access, sign(access_claims(), algorithm=algorithm))


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(tokens: Tokens, alg: str) -> None:
    good = sign(access_claims())
    _, payload, _ = good.split(".")
    header = jwt.utils.base64url_encode(
        json.dumps({"alg": alg, "typ": ACCESS_TYP}).encode()
    ).decode()
    assert_refused(tokens.verify_access, f"{header}.{payload}.")
    assert_refused(tokens.verify_access, f"{header}.{payload}.c2lnbmF0dXJl")


def test_unknown_crit_header_is_refused(tokens: Tokens) -> None:
    token = sign(access_claims(), headers={"crit": ["x-unknown"], "x-unknown": True})
    assert_refused(tokens.verify_access, token)


def test_tampered_payload_is_refused(tokens: Tokens) -> None:
    good = tokens.issue_access(sub="42", sid=SID, scope="notes:read", username="alice").token
    header, _, signature = good.split(".")
    payload = jwt.utils.base64url_encode(json.dumps(access_claims(scope="admin")).encode()).decode()
    assert_refused(tokens.verify_access, f"{header}.{payload}.{signature}")


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: t.rsplit(".", 1)[0] + ".", id="stripped-signature"),
        pytest.param(lambda t: t.rsplit(".", 1)[0], id="two-segments"),
        pytest.param(lambda t: t + ".e30", id="four-segments"),
        # RFC 7515 §2: base64url "with all trailing '=' characters omitted"
        pytest.param(lambda t: t + "=", id="padded-signature"),
        pytest.param(lambda t: t + "==", id="double-padded-signature"),
        pytest.param(lambda t: t[:-2] + "+/", id="plus-slash-signature"),
        pytest.param(lambda t: t.replace(".", ". ", 1), id="space-inside"),
        pytest.param(lambda t: t[:20] + "\t" + t[20:], id="tab-inside"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: t + "\n", id="trailing-newline"),
        pytest.param(lambda t: "é" + t, id="unicode-prefix"),
        pytest.param(lambda t: "...", id="dots-only"),
        pytest.param(lambda t: "not a jwt", id="words"),
    ],
)
def test_malformed_encoding_is_refused(tokens: Tokens, mangle: Callable[[str], str]) -> None:
    good = tokens.issue_access(sub="42", sid=SID, scope="", username="alice").token
    assert_refused(tokens.verify_access, mangle(good))


def test_json_array_payload_is_refused(tokens: Tokens) -> None:
    assert_refused(tokens.verify_access, sign([access_claims()]))


def test_non_json_header_is_refused(tokens: Tokens) -> None:
    good = sign(access_claims())
    _, payload, signature = good.split(".")
    header = jwt.utils.base64url_encode(b"{not json").decode()
    assert_refused(tokens.verify_access, f"{header}.{payload}.{signature}")


# -- size and input type ----------------------------------------------------------------


@pytest.mark.parametrize("size", [MAX_TOKEN_LENGTH + 1, 10_000, 100_000])
def test_token_longer_than_max_length_is_refused(tokens: Tokens, size: int) -> None:
    """Otherwise valid tokens (correctly signed), refused for their length alone."""
    username = ""
    token = tokens.issue_access(sub="42", sid=SID, scope="", username=username).token
    username = "x" * max(0, (size - len(token)) * 3 // 4 + 4)
    token = tokens.issue_access(sub="42", sid=SID, scope="", username=username).token
    assert len(token) > MAX_TOKEN_LENGTH and len(token) >= size
    assert_refused(tokens.verify_access, token)
    refresh = tokens.issue_refresh(sub="42", sid=SID, jti="j" * size, session_expires=now() + 10**8)
    assert len(refresh.token) > MAX_TOKEN_LENGTH
    assert_refused(tokens.verify_refresh, refresh.token)


def test_garbage_longer_than_max_length_is_refused(tokens: Tokens) -> None:
    assert_refused(tokens.verify_access, "a" * (MAX_TOKEN_LENGTH + 1))
    assert_refused(tokens.verify_access, "a." * 50_000)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="None"),
        pytest.param(b"", id="empty-bytes"),
        pytest.param(12345, id="int"),
        pytest.param(["a.b.c"], id="list"),
        pytest.param({"token": "a.b.c"}, id="dict"),
        pytest.param("", id="empty-string"),
    ],
)
def test_non_string_or_empty_input_is_refused(tokens: Tokens, value: Any) -> None:
    assert_refused(tokens.verify_access, value)
    assert_refused(tokens.verify_refresh, value)


def test_valid_token_as_bytes_is_refused(tokens: Tokens) -> None:
    """PyJWT would take bytes; the contract of verify_* is a str."""
    access = tokens.issue_access(sub="42", sid=SID, scope="", username="alice").token
    refresh = tokens.issue_refresh(
        sub="42", sid=SID, jti=str(uuid.uuid4()), session_expires=now() + 10**8
    ).token
    assert_refused(tokens.verify_access, access.encode())
    assert_refused(tokens.verify_refresh, refresh.encode())
