"""Verification of a compact-JWS ID token against a key set: pure, synchronous, no I/O.

The order matters: the cheap structural checks (size, shape, header, algorithm, key choice) run
before any signature operation, and nothing from the token is used until its signature verified.
Keys only ever come from the issuer's JWKS; a token naming its own key (``jku``, ``x5u``, ``jwk``)
is refused, and every key is bound to the one algorithm family and curve it may verify.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from gateway.errors import ExpiredToken, IDPRejectedClaim, InvalidIdentityToken
from gateway.plugin import bounded_loads

__all__ = [
    "KeyNotFound",
    "KeySet",
    "SigningKey",
    "UnverifiedToken",
    "check_claims",
    "decode_claims",
    "parse_token",
    "select_key",
    "verify_signature",
]

# Which key may verify which algorithm: (kty, crv). RSA keys carry no curve.
_KEY_FOR_ALG: Final[Mapping[str, tuple[str, str | None]]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
}
# joserfc deprecates the polymorphic "EdDSA" name (RFC 9864); with the curve pinned to Ed25519 above,
# its fully specified "Ed25519" algorithm is exactly the same computation.
_JOSERFC_ALG: Final[Mapping[str, str]] = {"EdDSA": "Ed25519"}
_MIN_RSA_BITS: Final = 2048
_MAX_RSA_BITS: Final = 8192
_MAX_HEADER_CHARS: Final = 4096
_MAX_KEYS: Final = 100
# The characters that may end a canonical base64url text of length 4n + 2 (its last character
# carries 4 stray bits) or 4n + 3 (2 stray bits): those whose value has the stray low bits zero.
_CANONICAL_LAST: Final = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
_PADDING: Final = {0: b"", 2: b"==", 3: b"="}
_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")
# Header parameters that would let the token choose its own key or change how it is processed.
_KEY_HEADERS: Final = ("jku", "x5u", "jwk")


class KeyNotFound(Exception):
    """No key in the set fits the token; the caller may refetch the key set once and retry."""


@dataclass(frozen=True, slots=True)
class UnverifiedToken:
    """A structurally valid token whose signature has not been checked yet."""

    header: Mapping[str, Any]
    alg: str
    kid: str | None
    signing_input: bytes
    payload: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One usable public key from the issuer's JWKS."""

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None
    key: RSAKey | ECKey | OKPKey
    thumbprint: str

    def fits(self, alg: str) -> bool:
        """Whether this key may verify a signature made with ``alg``."""
        kty, crv = _KEY_FOR_ALG[alg]
        return self.kty == kty and self.crv == crv and self.alg in (None, alg)


@dataclass(frozen=True, slots=True)
class KeySet:
    """The usable signing keys of an issuer; unusable entries of the JWKS are left out."""

    keys: tuple[SigningKey, ...]

    @classmethod
    def from_jwks(cls, document: object) -> KeySet:
        """Build a key set from a parsed JWKS document. Raises ``ValueError`` if it is not one."""
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWK set")
        entries: list[object] = document["keys"]
        return cls(tuple(k for k in map(_import_jwk, entries[:_MAX_KEYS]) if k is not None))

    def fingerprint(self) -> frozenset[tuple[str | None, str]]:
        """What identifies the set's content: each key's kid and RFC 7638 thumbprint."""
        return frozenset((k.kid, k.thumbprint) for k in self.keys)


def _import_jwk(jwk: object) -> SigningKey | None:
    if not isinstance(jwk, dict):
        return None
    kty, kid, alg = jwk.get("kty"), jwk.get("kid"), jwk.get("alg")
    if kid is not None and not isinstance(kid, str):
        return None
    if alg is not None and alg not in _KEY_FOR_ALG:
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    # Only public members are imported: a JWKS that leaks private material still yields a verify-only key.
    try:
        if kty == "RSA":
            public = _rsa_public_key(jwk.get("n"), jwk.get("e"))
            if public is None:
                return None
            rsa_key = RSAKey.import_key(public)
            return SigningKey(kid, "RSA", None, alg, rsa_key, rsa_key.thumbprint())
        if kty == "EC" and jwk.get("crv") in ("P-256", "P-384", "P-521"):
            ec = ECKey.import_key({"kty": "EC", "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]})
            return SigningKey(kid, "EC", ec.curve_name, alg, ec, ec.thumbprint())
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            okp = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]})
            return SigningKey(kid, "OKP", "Ed25519", alg, okp, okp.thumbprint())
    except (JoseError, KeyError, TypeError, ValueError):
        return None
    return None


