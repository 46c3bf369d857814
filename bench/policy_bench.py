"""Policy decisions per second: fedgate's engine beside cedarpy (Cedar) and moto's IAM evaluator.

Run: ``python bench/policy_bench.py``. Two cases, each decided by all three on the same requests:

(a) a role with 10 policies x 10 statements using wildcards and conditions (StringLike on a
    principal tag, IpAddress, Bool), one Deny per policy;
(b) 1,000 statements (10 policies x 100) over 50 services.

Cedar gets a faithful translation: each statement becomes a ``permit`` (Allow) or ``forbid``
(Deny) whose ``when`` clause tests ``context.action like ...`` (actions lower-cased on both sides,
as IAM compares them case-insensitively), ``context.resource like ...`` (wildcards only in the
resource part of the ARN, where IAM's ``*`` also crosses ``:``), ``like`` for StringLike,
``ip(...).isInRange(...)`` for IpAddress and ``==`` for Bool. Forbid overrides permit exactly as an
explicit Deny does, so the decisions must agree, and the run checks that they do. cedarpy is timed
in its fastest supported forms: a pre-parsed ``PolicySet`` and ``Entities`` handle with
``is_authorized`` (one call per decision, like fedgate), and ``is_authorized_batch`` over all the
requests at once (per-decision time amortised).

moto (``moto.iam.access_control.IAMPolicy``) evaluates only ``StringEquals`` conditions and
ignores other operators, so it cannot express case (a)'s conditions: it is timed on the same
documents and its disagreements are counted, for scale only. Each figure is the best of several
rounds; the whole run takes about 20 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import cedarpy
from moto.iam.access_control import IAMPolicy, PermissionResult

from gateway.policy import PolicySet, Request, parse_policy

ROUND_SECONDS = 0.5
ROUNDS = 3
ACCOUNT = "123456789012"
CONTEXT = {
    "aws:PrincipalTag/team": "eng-db",
    "aws:SourceIp": "10.1.2.3",
    "aws:SecureTransport": "true",
}

Doc = dict[str, Any]


def case_a() -> tuple[list[Doc], list[tuple[str, str]]]:
    services = ["s3", "dynamodb", "sqs", "sns", "kms"]
    policies = []
    for p in range(10):
        statements = []
        for s in range(10):
            svc = services[(p + s) % len(services)]
            deny = s == 9
            statements.append(
                {
                    "Sid": f"P{p}S{s}",
                    "Effect": "Deny" if deny else "Allow",
                    "Action": [f"{svc}:Get*", f"{svc}:List*", f"{svc}:Describe*"],
                    "Resource": [f"arn:aws:{svc}:::thing-{p}-{s}/*", f"arn:aws:{svc}:::secret-{p}/*"]
                    if deny
                    else [f"arn:aws:{svc}:::thing-{p}-{s}/*", f"arn:aws:{svc}:::shared/{p}/*"],
                    "Condition": {
                        "StringLike": {"aws:PrincipalTag/team": [f"t{p}{s}-*", "eng-*", "ops"]},
                        "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]},
                        "Bool": {"aws:SecureTransport": "true"},
                    },
                }
            )
        policies.append({"Version": "2012-10-17", "Statement": statements})
    requests = [
        ("s3:GetObject", "arn:aws:s3:::shared/0/report.csv"),  # allowed (P0S0)
        ("s3:GetObject", "arn:aws:s3:::nowhere/x"),  # implicitDeny: every candidate evaluated
        ("s3:GetObject", "arn:aws:s3:::secret-1/x"),  # explicitDeny (P1S9... s3 at (1+9)%5 = 0)
        ("kms:DescribeKey", "arn:aws:kms:::thing-3-1/k"),  # allowed
    ]
    return policies, requests


def case_b() -> tuple[list[Doc], list[tuple[str, str]]]:
    policies = []
    for p in range(10):
        statements = []
        for s in range(100):
            n = p * 100 + s
            svc = f"svc{n % 50}"
            statements.append(
                {
                    "Effect": "Deny" if n % 97 == 0 else "Allow",
                    "Action": [f"{svc}:Read{n % 7}*", f"{svc}:Write{n}"],
                    "Resource": f"arn:aws:{svc}:::res-{n}/*",
                    "Condition": {"StringLike": {"aws:PrincipalTag/team": ["eng-*"]}},
                }
            )
        policies.append({"Version": "2012-10-17", "Statement": statements})
    requests = [
        ("svc7:Read0Thing", "arn:aws:svc7:::res-707/x"),  # n=707: allowed
        ("svc7:Read0Thing", "arn:aws:svc7:::res-9999/x"),  # implicitDeny
        ("svc44:Write194", "arn:aws:svc44:::res-194/x"),  # n=194 = 2*97: explicitDeny
        ("svc12:Write512", "arn:aws:svc12:::res-512/a/b"),  # allowed
    ]
    return policies, requests


# --- Cedar translation ---------------------------------------------------------------------------


def _cedar_str(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Cedar string literal for ASCII


def _any_like(field: str, patterns: Sequence[str]) -> str:
    return "(" + " || ".join(f"{field} like {_cedar_str(p)}" for p in patterns) + ")"


def to_cedar(policies: list[Doc]) -> str:
    out = []
    for doc in policies:
        for stmt in doc["Statement"]:
            actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
            resources = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
            for r in resources:
                head = r.split(":", 5)[:5]
                if any("*" in part or "?" in part for part in head) or "?" in r:
                    raise ValueError("the translation keeps wildcards in the resource part only")
            terms = [
                _any_like("context.action", [a.lower() for a in actions]),
                _any_like("context.resource", resources),
            ]
            for op, block in stmt.get("Condition", {}).items():
                for key, values in block.items():
                    vals = values if isinstance(values, list) else [values]
                    field = f"context[{_cedar_str(key.lower())}]"
                    if op == "StringLike":
                        terms.append(_any_like(field, vals))
                    elif op == "IpAddress":
                        terms.append(
                            "("
                            + " || ".join(f"ip({field}).isInRange(ip({_cedar_str(v)}))" for v in vals)
                            + ")"
                        )
                    elif op == "Bool":
                        terms.append(f"{field} == {_cedar_str(str(vals[0]).lower())}")
                    else:
                        raise ValueError(f"no translation for {op}")
            effect = "forbid" if stmt["Effect"] == "Deny" else "permit"
            out.append(f"{effect}(principal, action, resource) when {{ {' && '.join(terms)} }};")
    return "\n".join(out)


def cedar_request(action: str, resource: str) -> dict[str, Any]:
    context: dict[str, Any] = {k.lower(): v for k, v in CONTEXT.items()}
    context.update({"action": action.lower(), "resource": resource})
    return {
        "principal": 'User::"alice"',
        "action": 'Action::"call"',
        "resource": 'Resource::"r"',
        "context": context,
    }


# --- timing --------------------------------------------------------------------------------------


def per_call(fn: Callable[[], object], calls_per_run: int) -> float:
    """Best seconds per decision over several rounds."""
    best = float("inf")
    for _ in range(ROUNDS):
        n = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < ROUND_SECONDS:
            fn()
            n += 1
        best = min(best, elapsed / (n * calls_per_run))
    return best


def moto_decide(policies: list[IAMPolicy], action: str, resource: str) -> str:
    permitted = False
    for policy in policies:
        result = policy.is_action_permitted(action, resource, incoming_condition_values=CONTEXT)
        if result == PermissionResult.DENIED:
            return "explicitDeny"
        permitted = permitted or result == PermissionResult.PERMITTED
    return "allowed" if permitted else "implicitDeny"


def run_case(name: str, policies: list[Doc], requests: list[tuple[str, str]]) -> None:
    parsed = [parse_policy(doc, name=f"p{i}") for i, doc in enumerate(policies)]
    ps = PolicySet(identity=parsed)
    fg_requests = [Request(a, r, context=CONTEXT) for a, r in requests]
    fg_kinds = [ps.decide(r).kind for r in fg_requests]

    cedar_ps = cedarpy.PolicySet.from_str(to_cedar(policies))
    entities = cedarpy.Entities.from_json_str("[]")
    cedar_reqs = [cedar_request(a, r) for a, r in requests]
    cedar_kinds = []
    for req in cedar_reqs:
        result = cedarpy.is_authorized(req, cedar_ps, entities)
        if result.diagnostics.errors:
            raise SystemExit(f"cedar evaluation errors: {result.diagnostics.errors}")
        cedar_kinds.append(result.allowed)
    if [k == "allowed" for k in fg_kinds] != cedar_kinds:
        raise SystemExit(f"{name}: fedgate {fg_kinds} and Cedar {cedar_kinds} disagree")

    moto_policies = [IAMPolicy(json.dumps(doc)) for doc in policies]
    moto_kinds = [moto_decide(moto_policies, a, r) for a, r in requests]
    moto_disagree = sum(m != f for m, f in zip(moto_kinds, fg_kinds, strict=True))

    def fedgate() -> None:
        for r in fg_requests:
            ps.decide(r)

    def fedgate_with_request() -> None:  # building the Request (context normalisation) included
        for a, r in requests:
            ps.decide(Request(a, r, context=CONTEXT))

    def cedar_single() -> None:
        for req in cedar_reqs:
            cedarpy.is_authorized(req, cedar_ps, entities)

    def cedar_batch() -> None:
        cedarpy.is_authorized_batch(cedar_reqs, cedar_ps, entities)

    def moto() -> None:
        for a, r in requests:
            moto_decide(moto_policies, a, r)

    k = len(requests)
    t_fg = per_call(fedgate, k)
    t_fg_req = per_call(fedgate_with_request, k)
    t_cs = per_call(cedar_single, k)
    t_cb = per_call(cedar_batch, k)
    t_moto = per_call(moto, k)
    statements = sum(len(d["Statement"]) for d in policies)
    print(f"\n({name}) {len(policies)} policies, {statements} statements; decisions {fg_kinds}")
    rows = [
        ("fedgate PolicySet.decide", t_fg),
        ("fedgate decide + Request()", t_fg_req),
        ("cedarpy is_authorized (pre-parsed)", t_cs),
        ("cedarpy is_authorized_batch", t_cb),
        ("moto IAMPolicy", t_moto),
    ]
    for label, t in rows:
        print(f"  {label:38s} {t * 1e6:9.2f} us/decision  {1 / t:12,.0f} decisions/s")
    best_cedar = min(t_cs, t_cb)
    print(
        f"  fedgate/cedar per-call time: {t_fg_req / t_cs:.2f}x single-call, {t_fg_req / best_cedar:.2f}x "
        f"fastest cedar form (target <= 2x)"
    )
    print(
        f"  moto/fedgate time: {t_moto / t_fg_req:.1f}x (target >= 10x); moto disagrees on "
        f"{moto_disagree}/{k} requests (it cannot evaluate StringLike, IpAddress or Bool)"
    )


def cedar_floor() -> None:
    """cedarpy's fixed cost per call: one trivial policy, the same request shape."""
    trivial = cedarpy.PolicySet.from_str("permit(principal, action, resource);")
    entities = cedarpy.Entities.from_json_str("[]")
    req = cedar_request("s3:GetObject", "arn:aws:s3:::b/k")
    t = per_call(lambda: cedarpy.is_authorized(req, trivial, entities), 1)
    print(f"cedarpy floor (one trivial policy): {t * 1e6:.2f} us/decision")


def main() -> None:
    from importlib.metadata import version

    print(
        f"cedarpy {version('cedarpy')}, moto {version('moto')}; best of {ROUNDS} rounds of {ROUND_SECONDS}s"
    )
    cedar_floor()
    run_case("a", *case_a())
    run_case("b", *case_b())


if __name__ == "__main__":
    main()
