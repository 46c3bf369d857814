"""``fedgate healthcheck``: probe a running gateway on the port its configuration names.

Container health checks call this instead of hard-coding a port: it reads ``listen`` from the
same file ``fedgate serve`` reads (``-c`` or ``$FEDGATE_CONFIG``), so changing the port in the
configuration moves the probe with it. ``GET /healthz`` (alive) by default, ``GET /readyz``
(ready to serve: the store answers) with ``--ready``; over HTTPS when ``listen.tls`` is set (the
certificate is not verified: the probe asks this host's own server whether it is up).

The exit status follows Docker's ``HEALTHCHECK`` contract, not the usual CLI one: 0 healthy, 1
unhealthy, and 1 as well when the probe cannot even be aimed (an unreadable configuration, port 0),
because Docker reserves 2. One line on stderr says why.

Images run it as ``python -m gateway.healthcheck`` rather than through the ``fedgate`` command:
the command loads every plugin before parsing its arguments (about a second of CPU), which a probe
run every few seconds should not pay. Only the ``listen`` section is validated here (with the
server's own model), so a probe never reads a secret.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pydantic

from gateway.config import ListenSettings, format_validation_error, read_yaml
from gateway.errors import ConfigError

__all__ = ["add_command", "main", "probe", "probe_url", "run"]

HEALTHY, UNHEALTHY = 0, 1
_WILDCARDS = {"", "0.0.0.0", "::"}  # noqa: S104 - names of "every address", compared, never bound


def probe_url(
    config_path: str | Path, *, ready: bool = False, host: str | None = None, port: int | None = None
) -> str:
    """The URL to probe for the server configured in ``config_path``.

    ``host`` and ``port`` override ``listen.host`` and ``listen.port`` exactly as ``fedgate serve
    --host/--port`` do. A server bound to every address (or to loopback) is probed on loopback,
    of the same family. Raises :class:`ConfigError` when the file or its ``listen`` is unusable.
    """
    raw = read_yaml(Path(config_path))
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    try:
        listen = ListenSettings.model_validate(raw.get("listen") or {})
        if overrides:  # validated as the file's own values are
            listen = ListenSettings.model_validate({**listen.model_dump(), **overrides})
    except pydantic.ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "listen")) from None
    if listen.port == 0:
        raise ConfigError("listen.port is 0 (a free port is picked at start): give --port")
    target = listen.host.strip("[]")
    if target in _WILDCARDS:
        target = "::1" if ":" in target else "127.0.0.1"
    try:
        literal = ipaddress.ip_address(target)
    except ValueError:
        literal = None
    netloc = f"[{target}]" if literal is not None and literal.version == 6 else target
    scheme = "https" if listen.tls is not None else "http"
    return f"{scheme}://{netloc}:{listen.port}/{'readyz' if ready else 'healthz'}"


def probe(url: str, *, timeout: float) -> str | None:
    """GET ``url``: ``None`` when it answers 200, else a short reason (never the body)."""
    # S310: plain http to an address taken from the operator's own configuration, not a request's;
    # never through $HTTP_PROXY, which a gateway reaching identity providers may well have set.
    request = urllib.request.Request(url, method="GET")  # noqa: S310
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if url.startswith("https://"):
        # The probe asks the server on this host whether it is up, over loopback, where the name
        # its certificate carries is not the address probed: it checks liveness, not identity.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{url}: no answer ({reason})"
    return None if status == 200 else f"{url}: answered {status}"


_DESCRIPTION = (
    "GET /healthz (or /readyz with --ready) on the address and port the configuration's listen "
    "section names. Exit 0 when it answers 200, else 1 with one line saying why (Docker's "
    "HEALTHCHECK contract). Images run it as `python -m gateway.healthcheck`, which skips loading plugins."
)


def add_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``fedgate healthcheck`` on ``subparsers`` (the ``fedgate`` command's)."""
    _add_options(
        subparsers.add_parser(
            "healthcheck",
            help="probe a running gateway on its configured port (for container health checks)",
            description=_DESCRIPTION,
        )
    )


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        default=os.environ.get("FEDGATE_CONFIG"),
        metavar="FILE",
        help="the configuration the server runs with; defaults to $FEDGATE_CONFIG",
    )
    p.add_argument("--ready", action="store_true", help="probe /readyz (can serve) instead of /healthz")
    p.add_argument("--host", help="the address serve was given with --host, if it overrode listen.host")
    p.add_argument(
        "--port", type=int, help="the port serve was given with --port, if it overrode listen.port"
    )
    p.add_argument("--timeout", type=_seconds, default=3.0, metavar="SECONDS", help="default 3")
    p.set_defaults(handler=run)


def _seconds(value: str) -> float:
    number = float(value)
    if not 0 < number <= 300:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 300")
    return number


def run(args: argparse.Namespace) -> int:
    """Handle ``healthcheck``: probe and report; the exit status is Docker's."""
    if not args.config:
        print("fedgate healthcheck: no configuration: give -c FILE or set $FEDGATE_CONFIG", file=sys.stderr)
        return UNHEALTHY
    try:
        url = probe_url(args.config, ready=args.ready, host=args.host, port=args.port)
    except ConfigError as exc:
        print(f"fedgate healthcheck: {exc}".replace("\n", "; "), file=sys.stderr)
        return UNHEALTHY
    problem = probe(url, timeout=args.timeout)
    if problem is not None:
        print(f"fedgate healthcheck: {problem}", file=sys.stderr)
        return UNHEALTHY
    return HEALTHY


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gateway.healthcheck [options]``: the probe without loading plugins."""
    parser = argparse.ArgumentParser(prog="python -m gateway.healthcheck", description=_DESCRIPTION)
    _add_options(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    sys.exit(main())
