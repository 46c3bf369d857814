"""The parameter types of IAM actions, checked as IAM checks them.

A :class:`Param` names one Query parameter and the validator that reads it; validators take the
whole parameter map (lists are spread over ``Name.member.N`` keys) and return the value, or
``None`` when the parameter is absent. Failures are ``ValidationError`` in AWS's words, naming the
parameter (``Value at 'userName' failed to satisfy constraint: ...``); :func:`parse` applies an
action's declared parameters and refuses any it does not declare.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, final

from gateway.errors import InvalidInput, ValidationError
from gateway.iam.params import member_list, member_structures
from gateway.sts.params import QueryParams

__all__ = [
    "MAX_TAGS",
    "Args",
    "Param",
    "Validator",
    "access_key_id",
    "arn",
    "audit_parameters",
    "camel",
    "constraint",
    "length",
    "marker",
    "max_items",
    "name",
    "parse",
    "path",
    "path_prefix",
    "policy_document",
    "status",
    "tag_keys",
    "tags",
]

#: Tags one entity may carry (and one request may set).
MAX_TAGS = 50

Validator = Callable[[QueryParams, str], Any]

_NAME_RE = re.compile(r"^[\w+=,.@-]+\Z", re.ASCII)
_PATH_RE = re.compile(r"^(?:/|/[\x21-\x7e]+/)\Z")
_PATH_PREFIX_RE = re.compile(r"^/[\x21-\x7f]*\Z")
_MARKER_RE = re.compile(r"^[\u0020-\u00ff]+\Z")
_POLICY_RE = re.compile(r"^[\t\n\r\u0020-\u00ff]+\Z")
_KEY_ID_RE = re.compile(r"^\w+\Z", re.ASCII)
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_ALWAYS = frozenset({"Action", "Version"})


def camel(wire: str) -> str:
    """The lowerCamel name AWS uses for a parameter in messages and CloudTrail (``userName``)."""
    return wire[:1].lower() + wire[1:]


def constraint(wire: str, value: str | None, rule: str) -> ValidationError:
    """IAM's message for a parameter breaking ``rule`` (``have length less than or equal to 64``)."""
    shown = "null" if value is None else f"'{value[:128]}'"
    return ValidationError(
        f"1 validation error detected: Value {shown} at '{camel(wire)}' failed to satisfy constraint: "
        f"Member must {rule}"
    )


def length(wire: str, value: str, low: int, high: int) -> str:
    """``value`` if it has ``low`` to ``high`` characters; else IAM's ``ValidationError``."""
    if len(value) < low:
        raise constraint(wire, value, f"have length greater than or equal to {low}")
    if len(value) > high:
        raise constraint(wire, value, f"have length less than or equal to {high}")
    return value


def _pattern(wire: str, value: str, regex: re.Pattern[str], shown: str) -> str:
    if not regex.match(value):
        raise constraint(wire, value, f"satisfy regular expression pattern: {shown}")
    return value


def name(limit: int = 64) -> Validator:
    """An entity name: 1 to ``limit`` characters of ``[\\w+=,.@-]`` (users 64, groups 128)."""

    def validate(params: QueryParams, wire: str) -> str | None:
        raw = params.get(wire)
        if raw is None:
            return None
        return _pattern(wire, length(wire, raw, 1, limit), _NAME_RE, r"[\w+=,.@-]+")

    return validate


def path(params: QueryParams, wire: str) -> str | None:
    """A path: ``/`` or ``/a/b/`` of printable ASCII, at most 512 characters."""
    raw = params.get(wire)
    if raw is None:
        return None
    return _pattern(wire, length(wire, raw, 1, 512), _PATH_RE, r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)")


def path_prefix(params: QueryParams, wire: str) -> str | None:
    """A ``PathPrefix``: ``/`` followed by printable ASCII, at most 512 characters."""
    raw = params.get(wire)
    if raw is None:
        return None
    return _pattern(wire, length(wire, raw, 1, 512), _PATH_PREFIX_RE, r"\u002F[\u0021-\u007F]*")


def marker(params: QueryParams, wire: str) -> str | None:
    """A ``Marker`` from an earlier truncated answer."""
    raw = params.get(wire)
    if raw is None:
        return None
    return _pattern(wire, length(wire, raw, 1, 320), _MARKER_RE, r"[\u0020-\u00FF]+")


def max_items(params: QueryParams, wire: str) -> int | None:
    """``MaxItems``: an integer from 1 to 1000."""
    raw = params.get(wire)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 4:
        raise constraint(wire, raw, "be an integer")
    value = int(raw)
    if not 1 <= value <= 1000:
        raise constraint(wire, raw, "have value between 1 and 1000")
    return value


def arn(params: QueryParams, wire: str) -> str | None:
    """An ARN parameter: 20 to 2048 characters (whether it names anything is checked later)."""
    raw = params.get(wire)
    return None if raw is None else length(wire, raw, 20, 2048)


def access_key_id(params: QueryParams, wire: str) -> str | None:
    """An access key id: 16 to 128 word characters."""
    raw = params.get(wire)
    if raw is None:
        return None
    return _pattern(wire, length(wire, raw, 16, 128), _KEY_ID_RE, r"[\w]+")


