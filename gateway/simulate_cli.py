"""``fedgate simulate``: decide actions against policies from files (or a configured role) and explain.

Exit status: 0 when every decision is ``allowed``, 1 when any is denied, 2 on bad input (an
unreadable file, an invalid policy, a malformed ``--context``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from gateway.errors import ConfigError, ServiceError
from gateway.iam.entries import CONTEXT_KEY_TYPES, ContextEntry, ContextKeyType, build_context
from gateway.iam.simulate import EvaluationResult, Simulation, SourcePolicy
from gateway.policy import PolicyKind
from gateway.policy.parse import MAX_SOURCE_CHARS

__all__ = ["add_simulate_command", "run_simulate"]

EXIT_ALLOWED, EXIT_DENIED, EXIT_BAD_INPUT = 0, 1, 2


class _BadInput(Exception):
    """Input the simulation cannot run on; the message is for the user."""


def add_simulate_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``fedgate simulate`` on ``subparsers`` (the ``fedgate`` command's)."""
    p = subparsers.add_parser(
        "simulate",
        help="decide actions against IAM policies and explain why",
        description="Evaluate actions on resources against identity, boundary, session and resource "
        "policies with fedgate's policy engine, and explain each decision. Exit status: 0 when every "
        "decision is allowed, 1 when any is denied, 2 on bad input.",
    )
    add = p.add_argument
    add(
        "--policy",
        action="append",
        default=[],
        metavar="FILE",
        help="identity policy (JSON or YAML); repeatable",
    )
    add(
        "--boundary",
        action="append",
        default=[],
        metavar="FILE",
        help="permissions boundary policy; repeatable",
    )
    add("--session-policy", action="append", default=[], metavar="FILE", help="session policy; repeatable")
    add("--resource-policy", metavar="FILE", help="the resource's policy (needs Principal elements)")
    add(
        "--action",
        action="append",
        default=[],
        required=True,
        metavar="ACTION",
        help="service:Action; repeatable",
    )
    add("--resource", action="append", default=[], metavar="ARN", help="resource ARN; repeatable (default *)")
    add(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE[,VALUE...]",
        help="a condition key's value; several comma-separated values make a list; repeatable",
    )
    add(
        "--context-type",
        action="append",
        default=[],
        metavar="KEY=TYPE",
        help=f"type of a --context key: {', '.join(CONTEXT_KEY_TYPES)} (default string, or "
        "stringList for several values); a scalar type takes the whole value, commas included",
    )
    add("--principal", metavar="ARN", help="the caller's ARN, matched against resource policy principals")
    add("--resource-owner", metavar="ACCOUNT", help="account owning the resource (default: the caller's)")
    add("--role", metavar="NAME", help="take the identity policies and tags of this role from -c CONFIG")
    add("-c", "--config", metavar="FILE", help="configuration file for --role")
    add("--json", action="store_true", help="print the results as IAM EvaluationResults JSON")
    p.set_defaults(handler=run_simulate)


