"""Catalog principals as the simulator sees them: each role's or user's permission policies as sources.

A role's inline policies are ``SourcePolicyType`` ``role`` (``SourcePolicyId`` the policy name), a
user's ``user`` and its groups' ``group``; attached managed policies are customer managed,
``user-managed``, named by their ARN. All are identity policies, re-read from their documents so
that ``MatchedStatements`` can carry positions. A user's permissions boundary takes part as a
boundary policy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from gateway.errors import NoSuchEntity
from gateway.iam.catalog import CatalogSnapshot, Role, User
from gateway.iam.simulate import SourcePolicy

__all__ = ["find_role", "find_user", "principal_context", "role_sources", "user_boundary", "user_sources"]


def _text(document: Mapping[str, object]) -> str:
    # Indented text gives MatchedStatements useful line numbers (a config holds no policy text).
    return json.dumps(document, indent=4)


def find_role(snapshot: CatalogSnapshot, arn_or_name: str) -> Role:
    """The role with this ARN (or, for the command line, this name); NoSuchEntity otherwise."""
    role = snapshot.role(arn_or_name) or snapshot.role_named(arn_or_name)
    if role is None:
        raise NoSuchEntity(f"The role with name {arn_or_name.rsplit('/', 1)[-1][:64]} cannot be found.")
    return role


def find_user(snapshot: CatalogSnapshot, arn_or_name: str) -> User:
    """The user with this ARN (or this name); NoSuchEntity otherwise."""
    user = snapshot.user(arn_or_name) or snapshot.user_named(arn_or_name)
    if user is None:
        raise NoSuchEntity(f"The user with name {arn_or_name.rsplit('/', 1)[-1][:64]} cannot be found.")
    return user


def user_sources(user: User) -> list[SourcePolicy]:
    """The user's permission policies: its own inline, the managed ones attached to it or its
    groups, then its groups' inline policies."""
    out = [
        SourcePolicy.parse(_text(p.document), id=p.name, type="user", kind="identity") for p in user.inline
    ]
    seen = set()
    for m in user.managed:
        seen.add(m.arn)
        out.append(SourcePolicy.parse(_text(m.document), id=m.arn, type="user-managed", kind="identity"))
    for group in user.groups:
        out.extend(
            SourcePolicy.parse(_text(p.document), id=f"{group.name}/{p.name}", type="group", kind="identity")
            for p in group.inline
        )
        for m in group.managed:
            if m.arn not in seen:  # one policy attached twice is one source
                seen.add(m.arn)
                out.append(
                    SourcePolicy.parse(_text(m.document), id=m.arn, type="user-managed", kind="identity")
                )
    return out


def user_boundary(user: User) -> list[SourcePolicy] | None:
    """The user's permissions boundary as a simulation source, or ``None``."""
    if user.boundary is None:
        return None
    return [SourcePolicy(user.boundary.name or "PermissionsBoundary", "user-managed", user.boundary)]


def role_sources(role: Role) -> list[SourcePolicy]:
    """The role's permission policies: inline first, then attached managed policies."""
    out = [
        SourcePolicy.parse(_text(p.document), id=p.name, type="role", kind="identity") for p in role.inline
    ]
    out.extend(
        SourcePolicy.parse(_text(m.document), id=m.arn, type="user-managed", kind="identity")
        for m in role.managed
    )
    return out


def principal_context(role_arn: str, account_id: str, tags: Mapping[str, str]) -> dict[str, str]:
    """The principal keys a simulation of ``role_arn`` can know without a session.

    ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:PrincipalType`` and the role's tags as
    ``aws:PrincipalTag/KEY``. Session facts (source IP, time, MFA, federation claims) come from a
    real request (see :func:`gateway.context.global_context`) or from explicit context.
    """
    out = {
        "aws:PrincipalArn": role_arn,
        "aws:PrincipalAccount": account_id,
        "aws:PrincipalType": "AssumedRole",
    }
    out.update({f"aws:PrincipalTag/{k}": v for k, v in tags.items()})
    return out
