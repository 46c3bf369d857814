"""The one trust decision: may this identity assume this role, for this session, in this request?

STS's ``AssumeRoleWithWebIdentity`` and ``AssumeRoleWithSAML``, the browser and CLI sign-in and
the role chooser all call :func:`decide_trust`, so the chooser offers exactly the roles minting
will grant for the same request. The decision is pure: it reads a catalog :class:`Role`, the
verified :class:`~gateway.identity.Identity`, the role session name and the request's
:class:`~gateway.context.Transport`, builds the trust policy's context in one place
(:func:`trust_context`) and evaluates every action AWS requires:

* ``sts:AssumeRoleWithSAML`` for a SAML identity, ``sts:AssumeRoleWithWebIdentity`` for any other;
* ``sts:TagSession`` too when the identity passes session tags;
* ``sts:SetSourceIdentity`` too when it asserts a source identity.

A SAML identity may only assume roles its IdP granted (the assertion's ``Role`` attribute). A role
that does not exist is refused exactly like a forbidden one, so roles cannot be enumerated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import final

from gateway.context import Transport
from gateway.errors import AccessDenied
from gateway.iam.catalog import Role
from gateway.identity import Identity
from gateway.policy import Decision, Request, evaluate_trust

__all__ = [
    "TrustDecision",
    "decide_trust",
    "federation_action",
    "idp_grants",
    "required_actions",
    "trust_context",
]

ASSUME_WITH_SAML = "sts:AssumeRoleWithSAML"
ASSUME_WITH_WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"


@final
@dataclass(frozen=True, slots=True)
class TrustDecision:
    """The outcome: ``action`` is the first action refused, or the federation action if allowed.

    ``decision`` is the policy engine's decision for ``action`` (``None`` when no policy was
    evaluated: an unknown role, or a role the IdP did not grant).
    """

    allowed: bool
    action: str
    decision: Decision | None = None

    def error(self) -> AccessDenied:
        """The AccessDenied an API answers a refusal with."""
        return AccessDenied(f"Not authorized to perform {self.action}")


def federation_action(identity: Identity) -> str:
    """The STS action an identity of this kind assumes roles with."""
    return ASSUME_WITH_SAML if identity.kind == "saml" else ASSUME_WITH_WEB_IDENTITY


def required_actions(identity: Identity) -> tuple[str, ...]:
    """Every action the trust policy must allow for ``identity`` (see the module docstring)."""
    actions = [federation_action(identity)]
    if identity.session_tags:
        # AWS requires sts:TagSession in the trust policy when the IdP passes session tags,
        # and sts:SetSourceIdentity when it asserts a source identity.
        actions.append("sts:TagSession")
    if identity.source_identity is not None:
        actions.append("sts:SetSourceIdentity")
    return tuple(actions)


def idp_grants(identity: Identity, role_arn: str) -> bool:
    """Whether the identity's IdP lets it use ``role_arn``: always for OIDC, which grants no roles;
    for SAML only a role the assertion lists with this very provider."""
    if identity.kind != "saml":
        return True
    return (role_arn, identity.provider_arn) in identity.roles


def trust_context(
    identity: Identity, *, session_name: str, transport: Transport
) -> dict[str, str | list[str]]:
    """The condition keys a trust policy sees, lower-cased (as the engine compares them)."""
    moment = datetime.fromtimestamp(transport.now, UTC)
    context: dict[str, str | list[str]] = {k.lower(): v for k, v in identity.condition_keys.items()}
    context.update(
        {
            "aws:federatedprovider": identity.provider_arn,
            "aws:currenttime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:epochtime": str(int(transport.now)),
            "aws:sourceip": transport.source_ip,
            "aws:useragent": transport.user_agent or "",
            "aws:securetransport": "true" if transport.secure else "false",
            "sts:rolesessionname": session_name,
        }
    )
    tags = identity.session_tags
    if tags:
        context["aws:tagkeys"] = list(tags)
        for key, value in tags.items():
            context[f"aws:requesttag/{key.lower()}"] = value
    if identity.transitive_tag_keys:
        context["sts:transitivetagkeys"] = list(identity.transitive_tag_keys)
    return context


def decide_trust(
    role: Role | None, identity: Identity, *, session_name: str, transport: Transport
) -> TrustDecision:
    """Whether ``identity`` may assume ``role`` (``None``: a role that does not exist)."""
    actions = required_actions(identity)
    if role is None or not idp_grants(identity, role.arn):
        return TrustDecision(False, actions[0])
    context = trust_context(identity, session_name=session_name, transport=transport)
    principal = {"Federated": [identity.provider_arn]}
    decision: Decision | None = None
    for action in actions:
        decision = evaluate_trust(
            role.trust, Request(action=action, resource=role.arn, principal=principal, context=context)
        )
        if not decision.allowed:
            return TrustDecision(False, action, decision)
    return TrustDecision(True, actions[0], decision)
