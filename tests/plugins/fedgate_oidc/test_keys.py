"""OIDC discovery and JWKS: lazy fetching, caching, rotation, rate-limited refetches, failures, sharing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fedgate_oidc import OIDCProvider, OIDCProviderSettings
from fedgate_oidc.public import PublicResolver, is_public_address, is_public_url
from gateway.errors import IDPCommunicationError, InvalidIdentityToken
from gateway.identity import ProviderContext
from gateway.store.base import Store
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore
from gateway.testing import OIDCTestIssuer

ACCOUNT = "123456789012"


class Clock:
    """A monotonic clock the test moves by hand (cache ages are never waited for)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Make = Callable[..., Awaitable[OIDCProvider]]


def json_app(document: Any) -> web.Application:
    """An app serving ``document`` at /jwks: a JWKS endpoint the issuer fixture cannot imitate."""

    async def handler(_: web.Request) -> web.Response:
        return web.json_response(document)

    app = web.Application()
    app.router.add_get("/jwks", handler)
    return app


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
async def make(idp: OIDCTestIssuer, clock: Clock) -> AsyncIterator[Make]:
    providers: list[OIDCProvider] = []

    async def build(*, store: Store | None = None, **overrides: Any) -> OIDCProvider:
        provider = OIDCProvider(
            OIDCProviderSettings.model_validate(idp.provider_config(**overrides)),
            ProviderContext(account_id=ACCOUNT, store=store or MemoryStore()),
            monotonic=clock,
        )
        await provider.start()
        providers.append(provider)
        return provider

    yield build
    for provider in providers:
        await provider.close()


