"""Parameters of IAM's ``SimulateCustomPolicy`` and ``SimulatePrincipalPolicy`` Query actions.

The Query protocol flattens lists to ``Name.member.N`` (numbered from 1, no gaps) and structures
to ``Name.member.N.Field``; ``ContextEntries`` nests a list in a list
(``ContextEntries.member.1.ContextKeyValues.member.2``). Every parameter is checked here against
the limits botocore's service model declares; a parameter this module does not know, or an
option fedgate does not simulate (organization policies, policy exclusions, EC2 resource
scenarios), is refused rather than ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import MissingParameter, ValidationError
from gateway.iam.entries import CONTEXT_KEY_TYPES, ContextEntry, ContextKeyType

__all__ = ["API_VERSION", "SimulationParams", "member_list", "member_structures"]

API_VERSION = "2010-05-08"
MAX_POLICY_CHARS = 131_072
_ACTION_RE = re.compile(r"^[A-Za-z0-9-]{1,64}:[A-Za-z0-9_-]{1,128}\Z")
_POLICY_CHARS_RE = re.compile(r"^[\t\n\r\u0020-\u00ff]+\Z")
_ARN_RE = re.compile(r"^arn:[^:\s]+:[^:\s]*:[^:\s]*:[^:\s]*:[\x21-\x7e]*\Z")
_PRINCIPAL_ARN_RE = re.compile(r"^arn:aws[\w-]*:(?:iam|sts)::\d{12}:[\x21-\x7e]{1,2000}\Z")
_OWNER_RE = re.compile(r"^(?:\d{12}|arn:aws[\w-]*:iam::\d{12}:root)\Z")
_MARKER_RE = re.compile(r"^\d{1,6}\Z")
_MEMBER_RE = re.compile(r"^member\.(\d{1,4})(?:\.(.+))?\Z")
_COMMON = frozenset(
    {
        "Action",
        "Version",
        "PolicyInputList",
        "PermissionsBoundaryPolicyInputList",
        "ActionNames",
        "ResourceArns",
        "ResourcePolicy",
        "ResourceOwner",
        "CallerArn",
        "ContextEntries",
        "MaxItems",
        "Marker",
    }
)
_UNSUPPORTED = frozenset(
    {"OrderedOrganizationPolicyInputList", "PolicyExclusionList", "ResourceHandlingOption"}
)


def _grouped(values: Mapping[str, str], name: str) -> dict[int, dict[str, str]]:
    """``Name.member.N[.rest]`` -> ``{N: {rest or "": value}}``, numbered from 1 without gaps."""
    out: dict[int, dict[str, str]] = {}
    prefix = name + "."
    for key, value in values.items():
        if not key.startswith(prefix):
            continue
        m = _MEMBER_RE.match(key[len(prefix) :])
        if m is None:
            raise ValidationError(f"Unknown parameter {key[:128]}")
        out.setdefault(int(m.group(1)), {})[m.group(2) or ""] = value
    if sorted(out) != list(range(1, len(out) + 1)):
        raise ValidationError(f"{name} members must be numbered from 1 without gaps")
    return out


def member_list(values: Mapping[str, str], name: str) -> list[str]:
    """The string list ``Name.member.N`` (empty when absent)."""
    grouped = _grouped(values, name)
    out = []
    for n in sorted(grouped):
        member = grouped[n]
        if set(member) != {""}:
            raise ValidationError(f"{name}.member.{n} must be a plain value")
        out.append(member[""])
    return out


def member_structures(values: Mapping[str, str], name: str) -> list[dict[str, str]]:
    """The list of structures ``Name.member.N.Field`` (empty when absent), fields by name."""
    grouped = _grouped(values, name)
    out = []
    for n in sorted(grouped):
        member = grouped[n]
        if "" in member:
            raise ValidationError(f"{name}.member.{n} must be a structure")
        out.append(member)
    return out


def _policies(values: Mapping[str, str], name: str) -> list[str]:
    docs = member_list(values, name)
    for i, doc in enumerate(docs, 1):
        _policy_text(doc, f"{name}.member.{i}")
    return docs


def _policy_text(doc: str, where: str) -> str:
    if len(doc) > MAX_POLICY_CHARS:
        raise ValidationError(f"{where} is longer than {MAX_POLICY_CHARS} characters")
    if not _POLICY_CHARS_RE.match(doc):
        raise ValidationError(f"{where} must be 1 or more characters of tab, newline or U+0020-U+00FF")
    return doc


def _context_entries(values: Mapping[str, str]) -> list[ContextEntry]:
    out: list[ContextEntry] = []
    for n, fields in sorted(_grouped(values, "ContextEntries").items()):
        where = f"ContextEntries.member.{n}"
        name = fields.pop("ContextKeyName", None)
        ctype = fields.pop("ContextKeyType", "string")
        listed = {k.removeprefix("ContextKeyValues."): v for k, v in fields.items()}
        if any(not k.startswith("ContextKeyValues.") for k in fields):
            raise ValidationError(f"{where}: unknown field")
        if name is None:
            raise MissingParameter(f"{where}.ContextKeyName is required")
        if ctype not in CONTEXT_KEY_TYPES:
            raise ValidationError(f"{where}.ContextKeyType must be one of {', '.join(CONTEXT_KEY_TYPES)}")
        vals = member_list({f"V.{k}": v for k, v in listed.items()}, "V")
        kind: ContextKeyType = ctype  # type: ignore[assignment]
        out.append(ContextEntry(name, tuple(vals), kind))
    return out


@dataclass(frozen=True, slots=True)
class SimulationParams:
    """Validated parameters of either simulation action.

    ``policy_source_arn`` is set for ``SimulatePrincipalPolicy`` only (where ``policy_inputs`` may
    be empty); ``SimulateCustomPolicy`` requires at least one input policy.
    """

    action_names: tuple[str, ...]
    policy_inputs: tuple[str, ...] = ()
    boundary_inputs: tuple[str, ...] = ()
    resource_arns: tuple[str, ...] = ()
    resource_policy: str | None = None
    resource_owner: str | None = None
    caller_arn: str | None = None
    context: tuple[ContextEntry, ...] = ()
    max_items: int = 100
    marker: int = 0
    policy_source_arn: str | None = None

    @classmethod
    def parse(cls, values: Mapping[str, str], *, principal: bool) -> SimulationParams:
        """Validate the flat Query parameters of ``SimulatePrincipalPolicy`` (``principal``) or
        ``SimulateCustomPolicy``."""
        allowed = _COMMON | {"PolicySourceArn"} if principal else _COMMON
        for key in values:
            top = key.partition(".")[0]
            if top in _UNSUPPORTED:
                raise ValidationError(f"{top} is not supported by fedgate's simulator")
            if top not in allowed:
                raise ValidationError(f"Unknown parameter {key[:128]}")
        source = None
        if principal:
            source = values.get("PolicySourceArn")
            if source is None:
                raise MissingParameter("The request must contain the parameter PolicySourceArn")
            if not 20 <= len(source) <= 2048 or not _ARN_RE.match(source):
                raise ValidationError("PolicySourceArn must be an ARN of 20-2048 characters")
        inputs = _policies(values, "PolicyInputList")
        if not principal and not inputs:
            raise MissingParameter("The request must contain the parameter PolicyInputList")
        actions = member_list(values, "ActionNames")
        if not actions:
            raise MissingParameter("The request must contain the parameter ActionNames")
        for a in actions:
            if not _ACTION_RE.match(a):
                raise ValidationError(f"ActionNames: {a[:128]!r} is not service:Action")
        resources = member_list(values, "ResourceArns")
        for r in resources:
            if r != "*" and (len(r) > 2048 or not _ARN_RE.match(r)):
                raise ValidationError(f"ResourceArns: {r[:128]!r} is not an ARN or *")
        resource_policy = values.get("ResourcePolicy")
        if resource_policy is not None:
            _policy_text(resource_policy, "ResourcePolicy")
        caller = values.get("CallerArn")
        if caller is not None and not _PRINCIPAL_ARN_RE.match(caller):
            raise ValidationError("CallerArn must be an IAM or STS principal ARN")
        if resource_policy is not None and caller is None and not principal:
            raise ValidationError("CallerArn is required with a ResourcePolicy")
        owner = values.get("ResourceOwner")
        if owner is not None and not _OWNER_RE.match(owner):
            raise ValidationError("ResourceOwner must be an account id or arn:aws:iam::ACCOUNT:root")
        return cls(
            action_names=tuple(actions),
            policy_inputs=tuple(inputs),
            boundary_inputs=tuple(_policies(values, "PermissionsBoundaryPolicyInputList")),
            resource_arns=tuple(resources),
            resource_policy=resource_policy,
            resource_owner=owner,
            caller_arn=caller,
            context=tuple(_context_entries(values)),
            max_items=_max_items(values.get("MaxItems")),
            marker=_marker(values.get("Marker")),
            policy_source_arn=source,
        )


def _max_items(raw: str | None) -> int:
    if raw is None:
        return 100
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw[:5]) <= 1000 or len(raw) > 4:
        raise ValidationError("MaxItems must be an integer from 1 to 1000")
    return int(raw)


def _marker(raw: str | None) -> int:
    if raw is None:
        return 0
    if not _MARKER_RE.match(raw):
        raise ValidationError("Marker is not one this service issued")
    return int(raw)
