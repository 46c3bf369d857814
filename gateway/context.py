"""What every front door knows about a request, and the global condition keys (``aws:*``) built from it.

The Query endpoint (STS, IAM), the reverse proxy and the browser sign-in pages all describe a request
with one :class:`Transport` (source address, TLS, user agent, referer, time) and read the client's
address with one :class:`TrustedProxies`: ``aws:SourceIp`` is the TCP peer unless that peer is a
trusted proxy, in which case ``X-Forwarded-For`` is read right to left, skipping trusted hops, and the
first untrusted address is the client. A spoofed header from an untrusted peer is therefore ignored.
:func:`global_context` turns a caller (a role session or an IAM user) and its transport into the keys
a permission policy sees.
Pure: the aiohttp adapter that fills a :class:`Transport` is :mod:`gateway.web.request`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.iam.caller import Caller
from gateway.isotime import iso8601_epoch, iso8601_second

__all__ = ["Transport", "TrustedProxies", "caller_keys", "global_context", "request_keys"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The networks whose ``X-Forwarded-For`` is believed."""

    def __init__(self, networks: Sequence[str]) -> None:
        self._networks: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address given the TCP ``peer`` and the ``X-Forwarded-For`` header value."""
        if not self._networks or forwarded_for is None or not self._trusted(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",")][-32:]
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer  # a garbled chain: believe only the peer
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer


@dataclass(frozen=True, slots=True)
class Transport:
    """What the transport knows about a request: the facts every front door can state.

    ``source_ip`` is already resolved through the trusted proxies; ``user_agent`` and ``referer``
    are ``None`` when the request carries none; ``now`` is epoch seconds.
    """

    source_ip: str
    secure: bool
    user_agent: str | None
    referer: str | None
    now: float


def global_context(
    caller: Caller,
    transport: Transport,
    *,
    region: str,
    principal_tags: Mapping[str, str],
) -> dict[str, str | Sequence[str]]:
    """The ``aws:*`` keys (and a session's identity claims) for a request made by ``caller``.

    ``principal_tags`` are the tags of the session's role (session tags override them) or of the
    user. A user signing with a long-term key has no ``aws:TokenIssueTime`` and no
    ``aws:MultiFactorAuthPresent`` (AWS leaves both out for long-term credentials); a user's own
    session (``GetSessionToken``) has both and ``aws:username``; a federated user has no
    ``aws:username``. The keys that stay the same for every request of the caller
    (:func:`caller_keys`) come first, those of this request (:func:`request_keys`) over them.
    """
    context = caller_keys(caller, principal_tags)
    context.update(request_keys(caller, transport, region=region))
    return context


def caller_keys(caller: Caller, principal_tags: Mapping[str, str]) -> dict[str, str | Sequence[str]]:
    """The keys of :func:`global_context` that depend on the caller and its tags only: a session's
    identity claims, ``aws:Principal*``, ``aws:userid``, ``aws:username``, ``aws:TokenIssueTime``,
    ``aws:MultiFactorAuthPresent``, ``aws:FederatedProvider``, ``aws:SourceIdentity`` and
    ``aws:PrincipalTag/*``."""
    claims = caller.session
    context: dict[str, str | Sequence[str]] = (
        {k: v for k, v in claims.identity_claims.items()} if claims is not None else {}
    )
    context.update(
        {
            "aws:PrincipalArn": caller.principal_arn,
            "aws:PrincipalAccount": caller.account_id,
            "aws:PrincipalType": caller.principal_type,
            "aws:userid": caller.user_id,
            "aws:ViaAWSService": "false",
        }
    )
    tags: dict[str, str] = dict(principal_tags)
    if claims is None or caller.user_name is not None:
        context["aws:username"] = caller.user_name or ""
    if claims is not None:
        context["aws:TokenIssueTime"] = iso8601_epoch(claims.issued_at)
        context["aws:MultiFactorAuthPresent"] = "true" if claims.mfa_authenticated else "false"
        if claims.provider_arn:
            context["aws:FederatedProvider"] = claims.provider_arn
        if claims.source_identity:
            context["aws:SourceIdentity"] = claims.source_identity
        tags.update(claims.tags)  # session tags override role tags of the same key
    lowered: dict[str, tuple[str, str]] = {}
    for key, value in tags.items():
        lowered[key.lower()] = (key, value)
    for key, value in lowered.values():
        context[f"aws:PrincipalTag/{key}"] = value
    return context


def request_keys(caller: Caller, transport: Transport, *, region: str) -> dict[str, str]:
    """The keys of :func:`global_context` that each request has its own values of: the source,
    the time, the region, ``aws:MultiFactorAuthAge``, the user agent and the referer."""
    epoch = int(transport.now)
    context = {
        "aws:SourceIp": transport.source_ip,
        "aws:SecureTransport": "true" if transport.secure else "false",
        "aws:CurrentTime": iso8601_second(epoch),
        "aws:EpochTime": str(epoch),
        "aws:RequestedRegion": region,
    }
    claims = caller.session
    if claims is not None and claims.mfa_authenticated:
        # Seconds since the MFA itself (the code's check), else since the session's issue.
        mfa_at = claims.issued_at if claims.mfa_at is None else claims.mfa_at
        context["aws:MultiFactorAuthAge"] = str(max(0, int(transport.now - mfa_at)))
    if transport.user_agent is not None:
        context["aws:UserAgent"] = transport.user_agent
    if transport.referer is not None:
        context["aws:Referer"] = transport.referer
    return context
