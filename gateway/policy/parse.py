"""Parsing and validation of IAM JSON policy documents.

Validation is complete and strict: anything fedgate would not evaluate exactly as AWS documents it
is refused here, with a :class:`~gateway.errors.MalformedPolicyDocument` whose message starts with
the element path (``Statement[1].Condition.StringLikeX: unknown condition operator``). Size and
shape are bounded before anything walks the document.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, get_args

from gateway.errors import MalformedPolicyDocument, PackedPolicyTooLarge
from gateway.jsonlimits import JsonLimitError
from gateway.jsonlimits import loads as bounded_loads
from gateway.policy.cache import LRU
from gateway.policy.compiled import CompiledPolicy, CompiledStatement, resource_test
from gateway.policy.conditions import CompiledCondition, compile_condition
from gateway.policy.model import ConditionClause, Effect, Policy, PolicyKind, PrincipalSpec, Statement
from gateway.policy.wildcard import Template, Var, parse_template

__all__ = ["MAX_SOURCE_CHARS", "minify", "parse_policy", "policy_size"]

MAX_SOURCE_CHARS = 131_072  # far above any AWS policy limit (largest: 10,240 for role inline policies)
_MAX_DEPTH = 8  # doc > Statement > stmt > Condition > operator > key > values is 7 containers deep
_MAX_NODES = 20_000
_VERSIONS = ("2012-10-17", "2008-10-17")
_KINDS = frozenset(get_args(PolicyKind))
_TOP = frozenset({"Version", "Id", "Statement"})
_STMT = frozenset(
    {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
    }
)
_SID_RE = re.compile(r"^[A-Za-z0-9]*\Z")
_ACTION_RE = re.compile(r"^(?:\*|[A-Za-z0-9*?-]+:[A-Za-z0-9*?_-]+)\Z")
_PRINCIPAL_TYPES = ("AWS", "Federated", "Service", "CanonicalUser")
_AWS_PRINCIPAL_RE = re.compile(r"^(?:\*|\d{12}|arn:aws[a-z-]*:(?:iam|sts)::\d{12}:[\x21-\x7e]+)\Z")
_PRINCIPAL_VALUE_RE = re.compile(r"^[\x21-\x7e]+\Z")
_KEY_RE = re.compile(r"^[\x20-\x7e]{1,256}\Z")

_cache: LRU[tuple[str, str, str], Policy] = LRU(1024)


class _Bad(Exception):
    """Internal: carries an element path and message up to parse_policy."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.message = f"{path}: {message}"


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            # Two "Effect"s (say) would be read differently by different parsers: refuse both.
            raise _Bad(key, "duplicate key")
        out[key] = value
    return out


