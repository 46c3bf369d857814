"""The ``fedgate`` command line.

``fedgate serve`` runs the gateway; ``fedgate check-config`` validates a configuration file;
``fedgate plugins`` lists the loaded plugins; ``fedgate db`` manages the IAM database's schema.
Plugins add their own subcommands through the ``fedgate_add_cli_commands`` hook (the development
issuer adds ``dev-token``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC
from importlib.metadata import version

from gateway.agent.cli import add_agent_command
from gateway.cliopts import add_config_argument
from gateway.config import GatewayConfig
from gateway.db_cli import MEMORY_DATABASE_HINT, NoSharedDatabase, add_db_commands, run_with_database
from gateway.errors import ConfigError, DatabaseError, DatabaseUnavailable, PluginError
from gateway.healthcheck import add_command as add_healthcheck_command
from gateway.iam_cli import add_iam_commands
from gateway.login_cli import add_commands as add_login_commands
from gateway.logs import configure_logging
from gateway.plugin_host import PluginHost, disabled_from_env
from gateway.simulate_cli import add_simulate_command

__all__ = [
    "add_config_argument",
    "build_parser",
    "main",
]

log = logging.getLogger("gateway")


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
        description="Run the gateway: the STS and IAM Query API on /, the reverse proxy for configured "
        "upstreams, the /sso/ sign-in pages when configured, and /healthz and /readyz. "
        "Stops cleanly on SIGINT and SIGTERM.",
    )
    add_config_argument(serve)
    serve.add_argument("--host", help="address to bind (overrides listen.host)")
    serve.add_argument("--port", type=int, help="TCP port (overrides listen.port)")
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="worker processes sharing one listening socket (default 1); with N > 1 use the redis store "
        "and a database file or server (database.url)",
    )
    serve.set_defaults(handler=_serve)

    check = sub.add_parser(
        "check-config",
        help="validate a configuration file and exit",
        description="Validate a configuration file: exit 0 and a summary when valid, 1 and every "
        "problem (each naming its key path) when not.",
    )
    add_config_argument(check)
    check.set_defaults(handler=_check_config)

    revoke = sub.add_parser(
        "revoke-sessions",
        help="revoke every session of a role issued before a moment",
        description="Revoke every session of a role issued before a moment (default: now). The "
        "revocation is written to the IAM database (database.url, SQLite or PostgreSQL), where it "
        "survives restarts, and every gateway using that database refuses those sessions within its "
        "watcher's bound (at once with PostgreSQL notifications, else within "
        "database.poll_interval_seconds).",
    )
    add_config_argument(revoke)
    revoke.add_argument("--role", required=True, help="role name or ARN, as configured")
    revoke.add_argument(
        "--before",
        default="now",
        metavar="TIME",
        help="ISO 8601 time (e.g. 2026-11-28T15:00:00Z) or 'now' (default)",
    )
    revoke.set_defaults(handler=_revoke_sessions)

    reference = sub.add_parser(
        "config-reference",
        help="print the configuration reference (Markdown)",
        description="Print every configuration key with its type, default and description, "
        "including the keys of loaded plugins (this is docs/configuration.md).",
    )
    reference.set_defaults(handler=lambda args: _config_reference(host))

    plugins = sub.add_parser(
        "plugins",
        help="list loaded plugins",
        description="List the loaded plugins, each with the distribution (and its version) it comes from.",
    )
    plugins.set_defaults(handler=lambda args: _plugins(host))

    add_db_commands(sub)
    add_iam_commands(sub)
    add_simulate_command(sub)
    add_healthcheck_command(sub)
    add_login_commands(sub)
    add_agent_command(sub)
    host.add_cli_commands(sub)
    return parser


def _positive(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 256:
        raise argparse.ArgumentTypeError("must be between 1 and 256")
    return number


def _serve(args: argparse.Namespace) -> int:
    from gateway.app import create_app
    from gateway.db import target_for
    from gateway.startup import load
    from gateway.web.server import run

    config, host = load(args.config)
    database = target_for(config.database)
    if args.workers > 1 and database.in_memory:
        print(
            f"fedgate: --workers {args.workers} needs a database the workers share: {MEMORY_DATABASE_HINT}",
            file=sys.stderr,
        )
        return 2
    configure_logging(config.log_level)
    bind_host = args.host or config.listen.host
    port = args.port if args.port is not None else config.listen.port
    log.info(
        "fedgate starting",
        extra={
            "listen": f"{bind_host}:{port}",
            "store": config.store.backend,
            "database": "memory" if database.in_memory else database.backend,
            "plugins": host.names(),
            "workers": args.workers,
        },
    )
    if args.workers > 1:
        return _serve_workers(config, host, bind_host, port, args.workers)
    run(create_app(config, host=host), host=bind_host, port=port)
    log.info("fedgate stopped")
    return 0


def _shared_secrets(config: GatewayConfig) -> GatewayConfig:
    """``config`` with the per-process random keys made once here, so every worker holds the same."""
    import secrets

    from gateway.config import KeyRingSettings, KeySettings, SecretRef

    update: dict[str, object] = {}
    if config.keyring is None:
        key_id = "eph-" + secrets.token_hex(6)
        secret = SecretRef(value=secrets.token_urlsafe(48))  # type: ignore[arg-type]
        update["keyring"] = KeyRingSettings(active=key_id, keys=[KeySettings(id=key_id, secret=secret)])
        log.warning(
            "No keyring configured: one random key is shared by this server's workers; session tokens "
            "will not survive a restart nor work on other replicas."
        )
    if any(u.auth == "identity" for u in config.upstreams) and config.proxy.identity_signing_key is None:
        from gateway.proxy.identity import IdentitySigner

        pem = IdentitySigner.generate(issuer="unused", ttl=60).private_pem()
        proxy = config.proxy.model_copy(update={"identity_signing_key": SecretRef(value=pem)})  # type: ignore[arg-type]
        update["proxy"] = proxy
    if config.store.backend == "memory":
        log.warning(
            "The memory store is per process: with several workers, replay protection and rate limits "
            "are not shared between them. Use the redis store."
        )
    return config.model_copy(update=update) if update else config


def _serve_workers(config: GatewayConfig, host: PluginHost, bind_host: str, port: int, workers: int) -> int:
    """Serve with ``workers`` forked processes accepting on one socket bound here."""
    import signal
    import socket

    from gateway.app import create_app
    from gateway.web.server import run

    config = _shared_secrets(config)
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind_host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the worker
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops workers with SIGTERM
                run(create_app(config, host=host), sock=sock)
            except BaseException:
                log.exception("worker failed")
                code = 1
            os._exit(code)
        children.append(pid)
    sock.close()

    def stop(signum: int, frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    for child in children:
        while True:
            try:
                _, code = os.waitpid(child, 0)
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
                continue
        if os.waitstatus_to_exitcode(code) not in (0, -signal.SIGTERM):
            status = 1
    log.info("fedgate stopped")
    return status


def _check_config(args: argparse.Namespace) -> int:
    from gateway.startup import load

    config, host = load(args.config)
    print(
        f"{args.config}: OK (account {config.account_id}, {len(config.providers)} provider(s), "
        f"{len(config.roles)} role(s), {len(config.policies)} policy(ies), store {config.store.backend}, "
        f"plugins: {', '.join(host.names())})"
    )
    return 0


def _revoke_sessions(args: argparse.Namespace) -> int:
    from datetime import datetime

    from gateway.credentials import revoke_role_sessions
    from gateway.db import IamDatabase
    from gateway.startup import load

    config, _ = load(args.config)
    arns = {config.role_arn(role): role for role in config.roles}
    by_name = {role.name: arn for arn, role in arns.items()}
    role_arn = args.role if args.role in arns else by_name.get(args.role)
    if role_arn is None:
        raise ConfigError(f"--role: no role named {args.role!r} in {args.config}")
    if args.before == "now":
        before = time.time()
    else:
        try:
            moment = datetime.fromisoformat(args.before.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"--before: {args.before!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise ConfigError("--before: give a time zone (e.g. a trailing Z for UTC)")
        before = moment.timestamp()

    async def revoke(db: IamDatabase) -> float:
        return await revoke_role_sessions(db, role_arn, before)

    try:
        cutoff = run_with_database(config, revoke)
    except NoSharedDatabase:
        print(
            f"fedgate: revoke-sessions needs a database shared with the gateway: {MEMORY_DATABASE_HINT}",
            file=sys.stderr,
        )
        return 2
    stamp = datetime.fromtimestamp(cutoff, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(f"{role_arn}: sessions issued before {stamp} are revoked")
    return 0


def _config_reference(host: PluginHost) -> int:
    from gateway.configdoc import render_reference

    sys.stdout.write(render_reference(host.provider_types(), host.config_sections()))
    return 0


def _plugins(host: PluginHost) -> int:
    dists = host.distributions()
    width = max((len(n) for n in host.names()), default=0)
    for name in host.names():
        print(f"{name:<{width}}  {dists.get(name, '(registered directly)')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fedgate`` console script."""
    try:
        host = PluginHost(disabled=disabled_from_env())
        parser = build_parser(host)
        args = parser.parse_args(argv)
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"fedgate: invalid configuration:\n{exc}", file=sys.stderr)
        return 1
    except PluginError as exc:
        print(f"fedgate: plugin error: {exc}", file=sys.stderr)
        return 1
    except DatabaseUnavailable as exc:
        from gateway.db import unavailable_reason

        print(
            f"fedgate: the IAM database is unreachable ({unavailable_reason(exc)}); check database.url "
            "and that the server is running",
            file=sys.stderr,
        )
        return 1
    except DatabaseError as exc:
        print(f"fedgate: database: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
