"""Findings about the policies and trust policies of a configuration (pure; no I/O).

What it looks for, each as a :class:`~gateway.findings.Finding`:

- ``INVALID_ACTION`` (error): an action of a service whose action names are known
  (:mod:`gateway.iam.known_actions`: sts, iam, s3) that the service does not have, wildcards
  matching none included (``sts:AssumeRoleWithWebIdentiy``), with the closest names suggested;
- ``INVALID_PRINCIPAL`` (error): a ``Federated`` principal that is not an ARN, or an ``AWS``
  principal that is neither an ARN, an account id nor ``*``;
- ``UNKNOWN_PROVIDER`` / ``UNKNOWN_ROLE`` / ``UNKNOWN_POLICY`` (warning): a ``Federated`` ARN
  naming no configured identity provider, or an ARN in this account naming a role or managed
  policy the file does not declare (each may still exist in the IAM database: STS also accepts
  tokens from providers created through the IAM API, so such a statement is not judged dead);
- ``DEAD_STATEMENT`` (warning): an Allow statement of a trust policy no request can match (its
  actions assume no role, its federated principal's provider cannot use those actions, or a
  condition names another provider's keys, which such a token never carries);
- ``UNSATISFIABLE_TRUST_POLICY`` (error): a trust policy with no statement any request can match.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.config import GatewayConfig
from gateway.errors import MalformedPolicyDocument
from gateway.findings import Finding
from gateway.iam.known_actions import ACTIONS
from gateway.policy import Request, evaluate_trust, parse_policy
from gateway.policy.wildcard import glob_regex

__all__ = ["ASSUME_ACTIONS", "KnownProvider", "action_findings", "admits", "config_findings"]

#: The actions that assume a role, and the provider kind each one serves (None: no federation).
ASSUME_ACTIONS: Mapping[str, str | None] = {
    "sts:assumerole": None,
    "sts:assumerolewithsaml": "saml",
    "sts:assumerolewithwebidentity": "oidc",
}
_SPELLED = {svc: {name.lower(): name for name in names} for svc, names in ACTIONS.items()}
_ACCOUNT = re.compile(r"^\d{12}\Z")
_CONDITION_SCOPES = frozenset({"aws", "sts", "saml", "iam", "s3", "execute-api"})


@dataclass(frozen=True, slots=True)
class KnownProvider:
    """A configured identity provider as trust policies name it."""

    arn: str
    kind: str
    #: The prefix of its condition keys: ``HOST/PATH`` for OIDC, ``saml`` for SAML.
    key_prefix: str


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _listed(document.get("Statement")) if isinstance(s, Mapping)]


def _matches(pattern: str, names: Sequence[str]) -> list[str]:
    """The lower-cased ``names`` an IAM action pattern (``*``, ``?``) matches."""
    if "*" not in pattern and "?" not in pattern:
        return [pattern] if pattern in names else []
    regex = re.compile(glob_regex(pattern), re.IGNORECASE)
    return [n for n in names if regex.fullmatch(n)]


def action_findings(document: Mapping[str, Any], where: str) -> Iterator[Finding]:
    """``INVALID_ACTION`` for every action of a known service that names no action of it."""
    for i, statement in enumerate(_statements(document)):
        for element in ("Action", "NotAction"):
            for j, action in enumerate(_listed(statement.get(element))):
                if not isinstance(action, str) or ":" not in action:
                    continue
                service, _, name = action.partition(":")
                known = _SPELLED.get(service.lower())
                if known is None or _matches(name.lower(), list(known)):
                    continue
                close = difflib.get_close_matches(name.lower(), list(known), n=2, cutoff=0.8)
                hint = " or ".join(f"{service}:{known[c]}" for c in close)
                yield Finding(
                    "error",
                    "INVALID_ACTION",
                    f"{where}.Statement[{i}].{element}"
                    + (f"[{j}]" if isinstance(statement[element], list) else ""),
                    f"{action} is not an action of {service}" + (f"; did you mean {hint}?" if hint else ""),
                )


def _assumes(statement: Mapping[str, Any]) -> set[str]:
    """The role-assuming actions (lower case) an Allow statement allows."""
    if "NotAction" in statement:
        excluded = {
            m
            for a in _listed(statement["NotAction"])
            if isinstance(a, str)
            for m in _matches(a.lower(), list(ASSUME_ACTIONS))
        }
        return set(ASSUME_ACTIONS) - excluded
    return {
        m
        for a in _listed(statement.get("Action"))
        if isinstance(a, str)
        for m in _matches(a.lower(), list(ASSUME_ACTIONS))
    }


def _trust_findings(
    document: Mapping[str, Any], where: str, config: GatewayConfig, providers: Mapping[str, KnownProvider]
) -> Iterator[Finding]:
    live = 0
    allows = 0
    roles = {config.role_arn(r) for r in config.roles}
    for i, statement in enumerate(_statements(document)):
        if statement.get("Effect") != "Allow":
            continue
        allows += 1
        at = f"{where}.Statement[{i}]"
        principal = statement.get("Principal")
        federated: list[KnownProvider] = []
        anyone = principal == "*"
        aws_callers = False
        api_provider = False  # names a provider the IAM database may hold: its kind is unknown
        unusable: list[str] = []
        if isinstance(principal, Mapping):
            for j, value in enumerate(_listed(principal.get("Federated"))):
                spot = f"{at}.Principal.Federated" + (
                    f"[{j}]" if isinstance(principal["Federated"], list) else ""
                )
                if value == "*":
                    anyone = True
                elif not isinstance(value, str) or not value.startswith("arn:"):
                    yield Finding(
                        "error",
                        "INVALID_PRINCIPAL",
                        spot,
                        f"{value!r} is not an ARN: name a provider by its ARN (arn:aws:iam::"
                        f"{config.account_id}:oidc-provider/HOST/PATH or ...:saml-provider/NAME)",
                    )
                elif value in providers:
                    federated.append(providers[value])
                else:
                    api_provider = True
                    known = ", ".join(sorted(providers)) or "none"
                    yield Finding(
                        "warning",
                        "UNKNOWN_PROVIDER",
                        spot,
                        f"{value} names no configured identity provider (configured: {known}); "
                        "it may exist in the IAM database",
                    )
            for j, value in enumerate(_listed(principal.get("AWS"))):
                spot = f"{at}.Principal.AWS" + (f"[{j}]" if isinstance(principal["AWS"], list) else "")
                if value == "*" or (isinstance(value, str) and _ACCOUNT.match(value)):
                    aws_callers = True
                elif not isinstance(value, str) or not value.startswith("arn:"):
                    yield Finding(
                        "error", "INVALID_PRINCIPAL", spot, f"{value!r} is not an ARN, an account id or *"
                    )
                else:
                    aws_callers = True
                    yield from _arn_findings(value, spot, config, roles)
            if "Service" in principal:
                aws_callers = True  # not fedgate's to judge; AssumeRole may still name it
        assumes = _assumes(statement)
        if not assumes:
            unusable.append(
                "it allows none of sts:AssumeRole, sts:AssumeRoleWithSAML or sts:AssumeRoleWithWebIdentity"
            )
        elif not anyone and not api_provider:
            kinds = {kind for action, kind in ASSUME_ACTIONS.items() if action in assumes}
            usable = [p for p in federated if p.kind in kinds]
            if not usable and not (aws_callers and None in kinds):
                if federated:
                    names = ", ".join(sorted({p.kind for p in federated}))
                    unusable.append(f"its {names} provider cannot use {', '.join(sorted(assumes))}")
                else:
                    unusable.append("its principal names no caller that could ask")
            elif federated and not aws_callers:
                prefixes = {p.key_prefix.lower() for p in federated}
                for key in _condition_keys(statement):
                    lower = key.lower()
                    if any(lower.startswith(p + ":") for p in prefixes):
                        continue
                    scope = lower.rpartition(":")[0]
                    if scope.partition(":")[0] not in _CONDITION_SCOPES and ("." in scope or "/" in scope):
                        unusable.append(
                            f"its condition on {key} names another provider's key, never in its tokens"
                        )
                        break
        if unusable:
            yield Finding(
                "warning", "DEAD_STATEMENT", at, f"no request can match this statement: {unusable[0]}"
            )
        else:
            live += 1
    if live == 0:
        why = (
            "it has no Allow statement" if allows == 0 else "none of its Allow statements can match a request"
        )
        yield Finding(
            "error", "UNSATISFIABLE_TRUST_POLICY", where, f"no request can ever assume this role: {why}"
        )


def _condition_keys(statement: Mapping[str, Any]) -> Iterator[str]:
    """The keys of the statement's conditions that must be present (not ``...IfExists``, not ``Null``)."""
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return
    for operator, clauses in condition.items():
        if str(operator).endswith("IfExists") or operator == "Null" or not isinstance(clauses, Mapping):
            continue
        if str(operator).startswith("ForAllValues:"):
            continue  # true on a missing key
        yield from (str(k) for k in clauses)