async def test_keys_are_fetched_lazily_once_and_cached(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    assert idp.discovery_fetches == 0 and idp.jwks_fetches == 0
    for _ in range(3):
        await provider.authenticate(idp.mint())
    assert (idp.discovery_fetches, idp.jwks_fetches, provider.jwks_fetches) == (1, 1, 1)


async def test_concurrent_first_use_is_one_fetch(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    identities = await asyncio.gather(*(provider.authenticate(idp.mint()) for _ in range(20)))
    assert len(identities) == 20
    assert (idp.discovery_fetches, idp.jwks_fetches) == (1, 1)


async def test_expired_cache_is_refetched(idp: OIDCTestIssuer, make: Make, clock: Clock) -> None:
    provider = await make(jwks_cache_seconds=300)
    await provider.authenticate(idp.mint())
    clock.now += 299
    await provider.authenticate(idp.mint())
    assert idp.jwks_fetches == 1
    clock.now += 2
    await provider.authenticate(idp.mint())
    assert (idp.discovery_fetches, idp.jwks_fetches) == (2, 2)


async def test_key_rotation_is_picked_up_by_refetch(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(jwks_refetch_min_interval=0)
    await provider.authenticate(idp.mint())
    new_kid = idp.add_key("RSA")
    identity = await provider.authenticate(idp.mint(kid=new_kid))
    assert identity.subject == idp.subject
    assert idp.jwks_fetches == 2
    assert idp.discovery_fetches == 1  # the jwks_uri is still cached


async def test_unknown_kid_is_refused_after_one_refetch(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(jwks_refetch_min_interval=0)
    hidden = idp.add_key("RSA", publish=False)
    with pytest.raises(InvalidIdentityToken, match="kid"):
        await provider.authenticate(idp.mint(kid=hidden))
    assert idp.jwks_fetches == 2  # the first fetch, then exactly one refetch


async def test_unknown_kid_refetches_are_rate_limited(idp: OIDCTestIssuer, make: Make, clock: Clock) -> None:
    provider = await make(jwks_refetch_min_interval=60)
    await provider.authenticate(idp.mint())
    assert idp.jwks_fetches == 1
    bogus = [idp.mint(headers={"kid": f"made-up-{i}"}) for i in range(30)]

    async def flood() -> None:
        results = await asyncio.gather(*(provider.authenticate(t) for t in bogus), return_exceptions=True)
        assert all(isinstance(r, InvalidIdentityToken) for r in results)

    await flood()  # keys fetched less than the interval ago: no refetch at all
    assert idp.jwks_fetches == 1
    clock.now += 61
    await flood()  # thirty concurrent unknown kids: one refetch between them
    assert idp.jwks_fetches == 2
    clock.now += 30
    await flood()
    assert idp.jwks_fetches == 2
    clock.now += 31
    await flood()
    assert idp.jwks_fetches == 3


async def test_rotation_waits_for_the_refetch_interval(idp: OIDCTestIssuer, make: Make, clock: Clock) -> None:
    provider = await make(jwks_refetch_min_interval=60)
    await provider.authenticate(idp.mint())
    new_kid = idp.add_key("EC")
    token = idp.mint(alg="ES256", kid=new_kid)
    with pytest.raises(InvalidIdentityToken):
        await provider.authenticate(token)
    clock.now += 60
    assert (await provider.authenticate(token)).subject == idp.subject


async def test_configured_jwks_url_skips_discovery(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(jwks_url=idp.jwks_uri)
    await provider.authenticate(idp.mint())
    assert (idp.discovery_fetches, idp.jwks_fetches) == (0, 1)


# --- failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [503, 404, "garbage"])
async def test_jwks_endpoint_down(idp: OIDCTestIssuer, make: Make, mode: Any) -> None:
    provider = await make()
    idp.fail_jwks = mode
    with pytest.raises(IDPCommunicationError) as info:
        await provider.authenticate(idp.mint())
    assert idp.issuer not in info.value.message
    assert info.value.code == "IDPCommunicationError"
    idp.fail_jwks = None  # a cold cache retries at once when the issuer is back
    assert (await provider.authenticate(idp.mint())).subject == idp.subject


@pytest.mark.parametrize("mode", [500, "garbage"])
async def test_discovery_endpoint_down(idp: OIDCTestIssuer, make: Make, mode: Any) -> None:
    provider = await make()
    idp.fail_discovery = mode
    with pytest.raises(IDPCommunicationError):
        await provider.authenticate(idp.mint())
    assert idp.jwks_fetches == 0


async def test_hanging_issuer_times_out(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make(http_timeout=0.2)
    idp.fail_jwks = "hang"
    with pytest.raises(IDPCommunicationError, match="could not reach"):
        await provider.authenticate(idp.mint())


async def test_refused_connection(make: Make, idp: OIDCTestIssuer) -> None:
    provider = await make(jwks_url="http://127.0.0.1:9/jwks")  # discard port: nothing listens
    with pytest.raises(IDPCommunicationError):
        await provider.authenticate(idp.mint())


async def test_discovery_naming_another_issuer_is_refused(idp: OIDCTestIssuer, make: Make) -> None:
    provider = await make()
    idp.discovery_overrides = {"issuer": "https://evil.example"}
    with pytest.raises(IDPCommunicationError, match="different issuer"):
        await provider.authenticate(idp.mint())
    assert idp.jwks_fetches == 0


@pytest.mark.parametrize("jwks_uri", ["http://keys.example.com/jwks", "file:///etc/passwd", None, 42])
async def test_discovery_with_an_unusable_jwks_uri_is_refused(
    idp: OIDCTestIssuer, make: Make, jwks_uri: Any
) -> None:
    provider = await make()
    idp.discovery_overrides = {"jwks_uri": jwks_uri}
    with pytest.raises(IDPCommunicationError, match="jwks_uri"):
        await provider.authenticate(idp.mint())


@pytest.mark.parametrize("jwks", [{"keys": "nope"}, [], {"no": "keys"}])
async def test_jwks_that_is_not_a_key_set(idp: OIDCTestIssuer, make: Make, jwks: Any) -> None:
    async with TestServer(json_app(jwks), host="127.0.0.1") as server:
        provider = await make(jwks_url=str(server.make_url("/jwks")))
        with pytest.raises(IDPCommunicationError, match="key set"):
            await provider.authenticate(idp.mint())


@pytest.mark.parametrize("response", ["huge", "redirect", "gzip"])
async def test_hostile_jwks_responses(idp: OIDCTestIssuer, make: Make, response: str) -> None:
    huge = b'{"keys": [' + b'{"kty": "oct"},' * 100_000 + b'{"kty": "oct"}]}'

    async def handler(_: web.Request) -> web.StreamResponse:
        if response == "huge":
            return web.Response(body=huge, content_type="application/json")
        if response == "redirect":
            raise web.HTTPFound(idp.jwks_uri)
        return web.Response(body=b"\x1f\x8b...", headers={"Content-Encoding": "gzip"})

    app = web.Application()
    app.router.add_get("/jwks", handler)
    async with TestServer(app, host="127.0.0.1") as server:
        provider = await make(jwks_url=str(server.make_url("/jwks")))
        with pytest.raises(IDPCommunicationError):
            await provider.authenticate(idp.mint())
    assert idp.jwks_fetches == 0  # the redirect was not followed


async def test_unusable_keys_in_the_jwks_are_ignored(idp: OIDCTestIssuer, make: Make) -> None:
    weak = {"kty": "RSA", "kid": "weak", "n": "sXch", "e": "AQAB"}
    enc = {**idp.jwks()["keys"][1], "kid": "enc", "use": "enc"}
    oct_key = {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
    jwks = {"keys": [weak, enc, oct_key, "junk", *idp.jwks()["keys"]]}
    async with TestServer(json_app(jwks), host="127.0.0.1") as server:
        provider = await make(jwks_url=str(server.make_url("/jwks")), jwks_refetch_min_interval=60)
        assert (await provider.authenticate(idp.mint())).subject == idp.subject
        with pytest.raises(InvalidIdentityToken):  # same key material as ec-1, but published for encryption
            await provider.authenticate(idp.mint(alg="ES256", kid="enc", signing_key=idp.private_key("ec-1")))


async def test_jwk_alg_must_agree_with_the_token(idp: OIDCTestIssuer, make: Make) -> None:
    pinned = {**idp.jwks()["keys"][0], "alg": "PS256"}
    async with TestServer(json_app({"keys": [pinned]}), host="127.0.0.1") as server:
        provider = await make(jwks_url=str(server.make_url("/jwks")), algorithms=["RS256", "PS256"])
        with pytest.raises(InvalidIdentityToken, match="cannot verify RS256"):
            await provider.authenticate(idp.mint(alg="RS256"))
        assert (await provider.authenticate(idp.mint(alg="PS256"))).subject == idp.subject


# --- sharing through the store ---------------------------------------------------------------------


async def test_replicas_share_the_jwks_through_the_memory_store(idp: OIDCTestIssuer, make: Make) -> None:
    store = MemoryStore()
    first = await make(store=store, share_jwks=True)
    second = await make(store=store, share_jwks=True)
    await first.authenticate(idp.mint())
    await second.authenticate(idp.mint(alg="ES256"))
    assert idp.jwks_fetches == 1
    assert (first.jwks_fetches, second.jwks_fetches) == (1, 0)


async def test_sharing_is_off_by_default(idp: OIDCTestIssuer, make: Make) -> None:
    store = MemoryStore()
    for _ in range(2):
        await (await make(store=store)).authenticate(idp.mint())
    assert idp.jwks_fetches == 2


async def test_replicas_share_the_jwks_through_redis(
    idp: OIDCTestIssuer, make: Make, redis_url: str, redis_prefix: str
) -> None:
    stores = [RedisStore.from_url(redis_url, prefix=redis_prefix) for _ in range(2)]
    try:
        first = await make(store=stores[0], share_jwks=True, jwks_refetch_min_interval=0)
        second = await make(store=stores[1], share_jwks=True, jwks_refetch_min_interval=0)
        await first.authenticate(idp.mint())
        await second.authenticate(idp.mint())
        assert idp.jwks_fetches == 1
        # A rotation seen by the first replica reaches the second through the store, not the network.
        new_kid = idp.add_key("RSA")
        await first.authenticate(idp.mint(kid=new_kid))
        await second.authenticate(idp.mint(kid=new_kid))
        assert idp.jwks_fetches == 2
    finally:
        for store in stores:
            await store.close()


async def test_public_network_only_never_asks_a_loopback_issuer(idp: OIDCTestIssuer, make: Make) -> None:
    """How a provider created through the IAM API is built: its URL is an IAM user's choice, so
    fedgate must not be made to send requests into its own network (SSRF)."""
    provider = await make(public_network_only=True)
    with pytest.raises(IDPCommunicationError, match="could not reach"):
        await provider.authenticate(idp.mint())
    assert (idp.discovery_fetches, idp.jwks_fetches) == (0, 0)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # shared address space
        ("169.254.169.254", False),  # cloud metadata
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("not an address", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


async def test_the_public_resolver_refuses_a_name_with_any_private_address() -> None:
    resolver = PublicResolver()
    try:
        with pytest.raises(OSError, match="public addresses only"):
            await resolver.resolve("localhost", 443)
    finally:
        await resolver.close()
    assert not is_public_url("https://localhost/x") and not is_public_url("https://a.localhost/x")
    assert not is_public_url("https://[::1]:8443/x") and not is_public_url("https://169.254.169.254/")
    assert is_public_url("https://token.actions.githubusercontent.com") and is_public_url("https://8.8.8.8/")
