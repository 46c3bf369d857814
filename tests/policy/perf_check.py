"""Self-check, not a test: how long does deciding a role with 10 policies x 10 statements take?

Run ``.venv/bin/python tests/policy/perf_check.py``. The target is well under 50 µs per decision.
"""

from __future__ import annotations

import timeit
from typing import Any

from gateway.policy import PolicySet, Request, evaluate, parse_policy

SERVICES = ["s3", "dynamodb", "sqs", "sns", "kms"]


def statement(p: int, s: int) -> dict[str, Any]:
    svc = SERVICES[(p + s) % len(SERVICES)]
    home = f"arn:aws:{svc}:::secret/*" if s == 9 else f"arn:aws:{svc}:::home/${{aws:username}}/*"
    return {
        "Sid": f"P{p}S{s}",
        "Effect": "Deny" if s == 9 else "Allow",
        "Action": [f"{svc}:Get*", f"{svc}:List*", f"{svc}:Describe?tream"],
        "Resource": [f"arn:aws:{svc}:*:123456789012:thing-{p}-{s}/*", home],
        "Condition": {
            "StringLike": {"aws:PrincipalTag/team": [f"t{p}{s}-*", "eng-*", "ops"]},
            "IpAddressIfExists": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]},
            "DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"},
            "Bool": {"aws:SecureTransport": "true"},
        },
    }


def main() -> None:
    policies = [
        parse_policy(
            {"Version": "2012-10-17", "Statement": [statement(p, s) for s in range(10)]}, name=f"p{p}"
        )
        for p in range(10)
    ]
    ctx = {
        "aws:username": "alice",
        "aws:PrincipalTag/team": "eng-db",
        "aws:SourceIp": "10.1.2.3",
        "aws:CurrentTime": "2026-01-01T00:00:00Z",
        "aws:SecureTransport": "true",
    }
    ps = PolicySet(identity=policies)
    cases = {
        "allowed": Request("s3:GetObject", "arn:aws:s3:::home/alice/notes.txt", context=ctx),
        # Nothing allows it: every candidate statement is evaluated (the worst case).
        "implicitDeny": Request("s3:GetObject", "arn:aws:s3:::home/bob/notes.txt", context=ctx),
        "explicitDeny": Request("s3:GetObject", "arn:aws:s3:::secret/x", context=ctx),
    }
    n = 20_000
    for expected, req in cases.items():
        assert ps.decide(req).kind == expected, expected
        candidates = sum(
            len(d) + len(a) for d, a in (p.compiled.candidates(req.action_lower) for p in policies)
        )
        for label, fn in [
            ("PolicySet.decide", lambda req=req: ps.decide(req)),
            ("evaluate()", lambda req=req: evaluate(req, identity=policies)),
        ]:
            best = min(timeit.repeat(fn, number=n, repeat=5)) / n
            note = f"({candidates} of 100 statements match the action)"
            print(f"{expected:13s} {label:17s} {best * 1e6:7.2f} µs  {note}")


if __name__ == "__main__":
    main()