def _arn_findings(arn: str, where: str, config: GatewayConfig, roles: set[str]) -> Iterator[Finding]:
    """``UNKNOWN_ROLE`` / ``UNKNOWN_POLICY`` for an exact ARN of this account naming nothing declared."""
    if "*" in arn or "?" in arn or "${" in arn:
        return
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or parts[4] != config.account_id:
        return
    resource = parts[5]
    if resource.startswith("role/") and arn not in roles:
        yield Finding(
            "warning",
            "UNKNOWN_ROLE",
            where,
            f"{arn} names no role in this file (it may exist in the IAM database)",
        )
    if resource.startswith("policy/"):
        name = resource.rsplit("/", 1)[-1]
        if name not in {p.name for p in config.policies}:
            yield Finding(
                "warning",
                "UNKNOWN_POLICY",
                where,
                f"{arn} names no policy in this file (it may exist in the IAM database)",
            )


def _resource_findings(document: Mapping[str, Any], where: str, config: GatewayConfig) -> Iterator[Finding]:
    roles = {config.role_arn(r) for r in config.roles}
    for i, statement in enumerate(_statements(document)):
        for j, resource in enumerate(_listed(statement.get("Resource"))):
            if isinstance(resource, str):
                spot = f"{where}.Statement[{i}].Resource" + (
                    f"[{j}]" if isinstance(statement["Resource"], list) else ""
                )
                yield from _arn_findings(resource, spot, config, roles)


