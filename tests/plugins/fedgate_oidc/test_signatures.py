"""verify_signature on every allowed algorithm, and on what must fail.

Each algorithm signs with a freshly generated key of its kind; a changed signature, another key's
signature, an ECDSA signature of the wrong length and a key object of another type or curve than
its JWK members claim are all refused.
"""

from __future__ import annotations

import base64
import json

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from fedgate_oidc.token import (
    KeySet,
    SigningKey,
    UnverifiedToken,
    parse_token,
    select_key,
    verify_signature,
)
from gateway.errors import InvalidIdentityToken

ALL = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _private(alg: str) -> RSAKey | ECKey | OKPKey:
    if alg[:2] in ("RS", "PS"):
        return RSAKey.generate_key(2048, private=True)
    if alg.startswith("ES"):
        return ECKey.generate_key(_CURVES[alg], private=True)
    return OKPKey.generate_key("Ed25519", private=True)


def _token(alg: str, key: RSAKey | ECKey | OKPKey) -> str:
    head = _b64(json.dumps({"alg": alg, "kid": "k"}).encode())
    body = _b64(json.dumps({"sub": "x"}).encode())
    signature = JWSRegistry.algorithms["Ed25519" if alg == "EdDSA" else alg].sign(
        f"{head}.{body}".encode(), key
    )
    return f"{head}.{body}.{_b64(signature)}"


def _key_set(key: RSAKey | ECKey | OKPKey) -> KeySet:
    return KeySet.from_jwks({"keys": [{**key.as_dict(private=False), "kid": "k"}]})


def _parse(token: str) -> UnverifiedToken:
    return parse_token(token, max_bytes=16384, algorithms=ALL)


@pytest.mark.parametrize("alg", ALL)
def test_each_algorithm_verifies_and_a_changed_signature_does_not(alg: str) -> None:
    key = _private(alg)
    token = _token(alg, key)
    parsed = _parse(token)
    verify_signature(parsed, select_key(parsed, _key_set(key)))
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 1
    forged = _parse(f"{head}.{body}.{_b64(bytes(raw))}")
    with pytest.raises(InvalidIdentityToken, match="signature is invalid"):
        verify_signature(forged, select_key(forged, _key_set(key)))


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_a_signature_by_another_key_of_the_same_kind_is_refused(alg: str) -> None:
    parsed = _parse(_token(alg, _private(alg)))
    with pytest.raises(InvalidIdentityToken, match="signature is invalid"):
        verify_signature(parsed, select_key(parsed, _key_set(_private(alg))))


def test_es256_signature_of_the_wrong_length_is_refused() -> None:
    key = _private("ES256")
    head, body, signature = _token("ES256", key).split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    for wrong in (raw + b"\0", raw[:-1], b"\0" + raw[:-1] + b"\0\0"):
        parsed = _parse(f"{head}.{body}.{_b64(wrong)}")
        with pytest.raises(InvalidIdentityToken, match="signature is invalid"):
            verify_signature(parsed, select_key(parsed, _key_set(key)))


@pytest.mark.parametrize(
    ("alg", "wrong"),
    [("RS256", _private("ES256")), ("ES256", _private("RS256")), ("EdDSA", _private("ES256"))],
)
def test_a_key_object_of_another_type_never_verifies(alg: str, wrong: RSAKey | ECKey | OKPKey) -> None:
    # A SigningKey whose JWK members claim the algorithm's key type but whose key object is of
    # another: the object's own type decides, not only the members (the second lock).
    right = _private(alg)
    parsed = _parse(_token(alg, right))
    honest = select_key(parsed, _key_set(right))
    lying = SigningKey(honest.kid, honest.kty, honest.crv, honest.alg, wrong, honest.thumbprint)
    with pytest.raises(InvalidIdentityToken, match="signature is invalid"):
        verify_signature(parsed, lying)


def test_es384_key_object_on_a_p256_curve_is_refused() -> None:
    p256 = _private("ES256")
    parsed = _parse(_token("ES384", _private("ES384")))
    honest = select_key(parsed, _key_set(_private("ES384")))
    lying = SigningKey(honest.kid, "EC", "P-384", None, p256, honest.thumbprint)
    with pytest.raises(InvalidIdentityToken, match="signature is invalid"):
        verify_signature(parsed, lying)
