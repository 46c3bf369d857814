"""A signed caller as the decisions about its call see it: who it is, its policies, its context.

The STS actions a signed caller makes (``AssumeRole``, ``DecodeAuthorizationMessage``,
``GetAccessKeyInfo``) decide with a :class:`Caller` rather than with the credentials that signed
the call, so the same decisions serve every kind of caller: a role session today
(:func:`session_caller`), an IAM user signing with a long-term key once users exist. Pure: built
from the :class:`~gateway.iam.catalog.CatalogSnapshot` taken for the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import final

from gateway.context import Transport
from gateway.credentials import SessionClaims
from gateway.iam import permissions
from gateway.iam.catalog import CatalogSnapshot
from gateway.iam.permissions import ContextValue
from gateway.policy import Decision, PolicySet, Request

__all__ = ["Caller", "session_caller"]


@final
@dataclass(frozen=True, slots=True)
class Caller:
    """Who signed a call, and what the policy engine needs to decide what it may do.

    Attributes:
        arn: the caller's own ARN (``assumed-role/NAME/SESSION``, a user's ARN).
        principal_id: its unique id, as ``aws:userid`` and ``GetCallerIdentity``'s ``UserId``.
        account_id: the account it belongs to.
        principal: every ARN a policy's ``Principal`` may name it by (for a session its ARN and its
            role's ARN).
        policies: its permission policies (identity, boundary and session policies).
        context: the global condition keys of its requests (``aws:PrincipalArn``,
            ``aws:PrincipalTag/...``, ``aws:SourceIdentity``, ``aws:SourceIp``...).
        session: the session whose credentials signed the call, or ``None`` for a long-term key.
    """

    arn: str
    principal_id: str
    account_id: str
    principal: Mapping[str, Sequence[str]]
    policies: PolicySet
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    session: SessionClaims | None = None

    def decide(self, action: str, resource: str, extra: Mapping[str, ContextValue] | None = None) -> Decision:
        """May the caller do ``action`` on ``resource`` by its own policies (``extra``: more keys)?"""
        context = {**self.context, **extra} if extra else self.context
        return self.policies.decide(
            Request(action=action, resource=resource, principal=self.principal, context=context)
        )

    def not_authorized(self, action: str, resource: str) -> str:
        """AWS's AccessDenied message for a refused ``action`` on ``resource``."""
        return f"User: {self.arn} is not authorized to perform: {action} on resource: {resource}"


def session_caller(
    snapshot: CatalogSnapshot, claims: SessionClaims, transport: Transport, *, region: str
) -> Caller:
    """The caller a role session is: its role's policies with its session policies, as the proxy
    and the IAM API decide its requests."""
    return Caller(
        arn=claims.assumed_role_arn,
        principal_id=claims.assumed_role_id,
        account_id=claims.account_id,
        principal=permissions.principal(claims),
        policies=permissions.policy_set(snapshot, claims),
        context=permissions.session_context(snapshot, claims, transport, region=region),
        session=claims,
    )
