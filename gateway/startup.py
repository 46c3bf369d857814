"""Start-up wiring: from a configuration file to the running services, in the order they are built.

Two steps, both here and nowhere else (the command line imports this module only for the commands
that need it, so ``fedgate credential-process`` stays quick to start):

1. :func:`load` reads the YAML file, builds the :class:`~gateway.plugin_host.PluginHost` it names
   (minus ``disabled_plugins`` and ``$FEDGATE_DISABLE_PLUGINS``) and validates the file with the
   plugins' models. The configuration module itself knows nothing of plugins being loaded.
2. :func:`service_contexts` are the application's cleanup contexts, set up in order and unwound in
   reverse: the metrics (which the later ones report to), tracing, the store (and the replay guard over
   it), the key ring and the IAM database (migrated,
   revocations loaded, watched for changes), the credential service, the identity providers, the
   IAM catalog (the YAML's entities and the database's, followed as the database changes) with
   the long-term access keys, the STS service with the audit sink, the OIDC providers created
   through the IAM API (followed likewise), then the reverse proxy (its upstream table and one
   pooled client session per upstream). :func:`gateway.app.create_app`
   installs them before any plugin's.

Each context publishes what it builds under an app key (:mod:`gateway.keys`); a plugin's own
cleanup context runs after all of them (see ``fedgate_add_routes``).

Between the two, :func:`preflight` checks what start-up would otherwise find only inside each
worker: every secret reference resolves, the key ring's keys are long enough, the identity signing
key is a key. ``fedgate serve`` runs it before it binds or forks, and ``fedgate check-config`` runs
the very same function, so a configuration check-config accepts does not fail to start.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from pydantic import BaseModel

from gateway import keys
from gateway.audit import Auditor, JsonLinesSink, StoreSink
from gateway.config import GatewayConfig, SecretRef, parse_config, read_yaml
from gateway.credentials import CredentialService, KeyRing
from gateway.db import start_database, target_for
from gateway.errors import ConfigError, ServiceError
from gateway.iam.accesskeys import AccessKeys
from gateway.iam.denial import AuthorizationMessages
from gateway.iam.federation import ApiProviders
from gateway.iam.mfa import MfaCodes
from gateway.iam.records import records_from_config
from gateway.iam.sync import CatalogFeed
from gateway.identity import IdentityProvider, ProviderContext
from gateway.metrics import instrument_engine
from gateway.plugin_host import PluginHost, disabled_from_env
from gateway.proxy.client import UpstreamClient
from gateway.proxy.runtime import ProxyRuntime
from gateway.proxy.upstream import UpstreamTable
from gateway.requires import require
from gateway.sigv4 import SigningKeyCache
from gateway.store import ReplayGuard, Store, open_store
from gateway.sts.mfa import CallerMfa
from gateway.sts.service import StsService
from gateway.tracing import Tracing
from gateway.web.metrics import metrics_ctx

if TYPE_CHECKING:
    from gateway.proxy.identity import IdentitySigner

__all__ = [
    "ServiceContext",
    "load",
    "load_config",
    "preflight",
    "provider_context",
    "required_libraries",
    "secret_refs",
    "service_contexts",
]

log = logging.getLogger(__name__)
ServiceContext = Callable[[web.Application], AsyncIterator[None]]


def load(path: str | Path) -> tuple[GatewayConfig, PluginHost]:
    """Load ``path`` and return the config with the :class:`PluginHost` that validated it.

    The host blocks the file's ``disabled_plugins`` and ``$FEDGATE_DISABLE_PLUGINS`` (a blocked
    plugin is never registered, so none of its hooks run).
    """
    raw = read_yaml(Path(path))
    disabled = raw.get("disabled_plugins", [])
    if not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
        raise ConfigError("disabled_plugins: must be a list of plugin names")
    host = PluginHost(disabled=[*disabled, *disabled_from_env()])
    config = parse_config(
        raw,
        provider_types=host.provider_types(),
        sections=host.config_sections(),
        config_dir=Path(path).resolve().parent,
    )
    return config, host


def load_config(path: str | Path) -> GatewayConfig:
    """Load and validate the YAML file at ``path`` with the plugins it does not disable."""
    return load(path)[0]


def preflight(config: GatewayConfig) -> None:
    """Check what start-up needs beyond a valid file; raise :class:`ConfigError` listing every problem.

    Every ``{env: ...}`` and ``{file: ...}`` reference resolves (plugins' sections included), the
    key ring builds (each key at least 32 bytes), ``proxy.identity_signing_key`` is a private key,
    and the libraries the configured features need import (:func:`required_libraries`; this is
    where a server imports them, before it binds or forks). Secrets are read and dropped; none is
    kept or printed.
    """
    problems = []
    for module, feature, package in required_libraries(config):
        try:
            require(module, feature=feature, package=package)
        except ConfigError as exc:
            problems.append(str(exc))
    for where, ref in secret_refs(config):
        try:
            ref.resolve()
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    if not problems:
        if config.keyring is not None:
            try:
                KeyRing.from_settings(config.keyring)
            except ConfigError as exc:
                problems.append(str(exc))
        key = config.proxy.identity_signing_key
        if key is not None and any(u.auth == "identity" for u in config.upstreams):
            signer_type = _identity_signer()
            try:
                signer_type.from_pem(key.resolve().get_secret_value(), issuer="check", ttl=60)
            except ConfigError as exc:
                problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))


def required_libraries(config: GatewayConfig) -> Iterator[tuple[str, str, str]]:
    """The optional libraries ``config``'s core features import: (module, feature, package) each.

    Only these are imported for them (a server on the memory store never loads redis-py); an
    identity provider's own are imported by the plugin that builds it, also at start-up.
    """
    if config.store.backend == "redis":
        yield "redis.asyncio", "store.backend: redis", "redis"
    try:
        backend = target_for(config.database).backend
    except ConfigError:
        backend = None  # reported by the database's own start-up, with the key that is wrong
    if backend == "postgresql":
        yield "asyncpg", "database.url: postgresql", "asyncpg"
    elif backend == "sqlite":
        yield "aiosqlite", "database.url: sqlite", "aiosqlite"
    if any(u.auth == "identity" for u in config.upstreams):
        yield "joserfc", "upstreams: auth identity", "joserfc"


def _identity_signer() -> type[IdentitySigner]:
    """The identity signer's class, imported (with joserfc) when an upstream has ``auth: identity``."""
    require("joserfc", feature="upstreams: auth identity", package="joserfc")
    from gateway.proxy.identity import IdentitySigner

    return IdentitySigner


def secret_refs(config: GatewayConfig) -> Iterator[tuple[str, SecretRef]]:
    """Every secret reference in ``config`` with its key path (``keyring.keys[0].secret``)."""
    for name in type(config).model_fields:
        value = getattr(config, name)
        if name == "sections":
            for key, section in value.items():
                yield from _refs_in(section, key)
        else:
            yield from _refs_in(value, name)


def _refs_in(value: Any, where: str) -> Iterator[tuple[str, SecretRef]]:
    if isinstance(value, SecretRef):
        yield where, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _refs_in(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _refs_in(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _refs_in(item, f"{where}.{key}")


def service_contexts(clock: Callable[[], float], *, store: Store | None = None) -> list[ServiceContext]:
    """The core's cleanup contexts, in the order they must run; ``clock`` gives epoch seconds.

    ``store`` replaces the store the configuration describes (a custom backend, or a test's); it is
    closed at shutdown like the configured one.
    """
    return [
        metrics_ctx,
        _tracing_ctx,
        _make_store_ctx(store),
        _database_ctx,
        _credentials_ctx,
        _providers_ctx,
        _catalog_ctx,
        _make_sts_ctx(clock),
        _api_providers_ctx,
        _make_proxy_ctx(clock),
    ]


async def _tracing_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.CONFIG].tracing
    if not settings.enabled:
        yield
        return
    tracing = app[keys.TRACING] = Tracing.from_settings(settings)
    try:
        yield
    finally:
        await asyncio.to_thread(tracing.shutdown)  # flushes what is batched


def _make_store_ctx(given: Store | None) -> ServiceContext:
    async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
        store = given if given is not None else open_store(app[keys.CONFIG].store)
        app[keys.STORE] = store
        metrics = app.get(keys.METRICS)
        if metrics is not None and hasattr(store, "observer"):  # a RedisStore (imported only for redis)
            store.observer = metrics.store_operation
        replay = app[keys.REPLAY] = ReplayGuard(store)
        try:
            # Learn (or start) the store's generation now, so items issued from the first request
            # on are issued inside it. A store that is down is no reason not to start: /readyz
            # says so, and the first spend asks again.
            await replay.current()
        except ServiceError as exc:
            log.warning("the store is not reachable at start-up", extra={"store_error": exc.code})
        try:
            yield
        finally:
            await store.close()

    return _store_ctx


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    keyring = KeyRing.from_settings(config.keyring)
    app[keys.KEYRING] = keyring
    # A random per-process key must never re-seal what a configured key sealed: it dies with us.
    metrics = app.get(keys.METRICS)
    runtime = await start_database(
        config.database,
        account_id=config.account_id,
        keyring=keyring,
        reseal=config.keyring is not None,
        instrument=(
            (lambda db: instrument_engine(metrics, db.engine.sync_engine, db.target.backend))
            if metrics is not None
            else None
        ),
    )
    app[keys.DATABASE] = runtime
    try:
        yield
    finally:
        await runtime.close()


async def _credentials_ctx(app: web.Application) -> AsyncIterator[None]:
    app[keys.CREDENTIALS] = CredentialService(app[keys.KEYRING], app[keys.DATABASE].revocations)
    app[keys.AUTHORIZATION_MESSAGES] = AuthorizationMessages(app[keys.KEYRING])
    app[keys.MFA] = MfaCodes(app[keys.STORE], app[keys.REPLAY], app[keys.DATABASE].database.open_mfa_seed)
    app[keys.SIGNING_KEYS] = SigningKeyCache()
    yield


def provider_context(app: web.Application) -> ProviderContext:
    """What the application's identity providers are built with (at start-up, and on reload)."""
    config = app[keys.CONFIG]
    metrics = app.get(keys.METRICS)
    return ProviderContext(
        account_id=config.account_id,
        store=app[keys.STORE],
        leeway=float(config.clock_skew_seconds),
        replay=app[keys.REPLAY],
        **({"report_refresh": metrics.provider_refreshed} if metrics is not None else {}),
    )


async def _providers_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    host = app[keys.PLUGINS]
    context = provider_context(app)
    providers: list[IdentityProvider] = []
    app[keys.PROVIDERS] = providers
    try:
        for settings in config.providers:
            provider = host.create_identity_provider(settings, context)
            await provider.start()
            providers.append(provider)
        yield
    finally:
        for provider in reversed(providers):
            await provider.close()


async def _catalog_ctx(app: web.Application) -> AsyncIterator[None]:
    # The YAML plus the database, rebuilt and swapped whenever the database's revision moves;
    # every decision reads the snapshot current when it starts.
    database = app[keys.DATABASE]
    feed = CatalogFeed(records_from_config(app[keys.CONFIG]), database.database)
    catalog = app[keys.CATALOG] = await feed.start(database.watcher)
    app[keys.CATALOG_FEED] = feed  # what a reload gives the YAML's new records to
    usage = database.key_usage
    app[keys.ACCESS_KEYS] = AccessKeys(
        catalog,
        app[keys.KEYRING],
        record_use=lambda key, service, region: usage.note(key, service=service, region=region),
    )
    yield


def _make_sts_ctx(clock: Callable[[], float]) -> ServiceContext:
    async def _sts_ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[keys.CONFIG]
        host = app[keys.PLUGINS]
        sink: JsonLinesSink | StoreSink
        if config.audit.sink == "store":
            sink = StoreSink(app[keys.STORE], config.audit)
            sink.start()
        else:
            sink = JsonLinesSink(config.audit)
        if config.audit.sink != "none":
            host.register(sink)
            app[keys.AUDIT_SINK] = sink
        app[keys.AUDITOR] = Auditor(
            host, account_id=config.account_id, region=config.region, metrics=app.get(keys.METRICS)
        )
        providers = app[keys.PROVIDERS]
        app[keys.STS] = StsService(
            app[keys.CATALOG],
            providers,
            app[keys.CREDENTIALS],
            clock=clock,
            messages=app[keys.AUTHORIZATION_MESSAGES],
            region=config.region,
            verify_mfa=CallerMfa(app[keys.DATABASE].database, app[keys.MFA]).verify,
        )
        try:
            yield
        finally:
            host.unregister(sink)
            if isinstance(sink, StoreSink):
                await sink.close()
            else:
                sink.close()

    return _sts_ctx


async def _api_providers_ctx(app: web.Application) -> AsyncIterator[None]:
    # The OIDC providers created through the IAM API, routed to by STS and kept current.
    database = app[keys.DATABASE]
    providers = ApiProviders(
        app[keys.PLUGINS], provider_context(app), database.database, app[keys.STS].use_api_providers
    )
    await providers.start(database.watcher)
    try:
        yield
    finally:
        await providers.close()


def _make_proxy_ctx(clock: Callable[[], float]) -> ServiceContext:
    async def _proxy_ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[keys.CONFIG]
        if not config.upstreams:
            yield
            return
        settings = config.proxy
        signer: IdentitySigner | None = None
        if any(u.auth == "identity" for u in config.upstreams):
            signer_type = _identity_signer()
            ttl = settings.identity_ttl_seconds
            if settings.identity_signing_key is not None:
                try:
                    pem = settings.identity_signing_key.resolve().get_secret_value()
                except ValueError as exc:
                    raise ConfigError(f"proxy.identity_signing_key: {exc}") from None
                signer = signer_type.from_pem(pem, issuer=settings.identity_issuer, ttl=ttl)
            else:
                signer = signer_type.generate(issuer=settings.identity_issuer, ttl=ttl)
        runtime = ProxyRuntime(
            table=UpstreamTable(config.upstreams, region=config.region, account=config.account_id),
            credentials=app[keys.CREDENTIALS],
            catalog=app[keys.CATALOG],
            access_keys=app[keys.ACCESS_KEYS],
            messages=app[keys.AUTHORIZATION_MESSAGES],
            verify_keys=app[keys.SIGNING_KEYS],
            clock=clock,
            signer=signer,
            metrics=app.get(keys.METRICS),
        )
        try:
            for upstream in runtime.table.upstreams:
                u = upstream.settings
                target = urlsplit(u.target)
                https = target.scheme == "https"
                runtime.clients[upstream.name] = UpstreamClient(
                    target.hostname or "",
                    target.port or (443 if https else 80),
                    ssl_context=ssl.create_default_context() if https else None,
                    limit=u.max_connections,
                    connect_timeout=u.connect_timeout,
                    read_timeout=u.read_timeout,
                )
                if u.websocket:  # WebSocket upgrades go through aiohttp's client, which speaks it
                    runtime.websockets[upstream.name] = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(
                            limit=u.max_connections, limit_per_host=u.max_connections
                        ),
                        timeout=aiohttp.ClientTimeout(
                            total=None, connect=u.connect_timeout, sock_read=u.read_timeout
                        ),
                        auto_decompress=False,
                        cookie_jar=aiohttp.DummyCookieJar(),
                    )
            app[keys.PROXY] = runtime
            yield
        finally:
            for client in runtime.clients.values():
                await client.close()
            for session in runtime.websockets.values():
                await session.close()

    return _proxy_ctx
