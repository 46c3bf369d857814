"""The rules every new session follows, whichever AssumeRole* action makes it.

How long it may last (the role's ``MaxSessionDuration``, the identity provider's limits, one hour
for role chaining), its session policies and their packed size, and what a chained session
inherits from the session that assumed it (transitive tags, and the sessions it descends from).
Pure functions over validated parameters.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.credentials import SessionClaims
from gateway.credentials.claims import ROLE_SESSION
from gateway.errors import (
    AccessDenied,
    ExpiredToken,
    InvalidParameterValue,
    PackedPolicyTooLarge,
    ValidationError,
)
from gateway.iam.catalog import CatalogSnapshot, Role
from gateway.identity import Identity
from gateway.policy import Policy, minify, parse_policy

__all__ = [
    "CHAINED_SESSION_LIMIT",
    "PACKED_LIMIT_BYTES",
    "Inherited",
    "SessionArgs",
    "effective_duration",
    "inherit",
    "packed_size",
    "request_parameters",
    "session_policy_of",
    "within_max_session_duration",
]

# AWS reports PackedPolicySize as a percentage of an undisclosed limit on the compressed session
# policy and tags; fedgate uses 2,048 compressed bytes.
PACKED_LIMIT_BYTES = 2048
#: The longest session role chaining may ask for, in seconds (AWS's fixed one hour).
CHAINED_SESSION_LIMIT = 3600


class SessionArgs(Protocol):
    """What every way of assuming a role asks for (the AssumeRole* parameters share these)."""

    @property
    def role_arn(self) -> str: ...
    @property
    def duration_seconds(self) -> int: ...
    @property
    def policy(self) -> str | None: ...
    @property
    def policy_arns(self) -> tuple[str, ...]: ...


def request_parameters(args: SessionArgs, session_name: str | None) -> dict[str, Any]:
    """What every AssumeRole* call records of its request (``None`` values are left out later)."""
    return {
        "roleArn": args.role_arn,
        "roleSessionName": session_name,
        "durationSeconds": args.duration_seconds,
        "policyArns": list(args.policy_arns) or None,
        "policy": args.policy,
    }


def within_max_session_duration(role: Role, requested: int) -> None:
    """``ValidationError`` when ``requested`` seconds exceed the role's ``MaxSessionDuration``."""
    if requested > role.max_session_duration:
        raise ValidationError(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        )


@dataclass(frozen=True, slots=True)
class Inherited:
    """What an AssumeRole session gets from the request and, when chained, from its caller."""

    tags: Mapping[str, str]
    transitive_tag_keys: tuple[str, ...]
    source_identity: str | None
    chain: tuple[tuple[str, float], ...]
    source_key_id: str = ""


def inherit(
    parent: SessionClaims | None,
    tags: Mapping[str, str],
    transitive_tag_keys: Sequence[str],
    source_identity: str | None,
) -> Inherited:
    """The tags, transitive keys, source identity and chain of a session assumed by ``parent``
    (``None``: a caller that is no session) with the request's ``tags``, ``transitive_tag_keys``
    and ``source_identity``.

    A chained session carries its caller's transitive tags, which the request may not pass again
    (``InvalidParameterValue``), and its caller's source identity, which the request may repeat
    but not change (``AccessDenied``); it descends from its caller and its caller's chain. A caller
    that is a user's own session (``GetSessionToken``) is the chain's first link, by the user's
    ARN, and the long-term key that asked for it goes along (revoking either revokes the chain).
    """
    if parent is None:
        return Inherited(dict(tags), tuple(transitive_tag_keys), source_identity, ())
    carried = {k: parent.tags[k] for k in parent.transitive_tag_keys if k in parent.tags}
    lowered = {k.lower() for k in carried}
    clash = sorted(k for k in tags if k.lower() in lowered)
    if clash:
        raise InvalidParameterValue(
            f"The session tag {clash[0]} is a transitive tag of the calling session and cannot be overridden"
        )
    if parent.source_identity is not None:
        if source_identity not in (None, parent.source_identity):
            raise AccessDenied(
                "The source identity cannot be changed: the calling session's source identity "
                f"is {parent.source_identity}"
            )
        source_identity = parent.source_identity
    transitive = list(carried)
    transitive += [k for k in transitive_tag_keys if k not in transitive]
    # One entry per role, its earliest session: the most any cutoff of that role can catch.
    earliest: dict[str, float] = {}
    link = parent.role_arn if parent.principal == ROLE_SESSION else parent.user_arn
    for role_arn, issued_at in (*parent.chain, (link, parent.issued_at)):
        known = earliest.get(role_arn)
        earliest[role_arn] = issued_at if known is None else min(known, issued_at)
    return Inherited(
        {**carried, **tags}, tuple(transitive), source_identity, tuple(earliest.items()), parent.source_key_id
    )


def session_policy_of(
    snapshot: CatalogSnapshot, policy: str | None, policy_arns: Sequence[str]
) -> Policy | None:
    parsed = parse_policy(policy, kind="session", name="session-policy") if policy else None
    for arn in policy_arns:
        if snapshot.policy(arn) is None:
            raise InvalidParameterValue(f"Policy {arn[:256]} does not exist or is not attachable.")
    return parsed


def effective_duration(requested: int, identity: Identity, now: float) -> int:
    """AWS's rule: the least of the request (already capped by the role), the provider's
    SessionDuration and the time left before its SessionNotOnOrAfter."""
    duration = requested
    if identity.max_session_duration is not None:
        duration = min(duration, identity.max_session_duration)
    if identity.session_not_on_or_after is not None:
        remaining = int(identity.session_not_on_or_after - now)
        if remaining <= 0:
            raise ExpiredToken("The identity provider's session has ended (SessionNotOnOrAfter)")
        duration = min(duration, remaining)
    return duration


def packed_size(session_policy: Policy | None, raw: str | None, tags: Mapping[str, str]) -> int | None:
    if session_policy is None and not tags:
        return None
    packed = zlib.compress(
        json.dumps([minify(raw) if raw else "", sorted(tags.items())], separators=(",", ":")).encode()
    )
    percent = math.ceil(len(packed) * 100 / PACKED_LIMIT_BYTES)
    if percent > 100:
        raise PackedPolicyTooLarge(
            f"Serialized token too large for session; the session policy and tags use {percent}% "
            "of the allowed size"
        )
    return percent
