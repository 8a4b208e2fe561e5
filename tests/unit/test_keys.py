"""app/keys.py: key material, its encryption at rest, signatures and JWKs."""

from __future__ import annotations

import jwt
import pytest

from app import keys, keyset
from app.keyset import KeySet
from tests.support import SECRET
from tests.support.tokens import make_key as key

ALGORITHMS = ("HS256", "HS384", "HS512", "ES256", "EdDSA", "RS256")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_every_algorithm_signs_what_pyjwt_verifies_with_the_public_half(alg: str) -> None:
    signing = key(alg)
    header = jwt.utils.base64url_encode(f'{{"alg":"{alg}"}}'.encode()).decode()
    signing_input = f"{header}.{jwt.utils.base64url_encode(b'{}').decode()}"
    signature = jwt.utils.base64url_encode(signing.sign(signing_input.encode())).decode()
    verified = jwt.api_jws.decode(f"{signing_input}.{signature}", signing.public, algorithms=[alg])
    assert verified == b"{}"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_signatures_are_deterministic(alg: str) -> None:
    # a retried refresh is answered with the same bytes, whatever the algorithm (RFC 6979)
    signing = key(alg)
    assert signing.sign(b"a.b") == signing.sign(b"a.b")


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_jwk_is_the_public_half_only_and_pyjwt_reads_it(alg: str) -> None:
    signing = key(alg)
    jwk = signing.jwk()
    assert jwk is not None
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (signing.kid, alg, "sig")
    assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)
    token = jwt.encode({"a": 1}, signing.private, algorithm=alg)
    assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[alg]) == {"a": 1}


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_keys_are_never_published(alg: str) -> None:
    assert key(alg).jwk() is None
    assert keyset.published(KeySet([key(alg)]), 0.0, 50) == []


def test_private_halves_are_encrypted_bound_to_kid_and_algorithm() -> None:
    new = keys.generate(SECRET, "HS256")
    plain = keys.decrypt(SECRET, new.kid, "HS256", new.material)
    assert len(plain) == keys.HMAC_KEY_BYTES and plain not in new.material
    with pytest.raises(keys.KeyDecryptionError, match="JWT_SECRET"):
        keys.decrypt("another-secret-" + "y" * 40, new.kid, "HS256", new.material)
    with pytest.raises(keys.KeyDecryptionError):  # a row's material moved to another kid
        keys.decrypt(SECRET, "other-kid", "HS256", new.material)
    with pytest.raises(keys.KeyDecryptionError):  # or relabelled as another algorithm
        keys.decrypt(SECRET, new.kid, "HS512", new.material)
    tampered = new.material[:-1] + bytes([new.material[-1] ^ 1])
    with pytest.raises(keys.KeyDecryptionError):
        keys.decrypt(SECRET, new.kid, "HS256", tampered)
