"""Small network helpers shared by the core and plugins."""

from __future__ import annotations

import ipaddress
import os
import ssl
from pathlib import Path
from typing import Annotated
from urllib.parse import SplitResult, urlsplit

from pydantic import AfterValidator

from gateway.configpath import ConfigPath
from gateway.errors import ConfigError

__all__ = ["CAFile", "Networks", "ca_bundle_context", "check_https_url", "client_tls", "is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, IPv6 with or without brackets) is this machine.

    Only ``localhost`` counts among names: other names could resolve anywhere.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_https_url(url: str) -> SplitResult:
    """Split ``url`` after checking it is an absolute https URL (plain http only to a loopback host),
    with no credentials and no fragment. Raises ``ValueError`` with a message for a config error.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute https:// URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("must use https (plain http is allowed only to a loopback host)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials")
    if parts.fragment:
        raise ValueError("must not contain a fragment")
    return parts


def ca_bundle_context(path: Path) -> ssl.SSLContext:
    """A client TLS context that trusts only the CA certificates in the PEM file ``path``.

    Hostnames and expiry are checked as usual; the system store (and ``SSL_CERT_FILE``) is not
    consulted. Raises ``ValueError`` with a message for a config error when the file is missing,
    unreadable or holds no certificate.
    """
    try:
        return ssl.create_default_context(cafile=os.fspath(path))
    except OSError as exc:  # ssl.SSLError is an OSError too: no certificate in the file
        why = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        raise ValueError(f"cannot load CA certificates from {path}: {why}") from None


def _loadable(path: Path) -> Path:
    ca_bundle_context(path)  # refused when the configuration loads, not at the first request
    return path


#: A config field naming a PEM CA bundle that must load (``ca_file`` of the providers).
CAFile = Annotated[ConfigPath, AfterValidator(_loadable)]


def _networks(value: list[str]) -> list[str]:
    for net in value:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ValueError(f"{net[:64]!r} is not an IP network") from None
    return value


#: A config field listing IP networks in CIDR form (a bare address is its own /32 or /128).
Networks = Annotated[list[str], AfterValidator(_networks)]


def client_tls(ca_file: Path | None) -> ssl.SSLContext | None:
    """The TLS context of a provider's outgoing requests: ``ca_file`` only (see
    :func:`ca_bundle_context`), or ``None`` for the default trust. A file that stopped loading
    since the configuration was validated is a :class:`~gateway.errors.ConfigError` at start-up."""
    if ca_file is None:
        return None
    try:
        return ca_bundle_context(ca_file)
    except ValueError as exc:
        raise ConfigError(f"ca_file: {exc}") from None
