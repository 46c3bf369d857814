"""fedgate's AWS IAM policy engine: parse, compile once, decide fast, fail closed.

Pure and synchronous (no I/O, no aiohttp). One engine serves trust policies (who may assume a
role), identity, resource, boundary and session policies::

    policy = parse_policy(document, kind="trust", name="deploy-role-trust")
    decision = evaluate_trust(policy, Request(
        action="sts:AssumeRoleWithWebIdentity",
        resource=role_arn,
        principal={"Federated": [provider_arn]},
        context={"token.actions.githubusercontent.com:sub": "repo:org/app:ref:refs/heads/main"},
    ))
    if not decision.allowed:
        log(decision.explain())

Anything the engine does not understand (unknown element, operator or value type) is refused at
parse time with :class:`~gateway.errors.MalformedPolicyDocument` naming the element path, and
anything it cannot evaluate for a request (a policy variable with no value, a context value an
operator cannot read) makes an Allow not apply and a Deny apply. The one exception is AWS's own
rule for ``Resource``: a pattern whose variable has no value matches no resource, for a Deny too.
"""

from __future__ import annotations

from gateway.policy.compiled import CompiledPolicy
from gateway.policy.decisions import TrustMemo
from gateway.policy.evaluate import PolicySet, evaluate, evaluate_trust
from gateway.policy.model import Decision, MatchedStatement, Policy, PolicyKind, Request, Statement
from gateway.policy.parse import minify, parse_policy, policy_size

__all__ = [
    "CompiledPolicy",
    "Decision",
    "MatchedStatement",
    "Policy",
    "PolicyKind",
    "PolicySet",
    "Request",
    "Statement",
    "TrustMemo",
    "evaluate",
    "evaluate_trust",
    "minify",
    "parse_policy",
    "policy_size",
]
