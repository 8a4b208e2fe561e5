"""Unit tests of app/tokens.py: what verification refuses (claim types, required claims,
issuer and audience, signature and algorithm, size and input type), each as a `TokenError`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from app import keys
from app.config import Settings
from app.tokens import (
    ACCESS_TYP,
    MAX_TOKEN_LENGTH,
    REFRESH_TYP,
    REQUIRED_CLAIMS,
    Tokens,
    UnknownKey,
)
from tests.support import SECRET
from tests.support.tokens import (
    AUDIENCE,
    DROP,
    ISSUER,
    SID,
    TOKEN_SETTINGS,
    access_claims,
    active_key,
    assert_refused,
    key_of,
    make_tokens,
    now,
    public_pem,
    refresh_claims,
    sign,
)

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
        issued = make_tokens(other).issue_access(sub="42", sid=SID, scope="", username="alice")
        assert_refused(tokens.verify_access, issued.token)


# -- signature and algorithm ------------------------------------------------------------


def test_wrong_key_is_refused(tokens: Tokens) -> None:
    assert_refused(tokens.verify_access, sign(access_claims(), key="another-secret-" + "y" * 40))
    # another key of the same algorithm, with another kid: and with the same kid
    other = key_of(active_key().alg, "other")
    issued = make_tokens(TOKEN_SETTINGS, other).issue_access(
        sub="42", sid=SID, scope="", username="alice"
    )
    assert_refused(tokens.verify_access, issued.token)
    impostor = sign(access_claims(), signer=other, headers={"kid": active_key().kid})
    assert_refused(tokens.verify_access, impostor)


def test_other_algorithm_under_the_kid_is_refused(tokens: Tokens) -> None:
    """Each kid is pinned to its key's one algorithm: any other, even keyed right (the HMAC
    key's bytes, or for an asymmetric key its public PEM: algorithm confusion), is refused."""
    others = [alg for alg in keys.HMAC_ALGORITHMS if alg != active_key().alg]
    for algorithm in others:
        assert_refused(tokens.verify_access, sign(access_claims(), algorithm=algorithm))


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_hmac_signed_with_the_published_public_key_is_refused(alg: str) -> None:
    """The JWKS publishes the public key: an HMAC "signed" with it, whatever form of the
    key, under its kid or none, is no token of ours."""
    signer = key_of(alg)
    tokens = make_tokens(TOKEN_SETTINGS, signer)
    jwk = signer.jwk()
    assert jwk is not None
    public = jwk.get("x") or jwk["n"]
    for secret in (public_pem(signer), json.dumps(jwk).encode(), public.encode()):
        for headers in ({}, {"kid": DROP}):
            forged = sign(access_claims(), key=secret, signer=signer, headers=headers)
            assert_refused(tokens.verify_access, forged)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("jwk", id="embedded-jwk"),
        pytest.param("jku", id="jwk-set-url"),
        pytest.param("x5u", id="x509-url"),
        pytest.param("x5c", id="x509-chain"),
    ],
)
def test_keys_named_by_the_token_itself_are_ignored(tokens: Tokens, header: str) -> None:
    """A token signed by the attacker's key, pointing at that key (embedded or by URL),
    under our kid or its own, is refused; our own token with such a header is ours."""
    attacker = key_of("ES256", "attacker")
    pointers: dict[str, object] = {
        "jwk": attacker.jwk(),
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
    }
    for kid in (active_key().kid, attacker.kid):
        forged = sign(
            access_claims(), signer=attacker, headers={header: pointers[header], "kid": kid}
        )
        assert_refused(tokens.verify_access, forged)
    ours = sign(access_claims(), headers={header: pointers[header]})
    assert tokens.verify_access(ours).sub == "42"


def test_unknown_kid_and_no_kid_are_refused(tokens: Tokens) -> None:
    for headers in ({"kid": "no-such-key"}, {"kid": DROP}):
        error = assert_refused(tokens.verify_access, sign(access_claims(), headers=headers))
        assert isinstance(error, UnknownKey)
    for kid in ("", 7, None, ["k"]):
        assert_refused(tokens.verify_access, sign(access_claims(), headers={"kid": kid}))


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


@pytest.mark.parametrize("version", ["1", 1.0, -1, True, None, [1]])
def test_a_malformed_token_version_is_refused(tokens: Tokens, version: Any) -> None:
    assert_refused(tokens.verify_access, sign(access_claims(ver=version)))


def test_a_token_without_a_version_is_version_0(tokens: Tokens) -> None:
    """Tokens issued before versions existed: any cut-off since refuses them."""
    assert tokens.verify_access(sign(access_claims(ver=DROP))).ver == 0
    assert tokens.verify_access(sign(access_claims(ver=7))).ver == 7
