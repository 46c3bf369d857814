# Specs have no bodies: pluggy only reads their signatures and docstrings.
# mypy: disable-error-code="empty-body"
"""Every hook fedgate calls, with when it is called and what its result means.

Hooks are synchronous and cheap: they register things, configure them or make a pure decision.
Asynchronous work (fetching a JWKS, verifying XML in a thread) lives on the objects they return.
The host always calls hooks with keyword arguments. Plugins implement them with
:data:`gateway.hookimpl`.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from aiohttp import web
    from pydantic import BaseModel

    from gateway.config import GatewayConfig, ProviderSettings
    from gateway.findings import Finding
    from gateway.identity import IdentityProvider, ProviderContext

__all__ = [
    "PROJECT",
    "fedgate_add_cli_commands",
    "fedgate_add_config_sections",
    "fedgate_add_provider_types",
    "fedgate_add_routes",
    "fedgate_api_provider_settings",
    "fedgate_audit_event",
    "fedgate_check_config",
    "fedgate_create_identity_provider",
    "hookimpl",
]

PROJECT = "fedgate"
_spec = pluggy.HookspecMarker(PROJECT)
#: The marker plugins put on their hook implementations (re-exported by :mod:`gateway.plugin`).
hookimpl = pluggy.HookimplMarker(PROJECT)


@_spec
def fedgate_add_provider_types() -> Mapping[str, type[ProviderSettings]]:
    """Declare the identity-provider kinds a plugin implements.

    Called once while the configuration is loaded. Return a mapping from the value of a provider's
    ``type`` key in the configuration (``"oidc"``) to the pydantic model that validates that
    provider's settings. Two plugins claiming the same type is a start-up error.
    """


@_spec
def fedgate_add_config_sections() -> Mapping[str, type[BaseModel]]:
    """Declare top-level configuration sections a plugin owns.

    Called once while the configuration is loaded. Return a mapping from a top-level key
    (``"dev_issuer"``) to the pydantic model validating it. A section may not shadow a core key.
    The validated section is available as ``config.sections[key]``.
    """


@_spec(firstresult=True)
def fedgate_create_identity_provider(
    settings: ProviderSettings, context: ProviderContext
) -> IdentityProvider | None:
    """Build the identity provider for one configured provider.

    Called once per entry of ``providers`` at application start-up. Return an object implementing
    :class:`gateway.identity.IdentityProvider` if ``settings`` is of a type this plugin declared,
    else ``None``. Stops at first non-None result.
    """


@_spec(firstresult=True)
def fedgate_api_provider_settings(
    kind: str, issuer: str, audiences: Sequence[str], name: str, metadata: str
) -> ProviderSettings | None:
    """Settings for an identity provider created through the IAM API (not the configuration file).

    Called when a replica builds its set of API-created providers (at start-up and whenever the IAM
    database's revision moves). ``name`` is the last part of the provider's ARN. For a
    ``CreateOpenIDConnectProvider`` provider ``kind`` is ``"oidc"``, ``issuer`` its URL
    (``https://HOST/PATH``; ``name`` is ``HOST/PATH``), ``audiences`` its client ids and
    ``metadata`` empty. For a ``CreateSAMLProvider`` provider ``kind`` is ``"saml"``, ``name`` its
    name, ``metadata`` its SAML metadata document, ``issuer`` empty and ``audiences`` empty.
    Return settings of a provider type this plugin declared (then built with
    ``fedgate_create_identity_provider``), or ``None`` for a kind it does not build.
    Stops at first non-None result.
    """


@_spec
def fedgate_add_routes(app: web.Application, config: GatewayConfig) -> None:
    """Add HTTP routes or cleanup contexts to the application.

    Called once in :func:`gateway.create_app`, after the core routes are added and before the
    application is frozen. Plugins must only add routes under a path prefix of their own.

    A plugin's cleanup context runs after the core's, so it may read the app keys in
    :data:`gateway.plugin.CLEANUP_APP_KEYS`: ``CONFIG``, ``PLUGINS`` and ``TRUSTED_PROXIES`` (set
    when the application is created) and ``STORE``, ``REPLAY``, ``CREDENTIALS``,
    ``SIGNING_KEYS``, ``PROVIDERS``, ``CATALOG``, ``AUDITOR`` and ``STS`` (set by the core's cleanup
    contexts). Here,
    in the hook itself, only ``CONFIG`` and ``PLUGINS`` exist yet. Request handlers may read all of
    them, and ``REQUEST_ID`` on the request.
    """


@_spec
def fedgate_add_cli_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add subcommands to the ``fedgate`` command line.

    Called once when the command line is built. Each subcommand should set a ``handler`` default
    (``parser.set_defaults(handler=fn)``) taking the parsed ``argparse.Namespace`` and returning an
    exit code.
    """


@_spec
def fedgate_check_config(config: GatewayConfig) -> Iterable[Finding]:
    """Return findings about the plugin's own part of a valid configuration.

    Called by ``fedgate check-config`` after the file validated and its secrets resolved, with no
    I/O expected (``--online`` probes providers separately). Return :class:`gateway.plugin.Finding`
    values (``error``: cannot work as written, check-config fails; ``warning``: printed), naming
    the key path each is about; an empty iterable when all is well.
    """


@_spec
def fedgate_audit_event(event: Mapping[str, Any]) -> None:
    """Receive one audit event (CloudTrail-like) after a request was decided.

    Called for every Query API call (STS, IAM), proxied request and browser sign-in, success or
    failure, after the response is known. ``event`` follows the schema in ``docs/audit.md`` and
    never contains secrets, tokens or assertions. Implementations must be fast and must not raise;
    the built-in sink (JSON lines to stdout or a file) runs last.
    """
