"""The ``fedgate`` command line.

``fedgate serve`` runs the gateway; ``fedgate check-config`` validates a configuration file;
``fedgate plugins`` lists the loaded plugins. Plugins add their own subcommands through the
``fedgate_add_cli_commands`` hook (the development issuer adds ``dev-token``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version

from gateway.config import load_config_and_host
from gateway.errors import ConfigError, PluginError
from gateway.logs import configure_logging
from gateway.plugin_host import PluginHost

__all__ = ["build_parser", "main"]

log = logging.getLogger("gateway")


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The ``-c/--config`` option every subcommand shares (default: ``$FEDGATE_CONFIG``)."""
    parser.add_argument(
        "-c",
        "--config",
        default=os.environ.get("FEDGATE_CONFIG"),
        required="FEDGATE_CONFIG" not in os.environ,
        metavar="FILE",
        help="configuration file (YAML); defaults to $FEDGATE_CONFIG",
    )


def build_parser(host: PluginHost) -> argparse.ArgumentParser:
    """The argument parser, including plugin subcommands."""
    parser = argparse.ArgumentParser(
        prog="fedgate",
        description="Federation and token gateway: OIDC/SAML identities in, AWS STS credentials out.",
    )
    parser.add_argument("--version", action="version", version=f"fedgate {version('fedgate')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway: the STS API on /, /healthz and /readyz. "
        "Stops cleanly on SIGINT and SIGTERM.",
    )
    add_config_argument(serve)
    serve.add_argument("--host", help="address to bind (overrides listen.host)")
    serve.add_argument("--port", type=int, help="TCP port (overrides listen.port)")
    serve.set_defaults(handler=_serve)

    check = sub.add_parser(
        "check-config",
        help="validate a configuration file and exit",
        description="Validate a configuration file: exit 0 and a summary when valid, 1 and every "
        "problem (each naming its key path) when not.",
    )
    add_config_argument(check)
    check.set_defaults(handler=_check_config)

    reference = sub.add_parser(
        "config-reference",
        help="print the configuration reference (Markdown)",
        description="Print every configuration key with its type, default and description, "
        "including the keys of loaded plugins (this is docs/configuration.md).",
    )
    reference.set_defaults(handler=lambda args: _config_reference(host))

    plugins = sub.add_parser("plugins", help="list loaded plugins", description="List the loaded plugins.")
    plugins.set_defaults(handler=lambda args: _plugins(host))

    host.add_cli_commands(sub)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway.app import create_app

    config, host = load_config_and_host(args.config)
    configure_logging(config.log_level)
    app = create_app(config, host=host)
    bind_host = args.host or config.listen.host
    port = args.port if args.port is not None else config.listen.port
    log.info(
        "fedgate starting",
        extra={"listen": f"{bind_host}:{port}", "store": config.store.backend, "plugins": host.names()},
    )
    web.run_app(app, host=bind_host, port=port, print=None, access_log=None, shutdown_timeout=10.0)
    log.info("fedgate stopped")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    config, host = load_config_and_host(args.config)
    print(
        f"{args.config}: OK (account {config.account_id}, {len(config.providers)} provider(s), "
        f"{len(config.roles)} role(s), {len(config.policies)} policy(ies), store {config.store.backend}, "
        f"plugins: {', '.join(host.names())})"
    )
    return 0


def _config_reference(host: PluginHost) -> int:
    from gateway.configdoc import render_reference

    sys.stdout.write(render_reference(host.provider_types(), host.config_sections()))
    return 0


def _plugins(host: PluginHost) -> int:
    for name in host.names():
        print(name)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fedgate`` console script."""
    try:
        host = PluginHost(disabled=_disabled_from_env())
        parser = build_parser(host)
        args = parser.parse_args(argv)
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"fedgate: invalid configuration:\n{exc}", file=sys.stderr)
        return 1
    except PluginError as exc:
        print(f"fedgate: plugin error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _disabled_from_env() -> list[str]:
    """``FEDGATE_DISABLE_PLUGINS=a,b``: plugins never loaded, not even for the command line."""
    raw = os.environ.get("FEDGATE_DISABLE_PLUGINS", "")
    return [name.strip() for name in raw.split(",") if name.strip()]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
