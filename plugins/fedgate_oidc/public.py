"""Requests that may reach public addresses only: for issuers whose URL an IAM user chose.

A provider created through the IAM API (``CreateOpenIDConnectProvider``) names a URL fedgate then
fetches discovery and keys from, on any token naming that issuer. Without a limit, anyone allowed
to create a provider could make fedgate send requests into its own network (loopback, private
ranges, link-local cloud metadata). With ``public_network_only``, a host given as an IP literal
must be a public address, and a host name is connected to only through a resolver that refuses the
whole answer when any address it returns is not public: the check is on the addresses the
connection then uses, so a name that later resolves elsewhere (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import final
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["PublicResolver", "is_public_address", "is_public_url"]


def is_public_address(text: str) -> bool:
    """Whether ``text`` is an IP address that is globally reachable (not loopback, private,
    link-local, shared, reserved, multicast or unspecified; IPv4-mapped IPv6 judged as IPv4)."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def is_public_url(url: str) -> bool:
    """Whether ``url``'s host may be asked at all: a name (its addresses are checked on connecting)
    or a public IP literal; ``localhost`` names are refused outright."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return True  # a name
    return is_public_address(host)


@final
class PublicResolver(AbstractResolver):
    """Resolves as the system does, and refuses a name any of whose addresses is not public."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if not found or not all(is_public_address(r["host"]) for r in found):
            raise OSError(f"{host} does not resolve to public addresses only")
        return found

    async def close(self) -> None:
        await self._inner.close()