def _rsa_public_key(n: object, e: object) -> rsa.RSAPublicKey | None:
    # Sized before import: weak keys are skipped (joserfc would only warn), huge ones cost CPU.
    if (
        not isinstance(n, str)
        or not isinstance(e, str)
        or len(n) > 4 * _MAX_RSA_BITS // 24 + 4
        or len(e) > 12
    ):
        return None
    try:
        modulus = int.from_bytes(_b64decode(n))
        exponent = int.from_bytes(_b64decode(e))
    except InvalidIdentityToken:
        return None
    if not _MIN_RSA_BITS <= modulus.bit_length() <= _MAX_RSA_BITS:
        return None
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def _b64decode(part: str) -> bytes:
    tail = len(part) % 4
    # The standard alphabet's own characters must not pass for ours once translated; the rest of
    # the alphabet check is binascii's strict mode (a regex over the token cost ~40 instructions a
    # character).
    if tail == 1 or not part.isascii() or "+" in part or "/" in part or "=" in part:
        raise InvalidIdentityToken("token is not valid base64url")
    # Refuse non-canonical encodings (stray trailing bits) so one token has exactly one spelling:
    # the last character must leave the bits past the last whole byte zero.
    if tail and part[-1] not in _CANONICAL_LAST[tail]:
        raise InvalidIdentityToken("token is not valid base64url")
    try:
        return binascii.a2b_base64(
            part.encode("ascii").translate(_TO_STANDARD) + _PADDING[tail], strict_mode=True
        )
    except binascii.Error:
        raise InvalidIdentityToken("token is not valid base64url") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # Two parsers could disagree on which duplicate wins; refuse rather than guess.
        raise ValueError("duplicate member")
    return result


def _bad_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = bounded_loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_bad_constant)
    except ValueError:
        raise InvalidIdentityToken(f"token {what} is not a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidIdentityToken(f"token {what} is not a JSON object")
    return value


def parse_token(token: str, *, max_bytes: int, algorithms: Collection[str]) -> UnverifiedToken:
    """Check the token's size, shape and header, without any signature operation.

    Raises :class:`InvalidIdentityToken` for anything but a compact JWS whose header names an
    algorithm from ``algorithms`` and no token-supplied key.
    """
    if len(token) > max_bytes:
        raise InvalidIdentityToken(f"token is larger than {max_bytes} bytes")
    if not token.isascii():
        raise InvalidIdentityToken("token is not a compact JWS")
    parts = token.split(".")
    if len(parts) == 5:
        # Never decrypted nor decompressed: a compressed JWE is a denial-of-service bomb.
        raise InvalidIdentityToken("encrypted tokens (JWE) are not accepted")
    if len(parts) != 3:
        raise InvalidIdentityToken("token is not a compact JWS (three dot-separated parts)")
    head, body, sig = parts
    if not head or not body or not sig:
        raise InvalidIdentityToken("token is not a compact JWS (a part is empty)")
    if len(head) > _MAX_HEADER_CHARS:
        raise InvalidIdentityToken("token header is too large")
    header = _json_object(_b64decode(head), "header")
    alg, kid = _check_header(header, algorithms)
    return UnverifiedToken(
        header=header,
        alg=alg,
        kid=kid,
        signing_input=token[: len(head) + 1 + len(body)].encode("ascii"),
        payload=_b64decode(body),
        signature=_b64decode(sig),
    )


def _check_header(header: Mapping[str, Any], algorithms: Collection[str]) -> tuple[str, str | None]:
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise InvalidIdentityToken("token header has no alg")
    if alg.lower() == "none" or alg.upper().startswith("HS"):
        raise InvalidIdentityToken("token alg must be an asymmetric signature algorithm")
    if alg not in algorithms:
        named = alg if alg in _KEY_FOR_ALG else "this alg"
        raise InvalidIdentityToken(f"token signed with {named}, which this provider does not allow")
    if "enc" in header or "zip" in header:
        raise InvalidIdentityToken("encrypted or compressed tokens are not accepted")
    if "crit" in header or "b64" in header:
        raise InvalidIdentityToken("token header uses extensions (crit) that are not supported")
    if any(name in header for name in _KEY_HEADERS):
        raise InvalidIdentityToken(
            "token header names its own key (jku, x5u or jwk); keys come from the issuer"
        )
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 0 < len(kid) <= 256):
        raise InvalidIdentityToken("token kid must be a short string")
    return alg, kid


