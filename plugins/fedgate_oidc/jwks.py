"""Fetching and caching an issuer's signing keys: OIDC discovery, then its JWKS.

Keys are fetched lazily on first use and kept for ``jwks_cache_seconds``. A token naming an unknown
``kid`` may trigger one early refetch, at most once per ``jwks_refetch_min_interval``, so a flood of
made-up kids cannot turn the gateway into a traffic amplifier against the issuer. Concurrent fetches
are coalesced into one request. When ``share_jwks`` is set the JWKS also goes through the shared
store, so replicas mostly fetch it once between them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Final, final

import aiohttp

from fedgate_oidc.config import OIDCProviderSettings, is_loopback_http
from fedgate_oidc.public import PublicResolver, is_public_url
from fedgate_oidc.token import KeySet
from gateway.errors import IDPCommunicationError
from gateway.plugin import Store, bounded_loads, client_tls

__all__ = ["MAX_DOCUMENT_BYTES", "KeyFetcher"]

#: Largest discovery document or JWKS read; anything bigger is refused mid-stream.
MAX_DOCUMENT_BYTES: Final = 1 << 20

log = logging.getLogger(__name__)


@final
class KeyFetcher:
    """The signing keys of one issuer, fetched over HTTP and cached in memory (and the store)."""

    def __init__(
        self,
        settings: OIDCProviderSettings,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        report: Callable[[bool], None] = lambda ok: None,
    ) -> None:
        self._settings = settings
        self._report = report
        self._store = store if settings.share_jwks else None
        self._clock = clock
        self._monotonic = monotonic
        self._session: aiohttp.ClientSession | None = None
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._jwks_url: str | None = settings.jwks_url
        self._jwks_url_at = 0.0
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[KeySet] | None = None
        self.tls = client_tls(settings.ca_file)
        """The TLS context of requests to the issuer: its ``ca_file`` only, or ``None`` (system trust)."""
        self.fetches = 0
        """Number of network fetches of the JWKS (for metrics and tests)."""

    async def start(self) -> None:
        """Open the HTTP session."""
        if self._session is None:
            public = self._settings.public_network_only
            self._session = aiohttp.ClientSession(
                connector=(
                    aiohttp.TCPConnector(
                        ssl=self.tls if self.tls is not None else True,
                        resolver=PublicResolver() if public else None,
                    )
                    if self.tls is not None or public
                    else None
                ),
                timeout=aiohttp.ClientTimeout(total=self._settings.http_timeout),
                # Decompression would let a small response expand past the size limit in one step.
                auto_decompress=False,
                headers={"Accept": "application/json", "Accept-Encoding": "identity"},
            )

    async def close(self) -> None:
        """Close the HTTP session; a fetch still running is cancelled."""
        if self._inflight is not None:
            self._inflight.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _fresh(self, at: float) -> bool:
        return self._monotonic() - at < self._settings.jwks_cache_seconds

    async def current(self) -> KeySet:
        """The cached key set, fetched first if there is none or it has expired."""
        if self._keys is not None and self._fresh(self._keys_at):
            return self._keys
        return await self._refresh(stale=None)

    async def refetch(self, seen: KeySet) -> KeySet | None:
        """A key set newer than ``seen``, after a token named a key ``seen`` lacks.

        Returns ``None`` when a refetch happened less than ``jwks_refetch_min_interval`` ago.
        """
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)
        if self._keys is not None and self._keys is not seen:
            return self._keys
        last = self._last_attempt
        if last is not None and self._monotonic() - last < self._settings.jwks_refetch_min_interval:
            return None
        return await self._refresh(stale=seen)

    async def _refresh(self, stale: KeySet | None) -> KeySet:
        """Load keys; with ``stale`` given (a refetch), a shared copy counts only if it differs."""
        if self._inflight is None:
            task = asyncio.get_running_loop().create_task(self._load(stale))
            task.add_done_callback(self._done)
            self._inflight = task
        # Shielded: one caller giving up must not cancel the fetch the others wait for.
        return await asyncio.shield(self._inflight)

    def _done(self, task: asyncio.Task[KeySet]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not reported at shutdown

    async def _load(self, stale: KeySet | None) -> KeySet:
        shared = await self._load_shared(stale)
        if shared is not None:
            return shared
        self._last_attempt = self._monotonic()
        try:
            url = await self._jwks_location()
            self.fetches += 1
            document = await self._get_json(url, "JWKS")
            try:
                keys = KeySet.from_jwks(document)
            except ValueError:
                log.warning("JWKS of %s at %s is not a JWK set", self._settings.issuer, url)
                raise IDPCommunicationError("the issuer's JWKS is not a valid key set") from None
        except IDPCommunicationError:
            self._report(False)
            raise
        self._report(True)
        self._keys, self._keys_at = keys, self._monotonic()
        await self._save_shared(document)
        return keys

    async def _jwks_location(self) -> str:
        if self._settings.jwks_url is not None:
            return self._settings.jwks_url
        if self._jwks_url is not None and self._fresh(self._jwks_url_at):
            return self._jwks_url
        issuer = self._settings.issuer
        document = await self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery")
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            log.warning("discovery document of %s names another issuer", issuer)
            raise IDPCommunicationError("the issuer's discovery document names a different issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not (
            jwks_uri.startswith("https://") or (is_loopback_http(issuer) and is_loopback_http(jwks_uri))
        ):
            log.warning("discovery document of %s has no usable https jwks_uri", issuer)
            raise IDPCommunicationError("the issuer's discovery document has no usable jwks_uri")
        self._jwks_url, self._jwks_url_at = jwks_uri, self._monotonic()
        return jwks_uri

    async def _get_json(self, url: str, what: str) -> Any:
        if self._session is None:
            raise RuntimeError("OIDCProvider.start() was not called")
        if self._settings.public_network_only and not is_public_url(url):
            log.warning("%s of %s: %s is not a public address", what, self._settings.issuer, url)
            raise IDPCommunicationError(f"could not reach the issuer's {what} endpoint")
        body = bytearray()
        try:
            # Redirects are not followed: one could downgrade to http or leave the issuer's host.
            async with self._session.get(url, allow_redirects=False) as resp:
                encoding = resp.headers.get("Content-Encoding", "identity").lower()
                if resp.status != 200 or encoding != "identity":
                    log.warning(
                        "%s of %s: HTTP %s (%s) from %s",
                        what,
                        self._settings.issuer,
                        resp.status,
                        encoding,
                        url,
                    )
                    raise IDPCommunicationError(f"the issuer's {what} endpoint did not answer usefully")
                if (resp.content_length or 0) > MAX_DOCUMENT_BYTES:
                    raise IDPCommunicationError(f"the issuer's {what} document is too large")
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise IDPCommunicationError(f"the issuer's {what} document is too large")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("%s of %s: %s from %s", what, self._settings.issuer, type(exc).__name__, url)
            raise IDPCommunicationError(f"could not reach the issuer's {what} endpoint") from exc
        try:
            return bounded_loads(body)
        except ValueError:
            log.warning("%s of %s at %s is not JSON", what, self._settings.issuer, url)
            raise IDPCommunicationError(f"the issuer's {what} document is not valid JSON") from None

    def _store_key(self) -> str:
        return f"oidc:jwks:{self._settings.issuer}"

    async def _load_shared(self, stale: KeySet | None) -> KeySet | None:
        """A fresh JWKS another replica stored, if it differs from ``stale``."""
        if self._store is None:
            return None
        try:
            raw = await self._store.get(self._store_key())
        except Exception as exc:  # a cache miss, not a reason to deny: the network fetch follows
            # The type only: a store outage is logged by the store, without a traceback each time.
            issuer = self._settings.issuer
            log.warning("reading the shared JWKS of %s failed (%s)", issuer, type(exc).__name__)
            return None
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            age = self._clock() - float(entry["at"])
            keys = KeySet.from_jwks(entry["jwks"])
        except (ValueError, KeyError, TypeError):
            return None
        if not 0 <= age < self._settings.jwks_cache_seconds:
            return None
        if stale is not None and keys.fingerprint() == stale.fingerprint():
            return None
        self._keys, self._keys_at = keys, self._monotonic() - age
        return keys

    async def _save_shared(self, document: Any) -> None:
        if self._store is None:
            return
        entry = json.dumps({"at": self._clock(), "jwks": document}).encode()
        try:
            await self._store.set(self._store_key(), entry, ttl=self._settings.jwks_cache_seconds)
        except Exception as exc:  # sharing is an optimisation; this replica already has the keys
            issuer = self._settings.issuer
            log.warning("writing the shared JWKS of %s failed (%s)", issuer, type(exc).__name__)
