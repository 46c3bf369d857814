"""Which roles a signed-in identity may choose, grouped by account for the role chooser.

A SAML identity may choose the roles its IdP granted (the ``Role`` attribute) that exist here; an
OIDC identity grants no roles, so it may choose every role whose trust policy allows it for
``sts:AssumeRoleWithWebIdentity``. Either way the list is evaluated with the policy engine, the
same way STS will decide; it is only a preview: minting decides again, authoritatively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import final

from gateway.config import GatewayConfig, RoleSettings
from gateway.identity import Identity
from gateway.policy import CompiledPolicy, Policy, Request, evaluate_trust, parse_policy

__all__ = ["RoleCatalog", "RoleChoice", "by_account", "session_name_for"]

_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]")


@dataclass(frozen=True, slots=True)
class RoleChoice:
    """One role the chooser offers."""

    arn: str
    account: str
    name: str
    description: str
    max_session_duration: int


@final
class RoleCatalog:
    """The configured roles with their trust policies parsed once."""

    def __init__(self, config: GatewayConfig) -> None:
        self._roles: dict[str, tuple[RoleSettings, Policy | CompiledPolicy]] = {
            config.role_arn(role): (role, parse_policy(role.trust_policy, kind="trust", name=role.name))
            for role in config.roles
        }

    def get(self, arn: str) -> RoleSettings | None:
        """The role ``arn`` names, if configured."""
        found = self._roles.get(arn)
        return found[0] if found else None

    def choices(self, identity: Identity, *, session_name: str, now: float, secure: bool) -> list[RoleChoice]:
        """The roles ``identity`` may choose, ordered by account then name."""
        if identity.kind == "saml":
            granted = {arn for arn, provider in identity.roles if provider == identity.provider_arn}
            action = "sts:AssumeRoleWithSAML"
        else:
            granted = set(self._roles)
            action = "sts:AssumeRoleWithWebIdentity"
        actions = [action]
        if identity.session_tags:
            actions.append("sts:TagSession")
        if identity.source_identity is not None:
            actions.append("sts:SetSourceIdentity")
        context = _context(identity, session_name, now, secure)
        principal = {"Federated": [identity.provider_arn]}
        found = []
        for arn in granted:
            entry = self._roles.get(arn)
            if entry is None:
                continue
            role, trust = entry
            if all(
                evaluate_trust(
                    trust, Request(action=a, resource=arn, principal=principal, context=context)
                ).allowed
                for a in actions
            ):
                account = arn.split(":")[4]
                found.append(RoleChoice(arn, account, role.name, role.description, role.max_session_duration))
        return sorted(found, key=lambda c: (c.account, c.name.lower()))


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


def _context(identity: Identity, session_name: str, now: float, secure: bool) -> dict[str, str | list[str]]:
    moment = datetime.fromtimestamp(now, UTC)
    context: dict[str, str | list[str]] = {k.lower(): v for k, v in identity.condition_keys.items()}
    context.update(
        {
            "aws:federatedprovider": identity.provider_arn,
            "aws:currenttime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:epochtime": str(int(now)),
            "aws:securetransport": "true" if secure else "false",
            "sts:rolesessionname": session_name,
        }
    )
    if identity.session_tags:
        context["aws:tagkeys"] = list(identity.session_tags)
        for key, value in identity.session_tags.items():
            context[f"aws:requesttag/{key.lower()}"] = value
    return context