def select_key(token: UnverifiedToken, keys: KeySet) -> SigningKey:
    """Choose the key that may verify ``token``.

    By ``kid`` when the token has one, else the only key of the set that fits the algorithm.
    Raises :class:`KeyNotFound` when no key is there (a refetch may help) and
    :class:`InvalidIdentityToken` when the named key does not fit the algorithm or the choice is ambiguous.
    """
    if token.kid is not None:
        named = [k for k in keys.keys if k.kid == token.kid]
        if not named:
            raise KeyNotFound
        fitting = [k for k in named if k.fits(token.alg)]
        if not fitting:
            raise InvalidIdentityToken(f"the key named by the token's kid cannot verify {token.alg}")
        return fitting[0]
    fitting = [k for k in keys.keys if k.fits(token.alg)]
    if not fitting:
        raise KeyNotFound
    if len(fitting) > 1:
        raise InvalidIdentityToken("token has no kid and the issuer publishes several keys")
    return fitting[0]


def verify_signature(token: UnverifiedToken, key: SigningKey) -> None:
    """Verify ``token``'s signature with ``key`` or raise :class:`InvalidIdentityToken`."""
    if not key.fits(token.alg):  # select_key guarantees it; re-checked because forgery lives here
        raise InvalidIdentityToken(f"the issuer's key cannot verify {token.alg}")
    model = JWSRegistry.algorithms[_JOSERFC_ALG.get(token.alg, token.alg)]
    try:
        model.check_key(key.key)  # joserfc's own key-type and curve binding, as a second lock
        valid = model.verify(token.signing_input, token.signature, key.key)
    except (JoseError, ValueError):
        valid = False
    if not valid:
        raise InvalidIdentityToken("token signature is invalid")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidIdentityToken(f"token claim {name} must be a number of seconds")
    return float(value)


def decode_claims(token: UnverifiedToken) -> dict[str, Any]:
    """The payload of a token whose signature was verified, as a JSON object."""
    return _json_object(token.payload, "payload")


def check_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    audiences: Iterable[str],
    now: float,
    leeway: float,
    required: Iterable[str] = (),
) -> str:
    """Check the registered claims of a verified token; return the audience it was accepted for.

    Raises :class:`ExpiredToken` past ``exp`` (plus leeway) and :class:`InvalidIdentityToken` for
    any other problem.
    """
    if claims.get("iss") != issuer:
        raise InvalidIdentityToken("token iss does not match the provider's issuer")
    audience = _match_audience(claims, list(audiences))
    exp = _number(claims, "exp")
    if exp is None:
        raise InvalidIdentityToken("token has no exp claim")
    if now >= exp + leeway:
        raise ExpiredToken("token is expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise InvalidIdentityToken("token is not valid yet (nbf is in the future)")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise InvalidIdentityToken("token was issued in the future (iat)")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidIdentityToken("token sub must be a non-empty string")
    for name in required:
        if name not in claims:
            # The token is authentic, but this provider's policy refuses what it claims.
            raise IDPRejectedClaim(f"token lacks the required claim {name}")
    return audience


def _match_audience(claims: Mapping[str, Any], audiences: list[str]) -> str:
    aud = claims.get("aud")
    if isinstance(aud, str):
        token_auds = [aud]
    elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        token_auds = aud
    elif aud is None:
        token_auds = []
    else:
        raise InvalidIdentityToken("token aud must be a string or a list of strings")
    for candidate in token_auds:
        if candidate in audiences:
            return candidate
    # Google-style tokens: aud may be another client, azp the one the caller authorised.
    azp = claims.get("azp")
    if isinstance(azp, str) and azp in audiences:
        return azp
    raise InvalidIdentityToken("token aud is not an audience this provider accepts")
