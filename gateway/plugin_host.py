"""A typed facade over pluggy's PluginManager: one method per hook."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast, final

import pluggy

from gateway import hookspecs
from gateway.errors import PluginError

if TYPE_CHECKING:
    from aiohttp import web
    from pydantic import BaseModel

    from gateway.config import GatewayConfig, ProviderSettings
    from gateway.findings import Finding
    from gateway.identity import IdentityProvider, ProviderContext

__all__ = ["ENTRY_POINT_GROUP", "PluginHost", "disabled_from_env"]

ENTRY_POINT_GROUP = hookspecs.PROJECT
log = logging.getLogger(__name__)


def disabled_from_env() -> list[str]:
    """``FEDGATE_DISABLE_PLUGINS=a,b``: plugins kept out of the command line and the gateway."""
    raw = os.environ.get("FEDGATE_DISABLE_PLUGINS", "")
    return [name.strip() for name in raw.split(",") if name.strip()]


@final
class PluginHost:
    """Loads plugins and calls their hooks.

    Registration order: plugins from the ``fedgate`` entry-point group, then the built-in defaults
    passed as ``builtins`` (which mark their hooks ``trylast`` so any plugin can override them),
    then ``check_pending()`` so a misspelt hook is a start-up error.
    """

    def __init__(self, *, disabled: Iterable[str] = (), builtins: Iterable[object] = ()) -> None:
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        for name in disabled:
            pm.set_blocked(name)
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            for plugin in builtins:
                pm.register(plugin)
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {exc.plugin!r} is invalid: {exc}") from exc
        except ImportError as exc:
            raise PluginError(f"a fedgate plugin failed to import: {exc}") from exc
        self._pm = pm

    @property
    def manager(self) -> pluggy.PluginManager:
        """The underlying pluggy manager (for tests and introspection)."""
        return self._pm

    def names(self) -> list[str]:
        """Names of the registered plugins."""
        return sorted(n for n, p in self._pm.list_name_plugin() if n is not None and p is not None)

    def distributions(self) -> dict[str, str]:
        """``name -> "distribution version"`` of the plugins loaded from entry points."""
        by_plugin = {id(plugin): dist for plugin, dist in self._pm.list_plugin_distinfo()}
        found = {}
        for name, plugin in self._pm.list_name_plugin():
            dist = by_plugin.get(id(plugin))
            if name is not None and dist is not None:
                found[name] = f"{dist.project_name} {dist.version}"
        return found

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object after start-up (the app's configured audit sink, tests)."""
        self._pm.register(plugin, name=name)

    def provider_types(self) -> dict[str, type[ProviderSettings]]:
        """Every provider type declared by plugins; a type declared twice is an error."""
        merged: dict[str, type[ProviderSettings]] = {}
        for mapping in self._pm.hook.fedgate_add_provider_types():
            for key, model in cast("Mapping[str, type[ProviderSettings]]", mapping).items():
                if key in merged and merged[key] is not model:
                    raise PluginError(f"provider type {key!r} is declared by two plugins")
                merged[key] = model
        return merged

    def config_sections(self) -> dict[str, type[BaseModel]]:
        """Every top-level configuration section declared by plugins."""
        merged: dict[str, type[BaseModel]] = {}
        for mapping in self._pm.hook.fedgate_add_config_sections():
            for key, model in cast("Mapping[str, type[BaseModel]]", mapping).items():
                if key in merged and merged[key] is not model:
                    raise PluginError(f"config section {key!r} is declared by two plugins")
                merged[key] = model
        return merged

    def create_identity_provider(
        self, settings: ProviderSettings, context: ProviderContext
    ) -> IdentityProvider:
        """Build the provider for ``settings``; no plugin accepting it is a start-up error."""
        provider = self._pm.hook.fedgate_create_identity_provider(settings=settings, context=context)
        if provider is None:
            raise PluginError(f"no plugin builds providers of type {settings.type!r}")
        return cast("IdentityProvider", provider)

    def api_provider_settings(
        self,
        kind: str,
        issuer: str = "",
        audiences: Sequence[str] = (),
        *,
        name: str = "",
        metadata: str = "",
    ) -> ProviderSettings | None:
        """Settings for an API-created provider of ``kind`` (an OIDC provider's ``issuer`` and
        ``audiences``, a SAML provider's ``name`` and ``metadata``; see the hook spec), or ``None``
        if no plugin builds it."""
        if kind == "oidc" and not name:
            name = issuer.split("://", 1)[-1].rstrip("/")
        settings = self._pm.hook.fedgate_api_provider_settings(
            kind=kind, issuer=issuer, audiences=list(audiences), name=name, metadata=metadata
        )
        return cast("ProviderSettings | None", settings)

    def add_routes(self, app: web.Application, config: GatewayConfig) -> None:
        """Let plugins add routes to ``app``."""
        self._pm.hook.fedgate_add_routes(app=app, config=config)

    def add_cli_commands(self, subparsers: argparse._SubParsersAction[Any]) -> None:
        """Let plugins add ``fedgate`` subcommands."""
        self._pm.hook.fedgate_add_cli_commands(subparsers=subparsers)

    def check_config(self, config: GatewayConfig) -> list[Finding]:
        """Every plugin's findings about ``config`` (``fedgate_check_config``)."""
        return [f for found in self._pm.hook.fedgate_check_config(config=config) for f in found]

    def has_audit_sinks(self) -> bool:
        """Whether any plugin receives audit events (if none, events need not be built)."""
        return bool(self._pm.hook.fedgate_audit_event.get_hookimpls())

    def audit_event(self, event: Mapping[str, Any]) -> None:
        """Hand ``event`` to every audit sink; a failing sink is logged, never raised.

        Each sink is called on its own: pluggy stops at the first exception, and one broken
        third-party sink must not silence the others (the built-in JSON-lines sink runs last).
        """
        for impl in reversed(self._pm.hook.fedgate_audit_event.get_hookimpls()):
            try:
                impl.function(event=event)
            except Exception:
                log.exception("the audit sink of plugin %s failed", impl.plugin_name)

    def unregister(self, plugin: object) -> None:
        """Unregister ``plugin`` if it is registered (the app's audit sink at shutdown)."""
        if self._pm.is_registered(plugin):
            self._pm.unregister(plugin)
