"""``fedgate dev-token``: mint a token from the development issuer."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fedgate_devissuer.config import DevIssuerSettings
from gateway.errors import ConfigError

__all__ = ["add_command"]


def add_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``dev-token``."""
    from gateway.plugin import add_config_argument

    parser = subparsers.add_parser(
        "dev-token",
        help="mint an OIDC token from the development issuer",
        description="Mint a signed OIDC token from the development issuer configured in the "
        "dev_issuer section (for demos and local testing only). Prints the token.",
    )
    add_config_argument(parser)
    parser.add_argument("--sub", default="developer", help="subject claim (default: developer)")
    parser.add_argument("--aud", help="audience claim (default: dev_issuer.audience)")
    parser.add_argument("--lifetime", type=int, help="seconds until the token expires")
    parser.add_argument(
        "--claim",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="extra claim; the value is JSON if it parses, else a string (repeatable)",
    )
    parser.add_argument("-o", "--output", help="write the token to this file instead of stdout")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from gateway.plugin import load_config

    config = load_config(args.config)
    settings = config.sections.get("dev_issuer")
    if not isinstance(settings, DevIssuerSettings):
        raise ConfigError("dev_issuer: the configuration has no dev_issuer section")
    extra: dict[str, Any] = {}
    for item in args.claim:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--claim {item!r}: expected NAME=VALUE")
        try:
            extra[name] = json.loads(value)
        except ValueError:
            extra[name] = value
    from fedgate_devissuer.issuer import DevIssuer  # joserfc: only when a token is minted

    token = DevIssuer(settings).mint(args.sub, audience=args.aud, lifetime=args.lifetime, extra=extra)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(token)
    else:
        sys.stdout.write(token + "\n")
    return 0
