"""Which roles a signed-in identity may choose, grouped by account for the role chooser.

The decision is not made here: every catalog role is put to the trust decision STS itself makes
(:func:`gateway.iam.trust.decide_trust`: a SAML identity only gets roles its IdP granted, an OIDC
one every role whose trust policy allows it), with the request's own facts (source address, user
agent, TLS, time). This module keeps only presentation: the choice's fields, grouping and order,
and a session name for the identity. Minting decides again, with the same function.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.context import Transport
from gateway.iam.catalog import CatalogSnapshot
from gateway.iam.trust import decide_trust
from gateway.plugin import Identity

__all__ = ["RoleChoice", "by_account", "choices", "decide_choices", "session_name_for"]

_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]")


@dataclass(frozen=True, slots=True)
class RoleChoice:
    """One role the chooser offers."""

    arn: str
    account: str
    name: str
    description: str
    max_session_duration: int


def choices(
    snapshot: CatalogSnapshot, identity: Identity, *, session_name: str, transport: Transport
) -> list[RoleChoice]:
    """The roles ``identity`` may choose for this request, ordered by account then name.

    Each role is put to the one trust decision STS makes (:func:`gateway.iam.trust.decide_trust`),
    with the same request facts, so the list is exactly what minting will grant.
    """
    return decide_choices(snapshot, identity, session_name=session_name, transport=transport)[0]


def decide_choices(
    snapshot: CatalogSnapshot, identity: Identity, *, session_name: str, transport: Transport
) -> tuple[list[RoleChoice], list[tuple[str, str]]]:
    """:func:`choices`, and ``(role ARN, why)`` for every role not offered."""
    found = []
    refused = []
    for role in snapshot:
        trust = decide_trust(role, identity, session_name=session_name, transport=transport)
        if trust.allowed:
            found.append(
                RoleChoice(role.arn, role.account_id, role.name, role.description, role.max_session_duration)
            )
        elif trust.decision is None:
            refused.append(
                (role.arn, "the identity provider did not grant it (the assertion's Role attribute)")
            )
        else:
            refused.append((role.arn, trust.decision.explain()))
    return sorted(found, key=lambda c: (c.account, c.name.lower())), refused


def by_account(choices: Iterable[RoleChoice]) -> list[tuple[str, list[RoleChoice]]]:
    """``choices`` grouped by account, in order."""
    groups: dict[str, list[RoleChoice]] = {}
    for choice in choices:
        groups.setdefault(choice.account, []).append(choice)
    return list(groups.items())


def session_name_for(
    identity: Identity, claims: Iterable[str] = ("preferred_username", "email", "sub")
) -> str:
    """A valid ``RoleSessionName`` for ``identity``: the SAML one, else the first usable claim."""
    if identity.session_name:
        return identity.session_name
    for claim in claims:
        value = identity.claims.get(claim)
        if isinstance(value, str) and value:
            name = _SESSION_NAME_BAD.sub("-", value)[:64]
            if len(name) >= 2:
                return name
    return "fedgate-user"
