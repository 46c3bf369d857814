"""Reloading the configuration on SIGHUP: validate, then swap in what can change, or keep the old.

``fedgate serve`` calls :meth:`Reloader.reload` on SIGHUP (under ``--workers`` the parent forwards
the signal, and every worker reloads by itself). The file is read and validated exactly as at
start-up; if that fails, or a new identity provider does not start, nothing changes and one error
line says why. Otherwise what can change without a restart is swapped in, with no connection
dropped and no request disturbed (each request reads the catalog once and keeps the providers it
started with):

* **reloaded**: ``roles``, ``policies``, ``groups`` and ``users`` (the catalog is rebuilt from
  them and the IAM database, and its snapshot replaced atomically),
  ``providers`` (new ones are started before the swap, replaced ones are closed a minute later,
  when requests that were using them are long done), ``log_level``;
* **restart needed**: everything else (``listen``, ``store``, ``database``, ``keyring``,
  ``account_id``, ``region``, ``audit``, ``proxy`` and ``upstreams``, ``metrics``, ``tracing``,
  ``access_log``, plugin sections, ``disabled_plugins``, ``clock_skew_seconds``, and ``--workers``).
  A change to any of them is named in the reload's log line and not applied; the certificate files
  of ``listen.tls`` are re-read on SIGHUP too (:mod:`gateway.web.tls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Final, final

from aiohttp import web

from gateway import keys
from gateway.config import GatewayConfig, parse_config, read_yaml
from gateway.errors import ConfigError, GatewayError, MalformedPolicyDocument
from gateway.iam.records import records_from_config
from gateway.identity import IdentityProvider
from gateway.startup import provider_context

__all__ = ["RELOADABLE", "Reloader"]

log = logging.getLogger(__name__)

#: The top-level keys a reload applies; a change to any other is reported as needing a restart.
RELOADABLE: Final = frozenset({"roles", "policies", "groups", "users", "providers", "log_level"})
#: The keys the catalog is built from (with the IAM database's entities).
_CATALOG_KEYS: Final = ("roles", "policies", "groups", "users")
#: Seconds a replaced identity provider is kept open for requests that were using it.
RETIRE_AFTER: Final = 60.0


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


@final
class Reloader:
    """Reloads ``path`` into the running ``app`` (see the module docstring)."""

    def __init__(self, app: web.Application, path: str | Path) -> None:
        self._app = app
        self._path = Path(path)
        self._config: GatewayConfig = app[keys.CONFIG]
        self._lock = asyncio.Lock()
        self._retiring: dict[asyncio.Task[None], list[IdentityProvider]] = {}

    @property
    def config(self) -> GatewayConfig:
        """The configuration in force (as last reloaded)."""
        return self._config

    async def reload(self) -> bool:
        """Apply the file if it is valid; ``True`` when it was (even if some changes need a restart)."""
        async with self._lock:
            applied = await self._reload()
        metrics = self._app.get(keys.METRICS)
        if metrics is not None:
            metrics.reloaded(applied)
        return applied

    async def _reload(self) -> bool:
        host = self._app[keys.PLUGINS]
        old = self._config
        try:
            new = parse_config(
                read_yaml(self._path),
                provider_types=host.provider_types(),
                sections=host.config_sections(),
                config_dir=self._path.resolve().parent,  # as load() resolves paths at start-up
            )
        except (ConfigError, MalformedPolicyDocument, ValueError) as exc:
            log.error("configuration reload refused, the running one is kept: %s", _one_line(str(exc)))
            return False
        records = snapshot = None
        try:
            if _changed(old, new, *_CATALOG_KEYS):
                # In the account the catalog serves: a new account_id needs a restart like the rest.
                records = records_from_config(new.model_copy(update={"account_id": old.account_id}))
                snapshot = await self._app[keys.CATALOG_FEED].build(records)
        except (GatewayError, MalformedPolicyDocument, ValueError) as exc:
            log.error("configuration reload refused, the running one is kept: %s", _one_line(str(exc)))
            return False
        providers = None
        if _changed(old, new, "providers"):
            try:
                providers = await self._start_providers(new)
            except (GatewayError, ValueError, OSError) as exc:
                log.error(
                    "configuration reload refused, the running one is kept: a provider did not start: %s",
                    _one_line(str(exc)) or type(exc).__name__,
                )
                return False
        # Nothing can fail past this point: everything is swapped in, or nothing was.
        if records is not None and snapshot is not None:
            self._app[keys.CATALOG_FEED].reconfigure(records, snapshot)
        if providers is not None:
            current = self._app[keys.PROVIDERS]
            retired = list(current)
            current[:] = providers  # the list the STS service and the sign-in read
            self._retire(retired)
        if new.log_level != old.log_level:
            logging.getLogger().setLevel(new.log_level)
        self._config = new
        changed = sorted(k for k in RELOADABLE if _changed(old, new, k))
        restart = sorted(
            k for k in GatewayConfig.model_fields if k not in RELOADABLE and _changed(old, new, k)
        )
        fields = {"reloaded": changed, "restart_needed": restart}
        if restart:
            log.warning(
                "configuration reloaded; these settings need a restart: %s", ", ".join(restart), extra=fields
            )
        else:
            log.info("configuration reloaded", extra=fields)
        return True

    async def _start_providers(self, config: GatewayConfig) -> list[IdentityProvider]:
        host = self._app[keys.PLUGINS]
        context = provider_context(self._app)
        started: list[IdentityProvider] = []
        try:
            for settings in config.providers:
                provider = host.create_identity_provider(settings, context)
                await provider.start()
                started.append(provider)
        except BaseException:
            for provider in reversed(started):
                with contextlib.suppress(Exception):
                    await provider.close()
            raise
        return started

    def _retire(self, providers: list[IdentityProvider]) -> None:
        async def close_later() -> None:
            await asyncio.sleep(RETIRE_AFTER)
            await _close(providers)

        task = asyncio.get_running_loop().create_task(close_later())
        self._retiring[task] = providers
        task.add_done_callback(lambda done: self._retiring.pop(done, None))

    @property
    def retiring(self) -> bool:
        """Whether replaced providers are still waiting to be closed."""
        return any(not task.done() for task in self._retiring)

    async def close(self) -> None:
        """Close the providers still waiting to be retired (the server is stopping)."""
        for task, providers in list(self._retiring.items()):
            if task.done():
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await _close(providers)


async def _close(providers: list[IdentityProvider]) -> None:
    for provider in reversed(providers):
        try:
            await provider.close()
        except Exception:
            log.exception("a replaced identity provider failed to close")


def _changed(old: GatewayConfig, new: GatewayConfig, *names: str) -> bool:
    return any(getattr(old, name) != getattr(new, name) for name in names)