def _check_shape(doc: object) -> None:
    """Bound depth and node count iteratively, before any recursive walk."""
    stack: list[tuple[object, int]] = [(doc, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > _MAX_NODES:
            raise _Bad("Policy", f"document has more than {_MAX_NODES} elements")
        if isinstance(node, Mapping):
            if depth > _MAX_DEPTH:
                raise _Bad("Policy", f"document nests deeper than {_MAX_DEPTH} levels")
            for k, v in node.items():
                if not isinstance(k, str):
                    raise _Bad("Policy", f"key {k!r} is not a string")
                stack.append((v, depth + 1))
        elif isinstance(node, list | tuple):
            if depth > _MAX_DEPTH:
                raise _Bad("Policy", f"document nests deeper than {_MAX_DEPTH} levels")
            stack.extend((v, depth + 1) for v in node)


def _canonical(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def policy_size(source: str | Mapping[str, Any]) -> int:
    """Characters of a policy for size limits: a string as given; a mapping as compact JSON."""
    if isinstance(source, str):
        return len(source)
    _check_shape(source)
    return len(json.dumps(source, separators=(",", ":"), ensure_ascii=False, default=str))


def minify(source: str | Mapping[str, Any]) -> str:
    """The one compact form of a policy document: no whitespace, keys sorted, UTF-8 as is.

    How a session policy is stored in a session token and measured for ``PackedPolicySize``;
    ``ValueError`` if ``source`` is not JSON.
    """
    document = bounded_loads(source) if isinstance(source, str) else source
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def parse_policy(
    source: str | Mapping[str, Any],
    *,
    kind: PolicyKind = "identity",
    name: str = "policy",
    max_chars: int | None = None,
) -> Policy:
    """Validate and compile a policy document.

    Args:
        source: JSON text or an already-decoded mapping (from YAML, say).
        kind: the role the policy plays; decides which elements are required or forbidden.
        name: how decisions and explanations refer to it.
        max_chars: refuse (with :class:`~gateway.errors.PackedPolicyTooLarge`) a document whose
            :func:`policy_size` is larger.

    Results are cached by document, kind and name, so parsing the same session policy again is a
    hash and a lookup.

    Raises:
        MalformedPolicyDocument: the message starts with the path of the offending element.
        PackedPolicyTooLarge: over ``max_chars``.
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown policy kind {kind!r}")
    try:
        if isinstance(source, str):
            if max_chars is not None and len(source) > max_chars:
                raise PackedPolicyTooLarge(f"Policy: document is longer than {max_chars} characters")
            if len(source) > MAX_SOURCE_CHARS:
                raise _Bad("Policy", f"document is longer than {MAX_SOURCE_CHARS} characters")
            key = (kind, name, "s:" + hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest())
            cached = _cache.get(key)
            if cached is not None:
                return cached
            try:
                doc = bounded_loads(source, max_depth=_MAX_DEPTH, object_pairs_hook=_reject_duplicates)
            except JsonLimitError as exc:
                raise _Bad("Policy", str(exc)) from None
            except ValueError as exc:
                if isinstance(exc, json.JSONDecodeError):
                    raise _Bad("Policy", f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
                raise
            _check_shape(doc)
        elif isinstance(source, Mapping):
            _check_shape(source)
            doc = source
            try:
                canonical = _canonical(doc)
            except (TypeError, ValueError):
                canonical = None  # validation below names the offending value
            if max_chars is not None and canonical is not None and len(canonical) > max_chars:
                raise PackedPolicyTooLarge(f"Policy: document is longer than {max_chars} characters")
            key = (kind, name, "m:" + hashlib.sha256((canonical or "").encode()).hexdigest())
            if canonical is not None:
                cached = _cache.get(key)
                if cached is not None:
                    return cached
        else:
            raise _Bad("Policy", "must be a JSON object")
        # compile_condition raises MalformedPolicyDocument itself, with its full path.
        policy = _build(doc, kind=kind, name=name)
    except _Bad as exc:
        raise MalformedPolicyDocument(exc.message) from None
    _cache.put(key, policy)
    return policy


def _build(doc: object, *, kind: PolicyKind, name: str) -> Policy:
    if not isinstance(doc, Mapping):
        raise _Bad("Policy", "must be a JSON object")
    for k in doc:
        if k not in _TOP:
            raise _Bad(k, "unknown element")
    version = doc.get("Version", "2008-10-17")
    if version not in _VERSIONS or not isinstance(version, str):
        hint = " (quote it in YAML)" if not isinstance(version, str) else ""
        raise _Bad("Version", f'must be "2012-10-17" or "2008-10-17"{hint}')
    pid = doc.get("Id")
    if pid is not None and not isinstance(pid, str):
        raise _Bad("Id", "must be a string")
    if "Statement" not in doc:
        raise _Bad("Statement", "is required")
    raw = doc["Statement"]
    if isinstance(raw, Mapping):
        items: list[tuple[str, object]] = [("Statement", raw)]
    elif isinstance(raw, list) and raw:
        items = [(f"Statement[{i}]", s) for i, s in enumerate(raw)]
    else:
        raise _Bad("Statement", "must be an object or a non-empty list of objects")
    with_vars = version == "2012-10-17"
    statements: list[Statement] = []
    compiled: list[CompiledStatement] = []
    sids: set[str] = set()
    for index, (path, item) in enumerate(items):
        stmt, resource, conds = _statement(item, index, path, kind, with_vars)
        if stmt.sid:
            if stmt.sid in sids:
                raise _Bad(f"{path}.Sid", f'duplicate Sid "{stmt.sid}"')
            sids.add(stmt.sid)
        statements.append(stmt)
        compiled.append(CompiledStatement(stmt, policy=name, kind=kind, resource=resource, conditions=conds))
    canonical = _canonical(doc)
    return Policy(
        name=name,
        kind=kind,
        version=version,
        id=pid,
        statements=tuple(statements),
        digest=hashlib.sha256(canonical.encode()).hexdigest(),
        size=len(canonical),
        compiled=CompiledPolicy(name, kind, tuple(compiled)),
    )


def _strings(value: object, path: str) -> list[tuple[str, str]]:
    """A string or non-empty list of strings, each with its path."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, list) and value:
        out = []
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise _Bad(f"{path}[{i}]", "must be a string")
            out.append((f"{path}[{i}]", v))
        return out
    raise _Bad(path, "must be a string or a non-empty list of strings")


def _statement(
    item: object, index: int, path: str, kind: PolicyKind, with_vars: bool
) -> tuple[Statement, Any, tuple[CompiledCondition, ...]]:
    if not isinstance(item, Mapping):
        raise _Bad(path, "must be an object")
    for k in item:
        if k not in _STMT:
            raise _Bad(f"{path}.{k}", "unknown element")
    sid = item.get("Sid", "")
    if not isinstance(sid, str) or not _SID_RE.match(sid):
        raise _Bad(f"{path}.Sid", "must contain only letters and digits")
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise _Bad(f"{path}.Effect", 'must be "Allow" or "Deny"')
    eff: Effect = "Allow" if effect == "Allow" else "Deny"

    actions, not_actions = _pair(item, path, "Action", "NotAction", required=True)
    for p, a in actions or not_actions or []:
        if not _ACTION_RE.match(a):
            raise _Bad(p, f'"{a}" is not "service:Action" or "*"')

    res_required = kind != "trust"
    if kind == "trust" and ("Resource" in item or "NotResource" in item):
        elem = "Resource" if "Resource" in item else "NotResource"
        raise _Bad(f"{path}.{elem}", "not allowed in a trust policy")
    resources, not_resources = _pair(item, path, "Resource", "NotResource", required=res_required)
    resource = None
    res_list = resources if resources is not None else not_resources
    if res_list is not None:
        for p, r in res_list:
            if r != "*" and not (r.startswith("arn:") and r.count(":") >= 5):
                raise _Bad(p, f'"{r}" is not an ARN (arn:partition:service:region:account:resource) or "*"')
            try:
                template = parse_template(r) if with_vars else None
            except ValueError as exc:
                raise _Bad(p, str(exc)) from None
            if template is not None and _variable_in_arn_head(template):
                # AWS: "You can't use a variable to replace parts of the ARN before the fifth colon".
                raise _Bad(p, "a policy variable may stand only in the resource part (after the fifth colon)")
        patterns = [r for _, r in res_list]
        negate = resources is None
        if not (patterns == ["*"] and not negate):  # "Resource": "*" needs no test
            resource = resource_test(patterns, with_vars=with_vars, negate=negate)

    needs_principal = kind in ("trust", "resource")
    principal = not_principal = None
    if "Principal" in item and "NotPrincipal" in item:
        raise _Bad(path, "has both Principal and NotPrincipal")
    if not needs_principal:
        for elem in ("Principal", "NotPrincipal"):
            if elem in item:
                raise _Bad(f"{path}.{elem}", f"not allowed in a {kind} policy")
    elif "Principal" in item:
        principal = _principal(item["Principal"], f"{path}.Principal")
    elif "NotPrincipal" in item:
        if eff == "Allow":
            raise _Bad(f"{path}.NotPrincipal", 'is only supported with "Effect": "Deny"')
        not_principal = _principal(item["NotPrincipal"], f"{path}.NotPrincipal")
    else:
        raise _Bad(path, f"a {kind} policy statement needs Principal or NotPrincipal")

    clauses, conds = _conditions(item.get("Condition"), f"{path}.Condition", with_vars)
    stmt = Statement(
        index=index,
        sid=sid,
        effect=eff,
        actions=tuple(a for _, a in actions) if actions is not None else None,
        not_actions=tuple(a for _, a in not_actions) if not_actions is not None else None,
        resources=tuple(r for _, r in resources) if resources is not None else None,
        not_resources=tuple(r for _, r in not_resources) if not_resources is not None else None,
        principal=principal,
        not_principal=not_principal,
        conditions=clauses,
    )
    return stmt, resource, conds


def _variable_in_arn_head(template: Template) -> bool:
    """Whether a variable stands before the fifth colon (partition, service, region, account)."""
    colons = 0
    for part in template.parts:
        if isinstance(part, Var):
            if colons < 5:
                return True
        elif part[0] == "raw":
            colons += part[1].count(":")
    return False


def _pair(
    item: Mapping[str, object], path: str, pos: str, neg: str, *, required: bool
) -> tuple[list[tuple[str, str]] | None, list[tuple[str, str]] | None]:
    if pos in item and neg in item:
        raise _Bad(path, f"has both {pos} and {neg}")
    if pos in item:
        return _strings(item[pos], f"{path}.{pos}"), None
    if neg in item:
        return None, _strings(item[neg], f"{path}.{neg}")
    if required:
        raise _Bad(path, f"needs {pos} or {neg}")
    return None, None


def _principal(value: object, path: str) -> PrincipalSpec:
    if value == "*":
        return PrincipalSpec(any_principal=True)
    if not isinstance(value, Mapping) or not value:
        raise _Bad(path, 'must be "*" or an object keyed by AWS, Federated, Service or CanonicalUser')
    out: dict[str, tuple[str, ...]] = {}
    for ptype, raw in value.items():
        if ptype not in _PRINCIPAL_TYPES:
            raise _Bad(f"{path}.{ptype}", "unknown principal type")
        vals = _strings(raw, f"{path}.{ptype}")
        for p, v in vals:
            ok = _AWS_PRINCIPAL_RE.match(v) if ptype == "AWS" else _PRINCIPAL_VALUE_RE.match(v)
            # Partial wildcards are not principals in AWS; "*" alone is allowed only for AWS.
            if not ok or ("*" in v and v != "*") or "?" in v or (v == "*" and ptype != "AWS"):
                raise _Bad(p, f'"{v}" is not a valid {ptype} principal')
        out[ptype] = tuple(v for _, v in vals)
    return PrincipalSpec(values=out)


def _conditions(
    value: object, path: str, with_vars: bool
) -> tuple[tuple[ConditionClause, ...], tuple[CompiledCondition, ...]]:
    if value is None:
        return (), ()
    if not isinstance(value, Mapping):
        raise _Bad(path, "must be an object of condition operators")
    clauses: list[ConditionClause] = []
    compiled: list[CompiledCondition] = []
    for op, block in value.items():
        op_path = f"{path}.{op}"
        if not isinstance(block, Mapping) or not block:
            # Validate the operator first so the more useful message wins.
            compile_condition(op, "k", ["v"], with_vars=False, path=op_path)
            raise _Bad(op_path, "must be a non-empty object of condition keys")
        for key, raw in block.items():
            key_path = f"{op_path}.{key}"
            if not _KEY_RE.match(key):
                raise _Bad(key_path, "condition key must be 1-256 printable ASCII characters")
            values: Sequence[object] = raw if isinstance(raw, list) else [raw]
            if not values:
                raise _Bad(key_path, "must not be an empty list")
            if any(isinstance(v, list | Mapping) or v is None for v in values):
                raise _Bad(key_path, "values must be strings, numbers or booleans")
            compiled.append(compile_condition(op, key, values, with_vars=with_vars, path=op_path))
            clauses.append(ConditionClause(op, key, tuple(_text(v) for v in values)))
    return tuple(clauses), tuple(compiled)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