def _load(path: str, *, id: str, kind: PolicyKind) -> SourcePolicy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _BadInput(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if len(text) > MAX_SOURCE_CHARS:
        raise _BadInput(f"{path}: longer than {MAX_SOURCE_CHARS} characters")
    source: str | dict[str, Any] = text
    if not text.lstrip().startswith("{"):
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            raise _BadInput(f"{path}: neither JSON nor YAML") from None
        if not isinstance(doc, dict):
            raise _BadInput(f"{path}: the policy must be a mapping")
        source = doc
    try:
        return SourcePolicy.parse(source, id=id, type=None, kind=kind)
    except ServiceError as exc:
        raise _BadInput(f"{path}: {exc.message}") from None


def _context(raw: list[str], types: list[str]) -> list[ContextEntry]:
    typed: dict[str, ContextKeyType] = {}
    for item in types:
        key, sep, name = item.partition("=")
        if not sep or name not in CONTEXT_KEY_TYPES:
            raise _BadInput(
                f"--context-type {item!r}: expected KEY=TYPE with TYPE one of {', '.join(CONTEXT_KEY_TYPES)}"
            )
        typed[key.lower()] = name  # type: ignore[assignment]
    out = []
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _BadInput(f"--context {item!r}: expected KEY=VALUE")
        given: ContextKeyType | None = typed.pop(key.lower(), None)
        kind: ContextKeyType
        if given is None:
            values = value.split(",")
            kind = "stringList" if len(values) > 1 else "string"
        else:
            kind = given
            values = value.split(",") if kind.endswith("List") else [value]
        out.append(ContextEntry(key, tuple(v for v in values if v or not kind.endswith("List")), kind))
    if typed:
        raise _BadInput(f"--context-type names keys with no --context: {', '.join(sorted(typed))}")
    return out


def _build(args: argparse.Namespace) -> tuple[Simulation, dict[str, Any]]:
    ids: dict[str, int] = {}

    def load(path: str, kind: PolicyKind) -> SourcePolicy:
        n = ids[path] = ids.get(path, 0) + 1
        return _load(path, id=path if n == 1 else f"{path}#{n}", kind=kind)

    for action in args.action:
        service, sep, name = action.partition(":")
        if not (sep and service and name) or len(action) > 128:
            raise _BadInput(f"--action {action[:128]!r}: expected service:Action")
    identity = [load(p, "identity") for p in args.policy]
    context: dict[str, Any] = {}
    caller = args.principal
    if args.role is not None:
        if args.config is None:
            raise _BadInput("--role needs -c/--config")
        from gateway.iam.catalog import build_snapshot
        from gateway.iam.records import records_from_config
        from gateway.iam.roles import find_role, principal_context, role_sources
        from gateway.startup import load_config

        config = load_config(args.config)
        role = find_role(build_snapshot(records_from_config(config)), args.role)
        identity = role_sources(role) + identity
        caller = caller or role.arn
        context.update(principal_context(role.arn, config.account_id, role.tags))
    if not identity:
        raise _BadInput("give at least one --policy, or --role with -c")
    entries = _context(args.context, args.context_type)
    context.update(build_context(entries))
    resource_policy = load(args.resource_policy, "resource") if args.resource_policy else None
    if resource_policy is not None and caller is None:
        raise _BadInput("--resource-policy needs --principal (or --role) to match its Principal against")
    simulation = Simulation(
        identity=identity,
        boundary=[load(p, "boundary") for p in args.boundary] or None,
        session=[load(p, "session") for p in args.session_policy] or None,
        resource_policy=resource_policy,
        caller_arn=caller,
        resource_owner=args.resource_owner,
    )
    return simulation, context


def _text(result: EvaluationResult) -> str:
    verdict = "ALLOWED" if result.decision.allowed else "DENIED "
    lines = [f"{verdict} {result.action} on {result.resource} ({result.eval_decision})"]
    lines.append(f"  {result.decision.explain()}")
    for ref in result.matched:
        where = f" at line {ref.start.line}, column {ref.start.column}" if ref.start else ""
        lines.append(f"  - statement {ref.index} of {ref.source_id}{where}")
    if result.boundary_allows is not None:
        lines.append(f"  permissions boundary {'allows' if result.boundary_allows else 'does not allow'} it")
    if result.missing_context:
        lines.append(
            f"  context keys the policies use but were not given: {', '.join(result.missing_context)}"
        )
    return "\n".join(lines)


def run_simulate(args: argparse.Namespace) -> int:
    """Run ``fedgate simulate``; the exit status is described in the module docstring."""
    try:
        simulation, context = _build(args)
        results = simulation.run(args.action, args.resource or ["*"], context)
    except (_BadInput, ServiceError, ConfigError, ValueError) as exc:
        message = exc.message if isinstance(exc, ServiceError) else str(exc)
        print(f"fedgate simulate: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps({"EvaluationResults": [r.to_wire() for r in results]}, indent=2))
    else:
        print("\n\n".join(_text(r) for r in results))
    return EXIT_ALLOWED if all(r.decision.allowed for r in results) else EXIT_DENIED