def status(params: QueryParams, wire: str) -> str | None:
    """An access key's ``Status``: ``Active`` or ``Inactive``."""
    raw = params.get(wire)
    if raw is None or raw in ("Active", "Inactive"):
        return raw
    raise constraint(wire, raw, "satisfy enum value set: [Active, Inactive]")


def policy_document(params: QueryParams, wire: str) -> str | None:
    """A policy document's text: 1 to 131,072 characters of tab, newline and U+0020-U+00FF.

    Whether it is a valid policy, and within the size quota of where it goes, the action decides.
    """
    raw = params.get(wire)
    if raw is None:
        return None
    return _pattern(wire, length(wire, raw, 1, 131_072), _POLICY_RE, r"[\u0009\u000A\u000D\u0020-\u00FF]+")


def _too_many(wire: str) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value at '{camel(wire)}' failed to satisfy constraint: "
        f"Member must have length less than or equal to {MAX_TAGS}"
    )


def _tag_text(wire: str, value: str, *, low: int, high: int) -> str:
    length(wire, value, low, high)
    for c in value:
        if c not in _TAG_PUNCTUATION and unicodedata.category(c)[0] not in "LZN":
            raise constraint(wire, value, r"satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*")
    return value


def tags(params: QueryParams, wire: str) -> dict[str, str] | None:
    """``Tags.member.N.Key`` / ``.Value``: at most 50, keys unique regardless of case."""
    members = member_structures(params.values, wire)
    if not members:
        return None
    if len(members) > MAX_TAGS:
        raise _too_many(wire)
    found: dict[str, str] = {}
    seen: set[str] = set()
    for n, member in enumerate(members, 1):
        if set(member) - {"Key", "Value"}:
            raise ValidationError(f"{wire}.member.{n} has a field other than Key and Value")
        if "Key" not in member or "Value" not in member:
            raise ValidationError(f"{wire}.member.{n} needs a Key and a Value")
        key = _tag_text(f"{wire}.member.{n}.key", member["Key"], low=1, high=128)
        value = _tag_text(f"{wire}.member.{n}.value", member["Value"], low=0, high=256)
        if key.lower() in seen:
            raise InvalidInput("Duplicate tag keys found. Please note that Tag keys are case insensitive.")
        seen.add(key.lower())
        found[key] = value
    return found


def tag_keys(params: QueryParams, wire: str) -> list[str] | None:
    """``TagKeys.member.N``: at most 50 tag keys."""
    keys = member_list(params.values, wire)
    if not keys:
        return None
    if len(keys) > MAX_TAGS:
        raise _too_many(wire)
    return [_tag_text(f"{wire}.member.{n}", k, low=1, high=128) for n, k in enumerate(keys, 1)]


@final
@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of an action: its wire name, how it is read, and whether it must be given.

    ``audit`` is ``False`` for a parameter the audit trail must never see (none of IAM's request
    parameters is secret today; the flag keeps that a decision, not an accident). ``doc`` is what
    ``docs/iam-actions.md`` says about it.
    """

    name: str
    validate: Validator
    doc: str
    required: bool = False
    audit: bool = True


@final
class Args:
    """An action's validated parameters, read by wire name with the type each validator returns."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __repr__(self) -> str:
        return f"Args({sorted(self._values)})"

    def text(self, wire: str) -> str:
        """A required text parameter."""
        value = self._values[wire]
        assert isinstance(value, str)
        return value

    def optional(self, wire: str) -> str | None:
        """A text parameter that may be absent."""
        value = self._values.get(wire)
        assert value is None or isinstance(value, str)
        return value

    def number(self, wire: str) -> int | None:
        """An integer parameter that may be absent."""
        value = self._values.get(wire)
        assert value is None or isinstance(value, int)
        return value

    def mapping(self, wire: str) -> dict[str, str]:
        """A map parameter (``Tags``); empty when absent."""
        value = self._values.get(wire) or {}
        assert isinstance(value, dict)
        return value

    def strings(self, wire: str) -> list[str]:
        """A string-list parameter (``TagKeys``); empty when absent."""
        value = self._values.get(wire) or []
        assert isinstance(value, list)
        return value

    def items(self) -> list[tuple[str, Any]]:
        """Every given parameter, by wire name."""
        return sorted(self._values.items())


def parse(params: QueryParams, declared: Sequence[Param]) -> Args:
    """Validate ``params`` against ``declared``; a parameter not declared is refused."""
    known = {p.name for p in declared} | _ALWAYS
    for key in params.values:
        # X-Amz-*: the signature of a presigned (query-string signed) call, checked already.
        if key.partition(".")[0] not in known and not key.startswith("X-Amz-"):
            raise ValidationError(f"Unknown parameter {key[:128]}")
    values: dict[str, Any] = {}
    for p in declared:
        value = p.validate(params, p.name)
        if value is None:
            if p.required:
                raise constraint(p.name, None, "not be null")
            continue
        values[p.name] = value
    return Args(values)


def audit_parameters(args: Args, declared: Sequence[Param]) -> dict[str, Any] | None:
    """The request parameters as the audit trail records them (lowerCamel; tags as key/value)."""
    auditable = {p.name for p in declared if p.audit}
    out: dict[str, Any] = {}
    for wire, value in args.items():
        if wire not in auditable:
            continue
        if isinstance(value, dict):
            value = [{"key": k, "value": v} for k, v in value.items()]
        out[camel(wire)] = value
    return out or None
