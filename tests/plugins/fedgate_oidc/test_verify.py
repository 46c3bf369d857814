"""OIDC token verification against a real issuer over HTTP: what is accepted, and every attack refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import string
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import RSAKey

from fedgate_oidc import OIDCProvider, OIDCProviderSettings
from fedgate_oidc.token import _b64decode as token_b64decode
from fedgate_oidc.token import parse_token
from gateway.errors import (
    ExpiredToken,
    IDPCommunicationError,
    IDPRejectedClaim,
    InvalidIdentityToken,
    ServiceError,
)
from gateway.identity import Identity, IdentityProvider, ProviderContext
from gateway.store.memory import MemoryStore
from gateway.testing import OIDCTestIssuer, compact_jws

ACCOUNT = "123456789012"
Make = Callable[..., Awaitable[OIDCProvider]]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture()
async def make(idp: OIDCTestIssuer) -> AsyncIterator[Make]:
    """Build started providers trusting ``idp``; keyword arguments override its settings."""
    providers: list[OIDCProvider] = []

    async def build(**overrides: Any) -> OIDCProvider:
        config = idp.provider_config(**overrides)
        provider = OIDCProvider(
            OIDCProviderSettings.model_validate(config),
            ProviderContext(account_id=ACCOUNT, store=MemoryStore()),
        )
        await provider.start()
        providers.append(provider)
        return provider

    yield build
    for provider in providers:
        await provider.close()


async def reject(provider: OIDCProvider, token: str, error: type[ServiceError] = InvalidIdentityToken) -> str:
    """Assert ``token`` is refused with exactly ``error``; return the message (checked not to leak)."""
    with pytest.raises(ServiceError) as info:
        await provider.authenticate(token)
    assert type(info.value) is error, repr(info.value)
    for part in token.split("."):
        if len(part) > 8:
            assert part not in info.value.message
    return info.value.message


# --- accepted tokens -------------------------------------------------------------------------------


async def test_valid_rs256_token_yields_the_identity(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    assert isinstance(provider, IdentityProvider)
    token = idp.mint(sub="system:serviceaccount:prod:app", groups=["a", "b"], admin=False, level=3)
    identity = await provider.authenticate(token)
    host = idp.issuer.removeprefix("http://")
    assert isinstance(identity, Identity)
    assert identity.kind == "oidc" == provider.kind
    assert identity.provider_arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}" == provider.arn
    assert identity.provider_id == host
    assert identity.subject == "system:serviceaccount:prod:app"
    assert identity.audience == idp.audience
    assert identity.issuer == idp.issuer
    assert identity.claims["groups"] == ["a", "b"]
    keys = identity.condition_keys
    assert keys[f"{host}:sub"] == "system:serviceaccount:prod:app"
    assert keys[f"{host}:aud"] == idp.audience
    assert keys[f"{host}:groups"] == ["a", "b"]
    assert keys[f"{host}:admin"] == "false"
    assert keys[f"{host}:level"] == "3"
    assert identity.expires_at == identity.claims["exp"]
    assert identity.issued_at == identity.claims["iat"]
    assert identity.session_tags == {}


async def test_valid_es256_token(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    identity = await provider.authenticate(idp.mint(alg="ES256"))
    assert identity.subject == idp.subject


@pytest.mark.parametrize("alg", ["PS256", "RS512", "EdDSA"])
async def test_other_allowed_algorithms(idp: OIDCTestIssuer, make: Make, alg: str) -> None:
    if alg == "EdDSA":
        idp.add_key("OKP", kid="ed-1")
    provider = await make(algorithms=[alg])
    identity = await provider.authenticate(idp.mint(alg=alg))
    assert identity.subject == idp.subject


async def test_issuer_with_a_path_names_host_and_path() -> None:
    async with OIDCTestIssuer(path="/realms/test") as idp:
        provider = OIDCProvider(
            OIDCProviderSettings.model_validate(idp.provider_config()),
            ProviderContext(account_id=ACCOUNT, store=MemoryStore()),
        )
        await provider.start()
        try:
            identity = await provider.authenticate(idp.mint())
        finally:
            await provider.close()
    assert identity.provider_id.endswith("/realms/test")
    assert identity.provider_arn.endswith(f":oidc-provider/{identity.provider_id}")
    assert f"{identity.provider_id}:sub" in identity.condition_keys


async def test_aud_list_records_the_matching_audience(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(audiences=["other", idp.audience])
    identity = await provider.authenticate(idp.mint(aud=["unrelated", idp.audience]))
    assert identity.audience == idp.audience
    assert identity.condition_keys[f"{identity.provider_id}:aud"] == idp.audience


async def test_azp_fallback_is_accepted_google_style(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(audiences=["my-client.apps.example"])
    identity = await provider.authenticate(idp.mint(aud="another-client", azp="my-client.apps.example"))
    assert identity.audience == "my-client.apps.example"


async def test_token_without_kid_uses_the_only_fitting_key(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    identity = await provider.authenticate(idp.mint(alg="ES256", kid=None))
    assert identity.subject == idp.subject


async def test_token_without_kid_is_refused_when_keys_are_ambiguous(idp: OIDCTestIssuer, make: Make) -> None:
    idp.add_key("RSA", kid="rsa-2")
    provider = await make()
    assert "several keys" in await reject(provider, idp.mint(alg="RS256", kid=None))


async def test_expired_within_leeway_is_accepted(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()  # the context's default leeway is 60 s
    now = int(time.time())
    identity = await provider.authenticate(idp.mint(exp=now - 20, nbf=now + 20, iat=now + 20))
    assert identity.expires_at == now - 20


async def test_amr_is_always_a_list_and_case_variants_do_not_override(
    idp: OIDCTestIssuer, make: Make
) -> None:
    provider = await make()
    identity = await provider.authenticate(idp.mint({"amr": "mfa", "SUB": "impostor", "nested": {"a": 1}}))
    keys = identity.condition_keys
    assert keys[f"{identity.provider_id}:amr"] == ["mfa"]
    assert keys[f"{identity.provider_id}:sub"] == idp.subject
    assert f"{identity.provider_id}:nested" not in keys
    assert "nested" not in identity.claims


# --- signatures, algorithms, keys ------------------------------------------------------------------


async def test_forged_signature_is_refused(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    attacker = RSAKey.generate_key(2048, private=True)
    assert "signature" in await reject(provider, idp.mint(kid="rsa-1", signing_key=attacker))


async def test_tampered_payload_is_refused(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    head, _, sig = idp.mint().split(".")
    claims = idp.default_claims() | {"sub": "admin"}
    assert "signature" in await reject(provider, f"{head}.{b64(json.dumps(claims).encode())}.{sig}")


async def test_alg_none_is_refused_before_any_fetch(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    for alg in ("none", "None", "NONE"):
        await reject(provider, idp.mint(alg=alg, kid="rsa-1"))
    assert idp.jwks_fetches == 0 and idp.discovery_fetches == 0


async def test_hs256_signed_with_the_rsa_public_key_is_refused(idp: OIDCTestIssuer, make: Make) -> None:
    # The classic algorithm confusion: an HMAC keyed with the public key bytes a verifier already has.
    provider = await make()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = b64(json.dumps(idp.default_claims()).encode())
    mac = hmac.new(idp.public_pem("rsa-1"), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert "asymmetric" in await reject(provider, f"{header}.{payload}.{b64(mac)}")


async def test_alg_outside_the_allowlist_is_refused(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(algorithms=["RS256"])
    assert "does not allow" in await reject(provider, idp.mint(alg="ES256"))


async def test_es256_header_with_the_rsa_kid_is_refused(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    ec_key = idp.private_key("ec-1")
    token = idp.mint(alg="ES256", kid="rsa-1", signing_key=ec_key)
    assert "cannot verify ES256" in await reject(provider, token)


async def test_rs256_header_with_the_ec_kid_is_refused(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    token = idp.mint(alg="RS256", kid="ec-1", signing_key=idp.private_key("rsa-1"))
    assert "cannot verify RS256" in await reject(provider, token)


async def test_es384_header_with_a_p256_key_is_refused(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(algorithms=["ES256", "ES384"])
    header = b64(json.dumps({"alg": "ES384", "kid": "ec-1"}).encode())
    token = f"{header}.{b64(json.dumps(idp.default_claims()).encode())}.{b64(b'x' * 96)}"
    assert "cannot verify ES384" in await reject(provider, token)


async def test_jwe_bomb_is_refused_without_decompressing(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(max_token_bytes=1_000_000)
    bomb = zlib.compress(b"\0" * 20_000_000, 9)  # ~20 KB that would inflate to 20 MB
    header = b64(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM", "zip": "DEF", "kid": "rsa-1"}).encode())
    token = ".".join([header, b64(b"k" * 256), b64(b"i" * 12), b64(bomb), b64(b"t" * 16)])
    assert "JWE" in await reject(provider, token)
    assert idp.jwks_fetches == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"jku": "https://attacker.example/jwks"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
        {"crit": ["exp"], "exp": 1},
        {"b64": False},
        {"zip": "DEF"},
    ],
    ids=["jku", "x5u", "jwk", "crit", "b64", "zip"],
)
async def test_header_tricks_are_refused(idp: OIDCTestIssuer, make: Make, headers: dict[str, Any]) -> None:
    provider = await make()
    await reject(provider, idp.mint(headers=headers))
    assert idp.jwks_fetches == 0


# --- claims ----------------------------------------------------------------------------------------


async def test_expired_token(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    now = int(time.time())
    with pytest.raises(ExpiredToken) as info:
        await provider.authenticate(idp.mint(iat=now - 7200, nbf=now - 7200, exp=now - 3600))
    assert info.value.code == "ExpiredTokenException"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        # Named, not shown: a time in the test's ID would differ between the xdist workers' collections.
        pytest.param({"nbf": int(time.time()) + 3600}, "nbf", id="nbf-in-an-hour"),
        pytest.param({"iat": int(time.time()) + 3600}, "iat", id="iat-in-an-hour"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"aud": "someone-else"}, "aud"),
        ({"aud": None}, "aud"),
        ({"aud": [1, 2]}, "aud"),
        ({"aud": "someone-else", "azp": "also-not-ours"}, "aud"),
        ({"sub": None}, "sub"),
        ({"sub": ""}, "sub"),
        ({"sub": 42}, "sub"),
        ({"exp": None}, "exp"),
        ({"exp": "tomorrow"}, "exp"),
        ({"exp": True}, "exp"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else v,
)
async def test_bad_claims_are_refused(
    idp: OIDCTestIssuer, make: Make, overrides: dict[str, Any], fragment: str
) -> None:
    provider = await make()
    assert fragment in await reject(provider, idp.mint(overrides))


async def test_wrong_issuer_with_trailing_slash_is_refused(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    assert "iss" in await reject(provider, idp.mint(iss=idp.issuer + "/"))


async def test_required_claims(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(require_claims=["repository_owner"])
    assert "repository_owner" in await reject(provider, idp.mint(), IDPRejectedClaim)
    identity = await provider.authenticate(idp.mint(repository_owner="acme"))
    assert identity.claims["repository_owner"] == "acme"


# --- malformed -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.eyJ9.c2ln",
        "eyJhbGciOiJSUzI1NiJ9..c2ln",
        b64(b"not json") + ".eyJ9.c2ln",
        b64(b"[1,2]") + ".eyJ9.c2ln",
        b64(b'{"alg":"RS256","alg":"none"}') + ".eyJ9.c2ln",
        b64(b'{"alg":"RS256","kid":7}') + ".eyJ9.c2ln",
        b64(b'{"kid":"rsa-1"}') + ".eyJ9.c2ln",
        "eyJhbGciOiJSUzI1NiJ9.eyJ9.c2ln\u00e9",
    ],
    ids=[
        "empty",
        "one-part",
        "two-parts",
        "four-parts",
        "bad-base64",
        "empty-payload",
        "header-not-json",
        "header-not-object",
        "duplicate-alg",
        "kid-not-string",
        "no-alg",
        "non-ascii",
    ],
)
async def test_malformed_tokens_are_refused(idp: OIDCTestIssuer, make: Make, token: str) -> None:
    provider = await make()
    await reject(provider, token)
    assert idp.jwks_fetches == 0


async def test_payload_that_is_not_json_is_refused_after_the_signature(
    idp: OIDCTestIssuer, make: Make
) -> None:
    provider = await make()
    key = idp.private_key("rsa-1")
    from joserfc.jws import JWSRegistry

    unsigned = compact_jws({"alg": "RS256", "kid": "rsa-1"}, b"not json")[:-1]
    signature = JWSRegistry.algorithms["RS256"].sign(unsigned.encode(), key)
    assert "payload" in await reject(provider, f"{unsigned}.{b64(signature)}")


async def test_deeply_nested_json_is_refused_not_a_500(idp: OIDCTestIssuer, make: Make) -> None:
    """Nesting past the interpreter's recursion limit, in the unauthenticated header and in a
    signed payload: InvalidIdentityToken either way, never a RecursionError."""
    provider = await make()
    deep = b"[" * 2000 + b"]" * 2000
    header = b'{"alg":"RS256","kid":"rsa-1","x":' + deep + b"}"
    assert "header" in await reject(provider, f"{b64(header)}.eyJ9.c2ln")
    assert idp.jwks_fetches == 0
    from joserfc.jws import JWSRegistry

    unsigned = compact_jws({"alg": "RS256", "kid": "rsa-1"}, b'{"x":' + deep + b"}")[:-1]
    signature = JWSRegistry.algorithms["RS256"].sign(unsigned.encode(), idp.private_key("rsa-1"))
    assert "payload" in await reject(provider, f"{unsigned}.{b64(signature)}")


async def test_oversized_token_is_refused_unread(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(max_token_bytes=4096)
    message = await reject(provider, idp.mint(padding="x" * 5000))
    assert "larger than 4096" in message
    assert idp.jwks_fetches == 0


# --- session tags ----------------------------------------------------------------------------------

TAGS = "https://aws.amazon.com/tags"


async def test_session_tags_from_the_aws_claim(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    claim = {"principal_tags": {"team": ["blue"], "cost-center": ["42"]}, "transitive_tag_keys": ["team"]}
    identity = await provider.authenticate(idp.mint({TAGS: claim}))
    assert identity.session_tags == {"team": "blue", "cost-center": "42"}
    assert identity.transitive_tag_keys == ("team",)


@pytest.mark.parametrize(
    "claim",
    [
        {"principal_tags": {f"k{i}": ["v"] for i in range(51)}},
        {"principal_tags": {"k" * 129: ["v"]}},
        {"principal_tags": {"": ["v"]}},
        {"principal_tags": {"k": ["v" * 257]}},
        {"principal_tags": {"k": "v"}},
        {"principal_tags": {"k": ["a", "b"]}},
        {"principal_tags": {"k": []}},
        {"principal_tags": {"k": [1]}},
        {"principal_tags": {"Team": ["a"], "team": ["b"]}},
        {"principal_tags": {"k": ["v"]}, "transitive_tag_keys": ["other"]},
        {"principal_tags": {"k": ["v"]}, "transitive_tag_keys": "k"},
        {"principal_tags": ["k"]},
        {"principal_tags": {"k": ["v"]}, "surprise": 1},
        "k=v",
    ],
    ids=[
        "51-tags",
        "long-key",
        "empty-key",
        "long-value",
        "value-not-list",
        "two-values",
        "no-value",
        "value-not-string",
        "duplicate-key",
        "transitive-unknown",
        "transitive-not-list",
        "tags-not-object",
        "extra-member",
        "claim-not-object",
    ],
)
async def test_session_tag_limits(idp: OIDCTestIssuer, make: Make, claim: Any) -> None:
    provider = await make()
    assert "tags" in await reject(provider, idp.mint({TAGS: claim}))


async def test_fifty_tags_at_the_limits_are_accepted(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(max_token_bytes=65536)
    tags = {f"{i:02d}" + "k" * 126: ["v" * 256] for i in range(50)}
    identity = await provider.authenticate(idp.mint({TAGS: {"principal_tags": tags}}))
    assert len(identity.session_tags) == 50


async def test_unreachable_issuer_is_a_communication_error(make: Make, idp: OIDCTestIssuer) -> None:
    provider = await make()
    idp.fail_discovery = 500
    await reject(provider, idp.mint(), IDPCommunicationError)


# --- fuzz ------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.lists(st.text(alphabet="ABCDEFabcdef0123456789-_=+/!.", max_size=60), max_size=6).map(".".join),
        st.dictionaries(
            st.text(max_size=8), st.none() | st.booleans() | st.integers() | st.text(max_size=8)
        ).map(lambda header: compact_jws(header, b"{}", b"sig")),
    )
)
def test_parse_token_only_ever_raises_invalid_identity_token(token: str) -> None:
    try:
        parsed = parse_token(token, max_bytes=16384, algorithms=["RS256", "ES256"])
    except InvalidIdentityToken:
        return
    assert parsed.alg in ("RS256", "ES256")
    assert not {"jku", "x5u", "jwk", "crit", "enc", "zip"} & set(parsed.header)


def _reference_b64decode(part: str) -> bytes | None:
    """What a token part decodes to, the slow and obvious way: canonical base64url or nothing."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", part) or len(part) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == part else None


@settings(max_examples=1000)
@given(
    st.one_of(
        st.text(alphabet=string.ascii_letters + string.digits + "-_", max_size=40),
        st.text(alphabet=string.ascii_letters + "-_+/= \n\x00é", max_size=12),
        st.binary(max_size=30).map(lambda raw: b64(raw)),
        st.text(max_size=12),  # anything at all: padding, the standard alphabet, non-ASCII
    )
)
def test_token_parts_decode_exactly_the_canonical_base64url(part: str) -> None:
    expected = _reference_b64decode(part)
    try:
        decoded: bytes | None = token_b64decode(part)
    except InvalidIdentityToken:
        decoded = None
    assert decoded == expected
