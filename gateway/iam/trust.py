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

``AssumeRole``, made by a signed :class:`~gateway.iam.caller.Caller` (a role session, a user), is
decided by :func:`decide_assume_role`: the role's trust policy is the role's resource policy and the
caller's own policies take part, as AWS evaluates it. A trust policy naming the caller's session or
user ARN grants on its own; naming the caller's role ARN grants within the caller's session
policies; naming the account (``arn:aws:iam::ACCOUNT:root`` or the bare id) only delegates, so the
caller's identity policies must allow the action on the role too. ``sts:TagSession`` is required
when session tags are passed or transitive tags are carried along the chain, and
``sts:SetSourceIdentity`` when a source identity is set or carried.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import final

from gateway.context import Transport
from gateway.errors import AccessDenied
from gateway.iam import permissions
from gateway.iam.caller import Caller
from gateway.iam.catalog import Role
from gateway.iam.permissions import ContextValue
from gateway.identity import Identity
from gateway.isotime import iso8601_epoch
from gateway.policy import Decision, PolicySet, Request, TrustMemo, evaluate_trust

__all__ = [
    "ASSUME_ROLE",
    "TrustDecision",
    "assume_role_actions",
    "assume_role_context",
    "decide_assume_role",
    "decide_trust",
    "federation_action",
    "idp_grants",
    "required_actions",
    "trust_context",
]

ASSUME_WITH_SAML = "sts:AssumeRoleWithSAML"
ASSUME_WITH_WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
ASSUME_ROLE = "sts:AssumeRole"
TAG_SESSION = "sts:TagSession"
SET_SOURCE_IDENTITY = "sts:SetSourceIdentity"


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
    context: dict[str, str | list[str]] = {k.lower(): v for k, v in identity.condition_keys.items()}
    context.update(
        {
            "aws:federatedprovider": identity.provider_arn,
            "aws:currenttime": iso8601_epoch(transport.now),
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
    role: Role | None,
    identity: Identity,
    *,
    session_name: str,
    transport: Transport,
    memo: TrustMemo | None = None,
) -> TrustDecision:
    """Whether ``identity`` may assume ``role`` (``None``: a role that does not exist).

    ``memo`` remembers decisions by exactly what the trust policy reads (:class:`TrustMemo`), so
    it decides as a fresh evaluation does, faster when the same identity asks again.
    """
    actions = required_actions(identity)
    if role is None or not idp_grants(identity, role.arn):
        return TrustDecision(False, actions[0])
    context = trust_context(identity, session_name=session_name, transport=transport)
    principal = {"Federated": [identity.provider_arn]}
    decision: Decision | None = None
    for action in actions:
        if memo is not None:
            decision = memo.evaluate(
                role.trust, action=action, resource=role.arn, principal=principal, context=context
            )
        else:
            decision = evaluate_trust(
                role.trust, Request(action=action, resource=role.arn, principal=principal, context=context)
            )
        if not decision.allowed:
            return TrustDecision(False, action, decision)
    return TrustDecision(True, actions[0], decision)


def assume_role_actions(*, tagged: bool, source_identity: bool) -> tuple[str, ...]:
    """What ``AssumeRole`` needs allowed: ``sts:AssumeRole``, ``sts:TagSession`` when the new
    session gets tags (passed or carried transitively), ``sts:SetSourceIdentity`` when it gets a
    source identity (set or carried)."""
    actions = [ASSUME_ROLE]
    if tagged:
        actions.append(TAG_SESSION)
    if source_identity:
        actions.append(SET_SOURCE_IDENTITY)
    return tuple(actions)


def assume_role_context(
    caller_context: Mapping[str, ContextValue],
    *,
    session_name: str,
    tags: Mapping[str, str],
    transitive_tag_keys: Sequence[str],
    source_identity: str | None,
    external_id: str | None,
    mfa_age: int | None,
) -> dict[str, ContextValue]:
    """The condition keys an ``AssumeRole`` request's trust and identity policies see.

    The caller's own keys (``caller_context``: ``aws:PrincipalArn``, ``aws:PrincipalTag/...``,
    ``aws:SourceIdentity`` of the calling session...), then the request's:
    ``sts:RoleSessionName``, ``sts:ExternalId``, ``sts:SourceIdentity``, ``aws:RequestTag/...`` and
    ``aws:TagKeys`` for the tags passed, ``sts:TransitiveTagKeys``. ``mfa_age`` is given when the
    request itself brought an MFA code fedgate accepted (seconds since: 0 for a code checked now):
    ``aws:MultiFactorAuthPresent`` is then ``true`` and ``aws:MultiFactorAuthAge`` that age;
    otherwise both stay as the caller's context has them (a session's own MFA, or absent for a
    user's long-term key, as on AWS).
    """
    context: dict[str, ContextValue] = dict(caller_context)
    context["sts:RoleSessionName"] = session_name
    if mfa_age is not None:
        context["aws:MultiFactorAuthPresent"] = "true"
        context["aws:MultiFactorAuthAge"] = str(mfa_age)
    if external_id is not None:
        context["sts:ExternalId"] = external_id
    if source_identity is not None:
        context["sts:SourceIdentity"] = source_identity
    if tags:
        context["aws:TagKeys"] = list(tags)
        for key, value in tags.items():
            context[f"aws:RequestTag/{key}"] = value
    if transitive_tag_keys:
        context["sts:TransitiveTagKeys"] = list(transitive_tag_keys)
    return context


def decide_assume_role(
    role: Role | None,
    caller: Caller,
    *,
    policies: PolicySet,
    actions: Sequence[str],
    context: Mapping[str, ContextValue],
) -> TrustDecision:
    """Whether ``caller``, whose own policies are ``policies``, may assume ``role`` (``None``: no
    such role) for every one of ``actions``.

    The trust policy must allow each action, and then the caller's policies with the trust policy
    in the resource policy's place (see the module docstring); the first refusal is returned.
    """
    if role is None:
        return TrustDecision(False, actions[0])
    combined = PolicySet(
        identity=policies.identity, resource=role.trust, boundary=policies.boundary, session=policies.session
    )
    same_account = caller.account_id == role.account_id
    who = permissions.principal(caller)
    decision: Decision | None = None
    for action in actions:
        request = Request(action=action, resource=role.arn, principal=who, context=context)
        # Unlike other resources, a role is never assumed on identity policies alone: its trust
        # policy must name the caller (by session, role, user or account) first.
        decision = evaluate_trust(role.trust, request)
        if decision.allowed:
            decision = combined.decide(request, same_account=same_account)
        if not decision.allowed:
            return TrustDecision(False, action, decision)
    return TrustDecision(True, actions[0], decision)
