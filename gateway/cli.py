"""The ``fedgate`` command line.

``fedgate serve`` runs the gateway; ``fedgate check-config`` validates a configuration file;
``fedgate plugins`` lists the loaded plugins; ``fedgate db`` manages the IAM database's schema.
Plugins add their own subcommands through the ``fedgate_add_cli_commands`` hook (the development
issuer adds ``dev-token``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.agent.cli import add_agent_command
from gateway.check_cli import add_check_command
from gateway.cliopts import add_config_argument
from gateway.config import GatewayConfig
from gateway.db_cli import MEMORY_DATABASE_HINT, NoSharedDatabase, add_db_commands, run_with_database
from gateway.errors import (
    CommandError,
    ConfigError,
    DatabaseError,
    DatabaseUnavailable,
    PluginError,
    ServiceUnavailable,
)
from gateway.healthcheck import add_command as add_healthcheck_command
from gateway.iam_cli import add_iam_commands
from gateway.login_cli import add_commands as add_login_commands
from gateway.logs import configure_logging
from gateway.plugin_host import PluginHost, disabled_from_env
from gateway.simulate_cli import add_simulate_command

if TYPE_CHECKING:  # aiohttp is imported only by the commands that serve (credential-process starts fast)
    from aiohttp import web

    from gateway.db import IamDatabase
    from gateway.web.tls import TlsFiles

__all__ = [
    "add_config_argument",
    "build_parser",
    "explain",
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
    parser.add_argument(
        "--debug", action="store_true", help="on a failure, print the traceback beside the one-line message"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the gateway",
        description="Run the gateway: the STS and IAM Query API on /, the reverse proxy for configured "
        "upstreams, the /sso/ sign-in pages when configured, /healthz, /readyz and /metrics. "
        "Stops cleanly on SIGINT and SIGTERM; SIGHUP reloads the configuration (what can change "
        "without a restart) and the TLS certificate files.",
    )
    add_config_argument(serve)
    serve.add_argument("--host", help="address to bind (overrides listen.host)")
    serve.add_argument("--port", type=int, help="TCP port (overrides listen.port)")
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="worker processes on one port, each with its own socket (SO_REUSEPORT; default 1); "
        "with N > 1 use the redis store and a database file or server (database.url)",
    )
    serve.set_defaults(handler=_serve)

    add_check_command(sub)

    revoke = sub.add_parser(
        "revoke-sessions",
        help="revoke every session of a role, or of an IAM user, issued before a moment",
        description="Revoke every session of a role issued before a moment (default: now), or with "
        "--user every session an IAM user asked for (GetSessionToken, GetFederationToken, and the "
        "sessions chained from them). The "
        "revocation is written to the IAM database (database.url, SQLite or PostgreSQL), where it "
        "survives restarts, and every gateway using that database refuses those sessions within its "
        "watcher's bound (at once with PostgreSQL notifications, else within "
        "database.poll_interval_seconds).",
    )
    add_config_argument(revoke)
    whose = revoke.add_mutually_exclusive_group(required=True)
    whose.add_argument("--role", help="role name or ARN, as configured")
    whose.add_argument("--user", help="IAM user name or ARN (declared in the file or in the database)")
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
    from gateway.startup import load, preflight
    from gateway.web.tls import TlsFiles

    config, host = load(args.config)
    database = target_for(config.database)
    if args.workers > 1 and database.in_memory:
        raise CommandError(
            f"--workers {args.workers} needs a database the workers share: {MEMORY_DATABASE_HINT}"
        )
    preflight(config)  # in this process, before binding or forking: one message, not one per worker
    configure_logging(config.log_level)
    bind_host = args.host or config.listen.host
    port = args.port if args.port is not None else config.listen.port
    if args.workers > 1:
        config = _shared_secrets(config)
    # Loaded here, once, so that unusable files are one error before anything is bound or forked.
    tls = TlsFiles(config.listen.tls) if config.listen.tls is not None else None
    app = create_app(config, host=host)  # here, so a plugin's refusal is said once, not per worker
    # With workers, each binds its own socket to this address (SO_REUSEPORT): the kernel then
    # spreads connections evenly, where one shared socket let one worker take nearly all of them.
    balanced = args.workers > 1 and hasattr(socket, "SO_REUSEPORT")
    sock = _listen(bind_host, port, reuse_port=balanced)
    log.info(
        "fedgate starting",
        extra={
            "listen": f"{bind_host}:{sock.getsockname()[1]}",
            "store": config.store.backend,
            "database": "memory" if database.in_memory else database.backend,
            "plugins": host.names(),
            "workers": args.workers,
        },
    )
    if args.workers > 1:
        return _serve_workers(app, sock, args.workers, args.config, tls)
    _run_reloadable(app, args.config, tls, sock=sock)
    log.info("fedgate stopped")
    return 0


def _listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A socket bound to ``host``:``port``; :class:`CommandError` when it cannot be.

    Listening, unless ``reuse_port``: then it only holds the address (a port 0 resolved, errors
    said once) for the workers' own listening sockets (:func:`_worker_socket`); a socket that
    does not listen is given no connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"cannot listen on {host}:{port}: the address is already in use; stop the server using it "
                "or choose another port (--port or listen.port)"
            ) from None
        if exc.errno == errno.EACCES:
            raise CommandError(
                f"cannot listen on {host}:{port}: permission denied; use a port above 1023 (--port or "
                "listen.port)"
            ) from None
        raise CommandError(
            f"cannot listen on {host}:{port}: {exc.strerror}; check --host and listen.host"
        ) from None
    if not reuse_port:
        sock.listen(_BACKLOG)
    return sock


_BACKLOG = 1024


def _worker_socket(held: socket.socket) -> socket.socket:
    """In a worker: its own socket listening on the address ``held`` (bound by :func:`_listen`
    with ``reuse_port``) holds, or ``held`` itself when that was bound to be shared."""
    if not hasattr(socket, "SO_REUSEPORT") or not held.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
        return held
    own = socket.socket(held.family, socket.SOCK_STREAM)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    own.bind(held.getsockname())
    own.listen(_BACKLOG)
    held.close()
    return own


def _run_reloadable(app: web.Application, path: str, tls: TlsFiles | None, **where: Any) -> None:
    """Serve ``app``, reloading ``path`` on SIGHUP."""
    import asyncio

    from gateway import keys
    from gateway.reload import Reloader
    from gateway.web.server import run

    reloader = Reloader(app, path)
    loop = app[keys.CONFIG].listen.event_loop
    try:
        run(app, tls=tls, on_hangup=reloader.reload, event_loop=loop, **where)
    finally:
        if reloader.retiring:
            asyncio.run(reloader.close())


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


def _serve_workers(
    app: web.Application, sock: socket.socket, workers: int, path: str, tls: TlsFiles | None
) -> int:
    """Serve ``app`` with ``workers`` forked processes accepting on ``sock``, bound here."""
    from gateway import keys

    if not app[keys.CONFIG].metrics.enabled:
        return _fork_workers(app, sock, workers, path, tls, None)
    from gateway.metrics import multiprocess_directory

    # Every worker maps its samples into this run's directory; a scrape merges them all.
    with multiprocess_directory() as directory:
        return _fork_workers(app, sock, workers, path, tls, directory)


def _fork_workers(
    app: web.Application,
    sock: socket.socket,
    workers: int,
    path: str,
    tls: TlsFiles | None,
    metrics: Path | None,
) -> int:
    import signal

    sock.set_inheritable(True)
    # A worker that fails in a way a user can fix writes its one line here; the parent prints each
    # distinct line once.
    reasons_in, reasons_out = os.pipe()
    children: list[int] = []
    # Until the parent forwards SIGHUP (below) and a worker's loop handles it, it must not kill.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the worker
            os.close(reasons_in)
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops workers with SIGTERM
                _run_reloadable(app, path, tls, sock=_worker_socket(sock))
            except BaseException as exc:
                reason = explain(exc)
                if reason is None:
                    log.exception("worker failed")
                    code = 1
                else:
                    os.write(reasons_out, (reason + "\n").encode())
                    code = 2
            os._exit(code)
        children.append(pid)
    sock.close()
    os.close(reasons_out)

    def stop(signum: int, frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    def hangup(signum: int, frame: object) -> None:
        for child in children:  # each worker reloads the configuration itself
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGHUP)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, hangup)
    status = 0
    for child in children:
        while True:
            try:
                _, code = os.waitpid(child, 0)
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
                continue
        if metrics is not None:
            from gateway.metrics import worker_exited

            worker_exited(metrics, child)
        exit_code = os.waitstatus_to_exitcode(code)
        if exit_code not in (0, -signal.SIGTERM):
            status = max(status, exit_code if exit_code == 2 else 1)
    with os.fdopen(reasons_in, "rb") as pipe:
        reasons = list(dict.fromkeys(pipe.read().decode(errors="replace").splitlines()))
    for reason in reasons:
        print(f"fedgate: {reason}", file=sys.stderr)
    log.info("fedgate stopped")
    return status


def _revoke_sessions(args: argparse.Namespace) -> int:
    from datetime import datetime

    from gateway.credentials import revoke_role_sessions, revoke_user_sessions
    from gateway.startup import load

    config, _ = load(args.config)
    role_arn: str | None = None
    if args.role is not None:
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

    scope = role_arn or ""

    async def revoke(db: IamDatabase) -> float:
        nonlocal scope
        if role_arn is not None:
            return await revoke_role_sessions(db, role_arn, before)
        scope = await _user_arn(config, db, args.user)
        return await revoke_user_sessions(db, scope, before)

    try:
        cutoff = run_with_database(config, revoke)
    except NoSharedDatabase:
        print(
            f"fedgate: revoke-sessions needs a database shared with the gateway: {MEMORY_DATABASE_HINT}",
            file=sys.stderr,
        )
        return 2
    stamp = datetime.fromtimestamp(cutoff, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(f"{scope}: sessions issued before {stamp} are revoked")
    return 0


async def _user_arn(config: GatewayConfig, db: IamDatabase, given: str) -> str:
    """The ARN of the IAM user ``given`` (a name or an ARN): declared in the file or in ``db``."""
    from gateway.arns import user_arn

    if given.startswith("arn:"):
        return given
    for user in config.users:
        if user.name.lower() == given.lower():
            return user_arn(config.account_id, user.path, user.name)
    async with db.read() as tx:
        found = await tx.users.get(given)
    if found is None:
        raise ConfigError(f"--user: no user named {given!r} in the file or the database")
    arn: str = found.arn
    return arn


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


def explain(exc: BaseException) -> str | None:
    """The message (naming the cause and the fix) for a failure a user can cause; ``None`` for a bug.

    One line per problem: an invalid configuration lists each key path on its own line.
    """
    if isinstance(exc, ConfigError):
        return "\n".join(f"invalid configuration: {line}" for line in str(exc).splitlines() or ["?"])
    if isinstance(exc, PluginError):
        return f"plugin error: {exc} (disable a plugin with FEDGATE_DISABLE_PLUGINS=NAME)"
    if isinstance(exc, DatabaseUnavailable):
        from gateway.db import unavailable_reason

        return (
            f"the IAM database is unreachable ({unavailable_reason(exc)}); check database.url and that the "
            "server is running"
        )
    if isinstance(exc, DatabaseError | CommandError):
        return f"database: {exc}" if isinstance(exc, DatabaseError) else str(exc)
    if isinstance(exc, ServiceUnavailable):
        what = exc.message or "a service fedgate needs is unavailable"
        return f"{what}; check store.url and that Redis is running"
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}; check the path and its permissions"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fedgate`` console script.

    The one place a failure becomes what the user reads: :func:`explain`'s lines on stderr and exit
    status 2 (the traceback too with ``--debug``); anything it cannot explain is a bug and keeps
    its traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, before or after the command
    argv = [arg for arg in argv if arg != "--debug"]
    try:
        host = PluginHost(disabled=disabled_from_env())
        parser = build_parser(host)
        args = parser.parse_args(argv)
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        reason = explain(exc)
        if reason is None:
            raise
        if debug:
            traceback.print_exc()
        for line in reason.splitlines():
            print(f"fedgate: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
