"""The global condition keys of a proxied request (``aws:*``), from the session and the transport.

``aws:SourceIp`` is the TCP peer unless that peer is a trusted proxy, in which case
``X-Forwarded-For`` is read right to left, skipping trusted hops, and the first untrusted address
is the client. A spoofed header from an untrusted peer is therefore ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.credentials import SessionClaims
from gateway.sigv4 import SignatureInfo

__all__ = ["Transport", "TrustedProxies", "global_context", "s3_signature_context"]

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
    """What the transport knows about a request."""

    source_ip: str
    secure: bool
    user_agent: str | None
    referer: str | None
    now: float


def global_context(
    claims: SessionClaims,
    transport: Transport,
    *,
    region: str,
    role_tags: Mapping[str, str],
) -> dict[str, str | Sequence[str]]:
    """The ``aws:*`` keys (and the session's identity claims) for a request made by ``claims``."""
    moment = datetime.fromtimestamp(transport.now, UTC)
    context: dict[str, str | Sequence[str]] = {k: v for k, v in claims.identity_claims.items()}
    context.update(
        {
            "aws:SourceIp": transport.source_ip,
            "aws:SecureTransport": "true" if transport.secure else "false",
            "aws:CurrentTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(transport.now)),
            "aws:RequestedRegion": region,
            "aws:PrincipalArn": claims.role_arn,
            "aws:PrincipalAccount": claims.account_id,
            "aws:PrincipalType": "AssumedRole",
            "aws:userid": claims.assumed_role_id,
            "aws:TokenIssueTime": datetime.fromtimestamp(claims.issued_at, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "aws:MultiFactorAuthPresent": "true" if claims.mfa_authenticated else "false",
            "aws:ViaAWSService": "false",
        }
    )
    if claims.mfa_authenticated:
        context["aws:MultiFactorAuthAge"] = str(max(0, int(transport.now - claims.issued_at)))
    if claims.provider_arn:
        context["aws:FederatedProvider"] = claims.provider_arn
    if claims.source_identity:
        context["aws:SourceIdentity"] = claims.source_identity
    if transport.user_agent is not None:
        context["aws:UserAgent"] = transport.user_agent
    if transport.referer is not None:
        context["aws:Referer"] = transport.referer
    tags = {**role_tags, **claims.tags}  # session tags override role tags of the same key
    lowered: dict[str, tuple[str, str]] = {}
    for key, value in tags.items():
        lowered[key.lower()] = (key, value)
    for key, value in lowered.values():
        context[f"aws:PrincipalTag/{key}"] = value
    return context


def s3_signature_context(
    info: SignatureInfo, payload_hash: str, now: float
) -> dict[str, str | Sequence[str]]:
    """S3's signature condition keys: ``s3:authType``, ``s3:signatureversion``, ``s3:signatureAge``..."""
    age_ms = max(0, int((now - info.amz_date.timestamp()) * 1000))
    return {
        "s3:authType": "REST-HEADER" if info.form == "header" else "REST-QUERY-STRING",
        "s3:signatureversion": "AWS4-HMAC-SHA256",
        "s3:signatureAge": str(age_ms),
        "s3:x-amz-content-sha256": payload_hash,
    }
