"""``fedgate check-config``: what ``serve`` would refuse, and findings about what it would accept.

It runs exactly what ``serve`` runs before it listens (:func:`gateway.startup.load`, then
:func:`gateway.startup.preflight`: secrets resolved, files read, keys sized; then
:func:`gateway.app.create_app`, where plugins refuse what they cannot serve), then collects
findings in the manner of IAM Access Analyzer's ValidatePolicy (:mod:`gateway.iam.lint` for
policies and trust policies, :func:`gateway.proxy.upstream.shadowed` for upstreams, and each
plugin's ``fedgate_check_config``). With ``--online`` it also reaches the store, the IAM database
and every identity provider that can be probed (discovery and JWKS, SAML metadata).

Errors make the exit status 1; warnings are printed and leave it 0. ``--format json`` prints
``{"ok": bool, "findings": [{severity, code, path, message}]}`` for CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from gateway.cliopts import add_config_argument
from gateway.config import GatewayConfig
from gateway.errors import ConfigError, DatabaseError, ServiceError
from gateway.findings import Finding
from gateway.plugin_host import PluginHost

__all__ = ["add_check_command", "findings_for"]


def add_check_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fedgate check-config``."""
    check = sub.add_parser(
        "check-config",
        help="validate a configuration file and exit",
        description="Check a configuration as serve would (the file, every secret and file it names, key "
        "sizes, what plugins refuse), then report findings: unknown actions, ARNs naming nothing "
        "configured, trust policies no request can satisfy, upstreams no request reaches, sign-ins "
        "that can offer no role. Exit 0 when there is no error (warnings are printed), 1 when there "
        "is one.",
    )
    add_config_argument(check)
    check.add_argument(
        "--online",
        action="store_true",
        help="also reach the store, the IAM database and every identity provider (discovery, JWKS, SAML "
        "metadata)",
    )
    check.add_argument(
        "--format", choices=["text", "json"], default="text", help="output format (default text)"
    )
    check.set_defaults(handler=_run)


def findings_for(config: GatewayConfig, host: PluginHost) -> list[Finding]:
    """Every offline finding about a configuration that :func:`~gateway.startup.preflight` passed."""
    from gateway.iam.lint import KnownProvider, config_findings
    from gateway.identity import ProviderContext
    from gateway.proxy.upstream import shadowed
    from gateway.store.memory import MemoryStore

    context = ProviderContext(account_id=config.account_id, store=MemoryStore())
    providers = []
    for settings in config.providers:  # built, not started: their ARNs are theirs to spell
        provider = host.create_identity_provider(settings, context)
        prefix = provider.arn.split(":oidc-provider/", 1)[-1] if provider.kind == "oidc" else provider.kind
        providers.append(KnownProvider(arn=provider.arn, kind=provider.kind, key_prefix=prefix))
    found = config_findings(config, providers)
    for later, earlier in shadowed(config.upstreams):
        found.append(
            Finding(
                "warning",
                "SHADOWED_UPSTREAM",
                f"upstreams[{later}]",
                f"no request reaches {config.upstreams[later].name!r}: upstreams[{earlier}] "
                f"({config.upstreams[earlier].name!r}) takes every request it matches (the first match "
                "wins); move it before, or narrow the earlier match",
            )
        )
    for i, upstream in enumerate(config.upstreams):
        if not upstream.match.hosts and upstream.match.path_prefix.rstrip("/") == "":
            found.append(
                Finding(
                    "warning",
                    "UPSTREAM_TAKES_EVERYTHING",
                    f"upstreams[{i}].match",
                    f"{upstream.name!r} matches every host and path, so the STS and IAM API at / and the "
                    "/sso/ pages are unreachable; give it hosts or a path_prefix",
                )
            )
    found += host.check_config(config)
    return found


async def _online(config: GatewayConfig, host: PluginHost) -> list[Finding]:
    from gateway.capabilities import Probeable
    from gateway.db import IamDatabase, target_for, unavailable_reason
    from gateway.identity import ProviderContext
    from gateway.store import ReplayGuard, open_store

    found: list[Finding] = []
    store = open_store(config.store)
    try:
        await ReplayGuard(store).current()
    except ServiceError as exc:
        found.append(
            Finding(
                "error",
                "UNREACHABLE",
                "store",
                f"the {config.store.backend} store does not answer ({exc.code})",
            )
        )
    if not target_for(config.database).in_memory:
        db = IamDatabase.from_settings(config.database, account_id=config.account_id)
        try:
            await db.schema_revisions()
        except DatabaseError as exc:
            found.append(Finding("error", "DATABASE", "database.url", str(exc)))
        except ServiceError as exc:
            found.append(
                Finding(
                    "error",
                    "UNREACHABLE",
                    "database.url",
                    f"the IAM database is unreachable ({unavailable_reason(exc)})",
                )
            )
        finally:
            await db.close()
    context = ProviderContext(account_id=config.account_id, store=store)
    try:
        for i, settings in enumerate(config.providers):
            provider = host.create_identity_provider(settings, context)
            if not isinstance(provider, Probeable):
                continue
            try:
                await provider.start()
                await provider.probe()
            except ServiceError as exc:
                found.append(
                    Finding("error", "UNREACHABLE", f"providers[{i}]", f"{provider.issuer}: {exc.message}")
                )
            finally:
                await provider.close()
    finally:
        await store.close()
    return found


def _run(args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.startup import load, preflight

    found: list[Finding] = []
    summary = ""
    try:
        config, host = load(args.config)
        preflight(config)  # exactly what serve checks before it binds
        create_app(config, host=host)  # and what plugins refuse when they add their routes
    except ConfigError as exc:
        for line in str(exc).splitlines():
            path, sep, message = line.partition(": ")
            found.append(
                Finding("error", "INVALID_CONFIGURATION", path if sep else "", message if sep else line)
            )
    else:
        found = findings_for(config, host)
        if args.online:
            found += asyncio.run(_online(config, host))
        summary = (
            f"account {config.account_id}, {len(config.providers)} provider(s), {len(config.roles)} role(s), "
            f"{len(config.policies)} policy(ies), store {config.store.backend}, "
            f"plugins: {', '.join(host.names())}"
        )
    errors = [f for f in found if f.severity == "error"]
    if args.format == "json":
        report: dict[str, Any] = {"ok": not errors, "findings": [f.as_dict() for f in found]}
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        for finding in found:
            print(f"fedgate: {finding.line()}", file=sys.stderr)
        if not errors:
            warned = f"; {len(found)} warning(s)" if found else ""
            print(f"{args.config}: OK ({summary}){warned}")
    return 1 if errors else 0