def config_findings(config: GatewayConfig, providers: Sequence[KnownProvider]) -> list[Finding]:
    """Every finding about the roles, trust policies and permission policies of ``config``."""
    by_arn = {p.arn: p for p in providers}
    found: list[Finding] = []
    for i, policy in enumerate(config.policies):
        where = f"policies[{i}].document"
        found += action_findings(policy.document, where)
        found += _resource_findings(policy.document, where, config)
    for i, role in enumerate(config.roles):
        where = f"roles[{i}].trust_policy"
        found += action_findings(role.trust_policy, where)
        found += _trust_findings(role.trust_policy, where, config, by_arn)
        for j, inline in enumerate(role.policies):
            at = f"roles[{i}].policies[{j}].document"
            found += action_findings(inline.document, at)
            found += _resource_findings(inline.document, at, config)
    return found


def admits(
    trust_policy: Mapping[str, Any], *, role_arn: str, provider_arn: str, action: str, key: str, value: str
) -> bool:
    """Whether ``trust_policy`` lets a token of ``provider_arn`` whose ``key`` is ``value`` use
    ``action``, whatever the token's other claims: every condition on other keys is left out, so
    only what ``key`` decides remains (a Deny on ``key`` still counts)."""
    wanted = key.lower()
    statements = []
    for statement in _statements(trust_policy):
        reduced = {k: v for k, v in statement.items() if k != "Condition"}
        condition = statement.get("Condition")
        if isinstance(condition, Mapping):
            kept = {
                op: {k: v for k, v in clauses.items() if str(k).lower() == wanted}
                for op, clauses in condition.items()
                if isinstance(clauses, Mapping)
            }
            kept = {op: clauses for op, clauses in kept.items() if clauses}
            if kept:
                reduced["Condition"] = kept
        statements.append(reduced)
    try:
        policy = parse_policy({"Version": "2012-10-17", "Statement": statements}, kind="trust")
    except MalformedPolicyDocument:
        return False
    request = Request(
        action=action, resource=role_arn, principal={"Federated": [provider_arn]}, context={key: value}
    )
    return evaluate_trust(policy, request).allowed
