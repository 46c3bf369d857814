"""The IAM database's entities in the configuration file's format (``fedgate iam export``).

So a team can move what it created through the IAM API into git: :func:`export_document` turns
the records of the database (:func:`~gateway.iam.records.records_from_database`) into the
``policies:``, ``groups:``, ``users:`` and ``roles:`` sections the configuration loader reads.
Attached policies and boundaries are named by policy name, as the configuration names them (the
database's own policies, or the YAML's: ``config_policies`` maps those ARNs to names). What the
configuration format cannot hold is left out and said in :attr:`Export.omitted`: access keys (their
secrets are sealed and never leave the database; give config users theirs by secret reference),
attachments of policies neither source has, and roles' permissions boundaries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.arns import policy_arn
from gateway.iam.records import CatalogRecords, InlinePolicyRecord

__all__ = ["Export", "export_document"]


@dataclass(frozen=True, slots=True)
class Export:
    """The configuration document, and one line per thing it could not carry."""

    document: dict[str, Any]
    omitted: tuple[str, ...]


def _inline(policies: tuple[InlinePolicyRecord, ...]) -> list[dict[str, Any]]:
    return [{"name": p.name, "document": dict(p.document)} for p in policies]


def export_document(records: CatalogRecords, config_policies: Mapping[str, str]) -> Export:
    """``records`` (the database's) as a configuration document.

    ``config_policies`` maps the ARN of each policy the YAML declares to its name, so attachments
    of those are kept by name too.
    """
    account = records.account_id
    names = dict(config_policies)
    names.update({policy_arn(account, p.path, p.name): p.name for p in records.policies})
    omitted: list[str] = []

    def refs(owner: str, arns: tuple[str, ...]) -> list[str]:
        found = []
        for arn in arns:
            if arn in names:
                found.append(names[arn])
            else:
                omitted.append(f"{owner}: attached policy {arn} (not a policy of this account's catalog)")
        return found

    document: dict[str, Any] = {"account_id": account}
    if records.policies:
        document["policies"] = [
            {
                "name": p.name,
                **({"path": p.path} if p.path != "/" else {}),
                **({"description": p.description} if p.description else {}),
                "document": dict(p.document),
            }
            for p in records.policies
        ]
    groups = []
    for g in records.groups:
        group: dict[str, Any] = {"name": g.name}
        if g.path != "/":
            group["path"] = g.path
        if g.inline_policies:
            group["policies"] = _inline(g.inline_policies)
        if attached := refs(f"group {g.name}", g.managed_policy_arns):
            group["managed_policies"] = attached
        groups.append(group)
    if groups:
        document["groups"] = groups
    users = []
    keys_of: dict[str, int] = {}
    for k in records.access_keys:
        keys_of[k.user_name] = keys_of.get(k.user_name, 0) + 1
    for u in records.users:
        user: dict[str, Any] = {"name": u.name}
        if u.path != "/":
            user["path"] = u.path
        if u.groups:
            user["groups"] = list(u.groups)
        if u.inline_policies:
            user["policies"] = _inline(u.inline_policies)
        if attached := refs(f"user {u.name}", u.managed_policy_arns):
            user["managed_policies"] = attached
        if u.permissions_boundary_arn is not None:
            bound = refs(f"user {u.name} boundary", (u.permissions_boundary_arn,))
            if bound:
                user["permissions_boundary"] = bound[0]
        if u.tags:
            user["tags"] = dict(u.tags)
        if keys_of.get(u.name):
            omitted.append(
                f"user {u.name}: {keys_of[u.name]} access key(s) (secrets stay in the database; give "
                "config users keys by secret reference)"
            )
        users.append(user)
    if users:
        document["users"] = users
    roles = []
    for r in records.roles:
        role: dict[str, Any] = {"name": r.name}
        if r.path != "/":
            role["path"] = r.path
        if r.description:
            role["description"] = r.description
        role["trust_policy"] = dict(r.trust_policy)
        if r.inline_policies:
            role["policies"] = _inline(r.inline_policies)
        if attached := refs(f"role {r.name}", r.managed_policy_arns):
            role["managed_policies"] = attached
        if r.max_session_duration != 3600:
            role["max_session_duration"] = r.max_session_duration
        if r.tags:
            role["tags"] = dict(r.tags)
        if r.permissions_boundary_arn is not None:
            omitted.append(f"role {r.name}: permissions boundary {r.permissions_boundary_arn}")
        roles.append(role)
    if roles:
        document["roles"] = roles
    return Export(document, tuple(omitted))
