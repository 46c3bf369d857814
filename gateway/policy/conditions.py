"""Condition operators: validated and pre-parsed at compile time, evaluated without parsing.

Semantics follow "IAM JSON policy elements: Condition operators":

* the values of one key are OR-ed; keys and operators are AND-ed (by the caller);
* negated operators (``StringNotEquals``, ``NotIpAddress`` ...) hold when the context value matches
  *none* of the values, and hold when the key is missing;
* ``...IfExists`` holds when the key is missing; ``Null`` tests presence;
* ``ForAnyValue:`` holds when at least one context value satisfies the operator (false on a missing
  or empty key); ``ForAllValues:`` when every value does (true on a missing or empty key, with or
  without ``IfExists``);
* ``ForAnyValue:...IfExists`` on a missing or empty key is *indeterminate*: AWS documents both "If
  the key is not present, evaluate the condition element as true" (``IfExists``) and "For no
  matching context key or a null dataset, the condition returns false" (``ForAnyValue``), so the
  statement fails closed (an Allow does not apply, a Deny does) rather than pick one;
* a plain operator on a multi-valued key holds when any context value matches (negated: none does);
* an ``Arn*`` value that is not a six-part ARN (``arn:aws:sns:*:alerts``) matches nothing, as in
  AWS, rather than making the policy malformed.

A context value the operator cannot read (``"abc"`` for ``NumericLessThan``, a bad IP address)
raises :class:`~gateway.policy.wildcard.Indeterminate`; the statement then fails closed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.errors import MalformedPolicyDocument
from gateway.policy.wildcard import (
    Indeterminate,
    PatternSet,
    Template,
    compile_arn,
    compile_glob,
    parse_template,
)

__all__ = ["OPERATORS", "CompiledCondition", "compile_condition", "parse_date", "parse_number"]

Ctx = Mapping[str, str | tuple[str, ...]]
Test = Callable[[str, Ctx], bool]

# base operator -> (family, negated, comparison)
OPERATORS: dict[str, tuple[str, bool, str]] = {
    "StringEquals": ("string", False, "eq"),
    "StringNotEquals": ("string", True, "eq"),
    "StringEqualsIgnoreCase": ("string", False, "ieq"),
    "StringNotEqualsIgnoreCase": ("string", True, "ieq"),
    "StringLike": ("string", False, "like"),
    "StringNotLike": ("string", True, "like"),
    "NumericEquals": ("numeric", False, "eq"),
    "NumericNotEquals": ("numeric", True, "eq"),
    "NumericLessThan": ("numeric", False, "lt"),
    "NumericLessThanEquals": ("numeric", False, "le"),
    "NumericGreaterThan": ("numeric", False, "gt"),
    "NumericGreaterThanEquals": ("numeric", False, "ge"),
    "DateEquals": ("date", False, "eq"),
    "DateNotEquals": ("date", True, "eq"),
    "DateLessThan": ("date", False, "lt"),
    "DateLessThanEquals": ("date", False, "le"),
    "DateGreaterThan": ("date", False, "gt"),
    "DateGreaterThanEquals": ("date", False, "ge"),
    "Bool": ("bool", False, "eq"),
    "BinaryEquals": ("binary", False, "eq"),
    "IpAddress": ("ip", False, "in"),
    "NotIpAddress": ("ip", True, "in"),
    "ArnEquals": ("arn", False, "like"),
    "ArnLike": ("arn", False, "like"),
    "ArnNotEquals": ("arn", True, "like"),
    "ArnNotLike": ("arn", True, "like"),
    "Null": ("null", False, "eq"),
}

_OPERATOR_RE = re.compile(r"^(?:(ForAllValues|ForAnyValue):)?([A-Za-z]+?)(IfExists)?\Z")
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")
_EPOCH_RE = re.compile(r"^-?\d+(?:\.\d+)?\Z")
_MAX_SCALAR = 64  # numbers, dates and booleans are short; refuse to parse anything longer


def parse_number(text: str) -> float:
    """Parse a decimal number; ValueError if it is not one."""
    text = text.strip()
    if len(text) > _MAX_SCALAR or not _NUMBER_RE.match(text):
        raise ValueError("not a number")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def parse_date(text: str) -> float:
    """Parse an ISO 8601 date/time or epoch seconds into epoch seconds; ValueError otherwise."""
    text = text.strip()
    if len(text) > _MAX_SCALAR:
        raise ValueError("not a date")
    if _EPOCH_RE.match(text):
        return float(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not an ISO 8601 date or epoch seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    raise ValueError('must be "true" or "false"')


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """One ``operator: {key: values}`` clause, ready to evaluate."""

    operator: str
    key: str  # lower-cased
    set_op: str | None  # "any" | "all" | None
    if_exists: bool
    negated: bool
    test: Test | None  # positive test of one context value; None for Null
    null_values: frozenset[bool] = frozenset()
    plain: bool = False  # no set operator and not Null: the hot path below

    def holds(self, ctx: Ctx) -> bool:
        """Evaluate against a request context (lower-cased keys). May raise Indeterminate."""
        value = ctx.get(self.key)
        if self.plain and value.__class__ is str:
            return self.test(value, ctx) is not self.negated  # type: ignore[misc]
        if self.test is None:  # Null: true means "absent"
            absent = value is None or value == ()
            return absent in self.null_values
        if value is None or value == ():
            if self.if_exists:
                if self.set_op == "any":
                    # The two documented rules contradict each other here: fail closed both ways.
                    raise Indeterminate("ForAnyValue:...IfExists on a missing key")
                return True
            if self.set_op is not None:
                return self.set_op == "all"
            return self.negated
        values = (value,) if isinstance(value, str) else value
        test = self.test
        if self.set_op is None:
            return any(test(v, ctx) for v in values) != self.negated
        if self.set_op == "all":
            return all(test(v, ctx) != self.negated for v in values)
        return any(test(v, ctx) != self.negated for v in values)


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise ValueError("must be a string, number or boolean")


def _with_templates(statics_hit: Callable[[str], bool], dynamic: list[Test]) -> Test:
    """Static values first; a template that cannot resolve only matters if nothing else matched."""

    def test(v: str, ctx: Ctx) -> bool:
        if statics_hit(v):
            return True
        pending: Indeterminate | None = None
        for each in dynamic:
            try:
                if each(v, ctx):
                    return True
            except Indeterminate as exc:
                pending = exc
        if pending is not None:
            raise pending
        return False

    return test


def _split(raw: list[str], with_vars: bool) -> tuple[list[str], list[Template]]:
    statics: list[str] = []
    templates: list[Template] = []
    for text in raw:
        t = parse_template(text) if with_vars else None
        if t is None:
            statics.append(text)
        else:
            templates.append(t)
    return statics, templates


def _equals(t: Template, *, lower: bool) -> Test:
    if lower:
        return lambda v, ctx: v.lower() == t.literal(ctx).lower()
    return lambda v, ctx: v == t.literal(ctx)


def _string_test(cmp: str, raw: list[str], with_vars: bool) -> Test:
    statics, templates = _split(raw, with_vars)
    if not templates:  # the common case: one call per test, no indirection
        if cmp == "eq":
            eq = frozenset(statics)
            return lambda v, ctx: v in eq
        if cmp == "ieq":
            ieq = frozenset(x.lower() for x in statics)
            return lambda v, ctx: v.lower() in ieq
        like = compile_glob(statics)
        return lambda v, ctx: like.fullmatch(v) is not None
    if cmp == "like":
        return PatternSet(raw, "glob", with_vars=True).match
    if cmp == "eq":
        return _with_templates(frozenset(statics).__contains__, [_equals(t, lower=False) for t in templates])
    if cmp == "ieq":
        lowered = frozenset(x.lower() for x in statics)
        return _with_templates(lambda v: v.lower() in lowered, [_equals(t, lower=True) for t in templates])
    raise AssertionError(cmp)


def _is_arn_pattern(text: str) -> bool:
    return text == "*" or text.count(":") >= 5


def _arn_test(raw: list[str], with_vars: bool) -> Test:
    # AWS matches each of the six colon-separated parts on its own, so a value with fewer parts can
    # match no ARN: it is dropped, not refused. A template is kept: its value is substituted first.
    kept = [t for t in raw if _is_arn_pattern(t) or (with_vars and parse_template(t) is not None)]
    statics, templates = _split(kept, with_vars)
    if not templates:
        if not statics:
            return lambda v, ctx: False
        rx = compile_arn(statics)
        return lambda v, ctx: rx.fullmatch(v) is not None
    return PatternSet(kept, "arn", with_vars=True).match


def _reader(parse: Callable[[str], float]) -> Callable[[str], float | None]:
    # Context values repeat across statements and requests (times, ages, sizes): parse each once.
    @functools.lru_cache(maxsize=4096)
    def read(v: str) -> float | None:
        try:
            return parse(v)
        except ValueError:
            return None

    return read


_read_number = _reader(parse_number)
_read_date = _reader(parse_date)


def _ordered_test(cmp: str, bounds: list[float], read: Callable[[str], float | None]) -> Test:
    def value(v: str) -> float:
        x = read(v)
        if x is None:
            raise Indeterminate("context value is not comparable")
        return x

    if cmp == "eq":
        s = frozenset(bounds)
        return lambda v, ctx: value(v) in s
    hi, lo = max(bounds), min(bounds)
    if cmp == "lt":
        return lambda v, ctx: value(v) < hi
    if cmp == "le":
        return lambda v, ctx: value(v) <= hi
    if cmp == "gt":
        return lambda v, ctx: value(v) > lo
    return lambda v, ctx: value(v) >= lo


_BOOLS = {"true": True, "false": False}


def _bool_test(wanted: frozenset[bool]) -> Test:
    def test(v: str, ctx: Ctx) -> bool:
        b = _BOOLS.get(v.lower())
        if b is None:
            raise Indeterminate("context value is not a boolean")
        return b in wanted

    return test


def _binary_test(wanted: frozenset[bytes]) -> Test:
    def test(v: str, ctx: Ctx) -> bool:
        try:
            return base64.b64decode(v, validate=True) in wanted
        except (binascii.Error, ValueError):
            raise Indeterminate("context value is not base64") from None

    return test


@functools.lru_cache(maxsize=4096)
def _read_ip(v: str) -> tuple[int, int] | None:
    try:
        addr = ipaddress.ip_address(v.strip())
    except ValueError:
        return None
    return addr.version, int(addr)


def _ip_test(networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> Test:
    ranges = tuple((n.version, int(n.network_address), int(n.broadcast_address)) for n in networks)

    def test(v: str, ctx: Ctx) -> bool:
        addr = _read_ip(v)
        if addr is None:
            raise Indeterminate("context value is not an IP address")
        version, n = addr
        return any(version == ver and lo <= n <= hi for ver, lo, hi in ranges)

    return test


def compile_condition(
    operator: str, key: str, raw_values: Sequence[object], *, with_vars: bool, path: str
) -> CompiledCondition:
    """Validate and compile one clause. ``path`` names the operator element for error messages."""

    def bad(msg: str, where: str = path) -> MalformedPolicyDocument:
        return MalformedPolicyDocument(f"{where}: {msg}")

    m = _OPERATOR_RE.match(operator)
    if not m or m.group(2) not in OPERATORS:
        raise bad("unknown condition operator")
    qualifier, base, if_exists = m.group(1), m.group(2), m.group(3) is not None
    family, negated, cmp = OPERATORS[base]
    set_op = {"ForAllValues": "all", "ForAnyValue": "any", None: None}[qualifier]
    if family == "null" and (if_exists or set_op):
        raise bad("Null takes no IfExists suffix or ForAllValues/ForAnyValue qualifier")
    key_path = f"{path}.{key}"
    texts: list[str] = []
    for i, value in enumerate(raw_values):
        try:
            texts.append(_as_text(value))
        except ValueError as exc:
            raise bad(str(exc), f"{key_path}[{i}]") from None
    test: Test | None
    null_values: frozenset[bool] = frozenset()
    try:
        if family == "string":
            test = _string_test(cmp, texts, with_vars)
        elif family == "arn":
            test = _arn_test(texts, with_vars)
        elif family == "numeric":
            test = _ordered_test(cmp, [parse_number(t) for t in texts], _read_number)
        elif family == "date":
            test = _ordered_test(cmp, [parse_date(t) for t in texts], _read_date)
        elif family == "bool":
            test = _bool_test(frozenset(_parse_bool(t) for t in texts))
        elif family == "binary":
            try:
                test = _binary_test(frozenset(base64.b64decode(t, validate=True) for t in texts))
            except binascii.Error:
                raise ValueError("values must be base64") from None
        elif family == "ip":
            test = _ip_test([ipaddress.ip_network(t.strip(), strict=False) for t in texts])
        else:
            test = None
            null_values = frozenset(_parse_bool(t) for t in texts)
    except ValueError as exc:
        raise bad(f"{exc}", key_path) from None
    plain = set_op is None and test is not None
    return CompiledCondition(operator, key.lower(), set_op, if_exists, negated, test, null_values, plain)
