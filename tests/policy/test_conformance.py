"""Cases where fedgate follows a rule of AWS's IAM User Guide that is easy to get wrong.

Each test quotes the page and sentences it follows. Where the pages contradict each other, the test
says so and checks the answer fedgate takes instead: the one that denies, whatever the effect.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import MalformedPolicyDocument
from tests.policy.policy_helpers import allow, cond_holds, decide, identity

# -- Arn* condition values that are not ARNs -----------------------------------------------------


@pytest.mark.parametrize("value", ["arn:aws:sns:*:alerts", "bucket", "arn:aws:s3", "*:*"])
def test_arn_condition_value_that_is_not_an_arn_matches_nothing(value: str) -> None:
    """ "IAM JSON policy elements: Condition operators", Amazon Resource Name (ARN) condition
    operators: ``ArnEquals``, ``ArnLike`` are a "Case-sensitive matching of the ARN. Each of the
    six colon-delimited components of the ARN is checked separately and each can include
    multi-character match wildcards (*) or single-character match wildcards (?)."

    A value without six components can match no ARN component by component: the policy is valid,
    the value matches nothing (the other values still count), and the negated operators hold.
    """
    topic = {"aws:SourceArn": "arn:aws:sns:eu-west-1:123456789012:alerts"}
    assert not cond_holds("ArnLike", "aws:SourceArn", value, topic)
    assert not cond_holds("ArnEquals", "aws:SourceArn", [value], topic)
    assert cond_holds("ArnLike", "aws:SourceArn", [value, "arn:aws:sns:*:*:alerts"], topic)
    assert cond_holds("ArnNotLike", "aws:SourceArn", value, topic)
    assert not cond_holds("ArnNotLike", "aws:SourceArn", [value, "arn:aws:sns:*:*:alerts"], topic)
    # Even a context value spelled exactly like it: the value is not compared as a string.
    assert not cond_holds("ArnLike", "aws:SourceArn", value, {"aws:SourceArn": value})
    # ...and a Deny holding only such values keeps nothing from being allowed.
    p = identity(allow(), allow({"ArnLike": {"aws:SourceArn": value}}, Effect="Deny"))
    assert decide([p], context=topic).allowed


def test_resource_arns_follow_the_resource_element_rules() -> None:
    """ "IAM JSON policy elements: Resource": "You specify a resource using an ARN." and "You can
    use wildcard characters (* and ?) within any ARN segment (the parts separated by colons)."
    "IAM policy elements: Variables and tags", Resource element: "You can use a policy variable in
    the Resource element, but only in the resource portion of the ARN. This portion of the ARN
    appears after the fifth colon (:). You can't use a variable to replace parts of the ARN before
    the fifth colon, such as the service or account."

    fedgate accepts exactly that: wildcards in any of the six parts, variables only in the sixth;
    anything else is refused (a variable in the account would otherwise be substituted there).
    """
    wild = identity(allow(Resource="arn:*:s?:*:*:*"))
    assert decide([wild], resource="arn:aws:s3:::b/k").allowed
    assert not decide([wild], resource="arn:aws:sqs:eu-west-1:123456789012:q").allowed
    late = identity(allow(Resource="arn:aws:sqs:us-east-2:*:${aws:username}-queue"))
    assert decide(
        [late], resource="arn:aws:sqs:us-east-2:123456789012:alice-queue", context={"aws:username": "alice"}
    ).allowed
    for bad in (
        "arn:aws:iam::${aws:PrincipalAccount}:role/x",
        "arn:${aws:partition}:s3:::b",
        "arn:aws:s3:${aws:RequestedRegion}::b",
        "b/*",
        "arn:aws:s3:b",
    ):
        with pytest.raises(MalformedPolicyDocument):
            identity(allow(Resource=bad))
    # Escapes are not variables, and a 2008-10-17 policy takes "${" literally anywhere.
    identity(allow(Resource="arn:aws:s3:${*}::b"))
    identity(allow(Resource="arn:aws:iam::${aws:x}:role/r"), version=None)


# -- ForAnyValue / ForAllValues with IfExists on a missing key ------------------------------------

MISSING: list[dict[str, Any]] = [{}, {"aws:TagKeys": []}]
ANY_IF_EXISTS = [
    "ForAnyValue:StringEqualsIfExists",
    "ForAnyValue:StringNotEqualsIfExists",
    "ForAnyValue:StringLikeIfExists",
    "ForAnyValue:StringNotLikeIfExists",
]


@pytest.mark.parametrize("context", MISSING, ids=["absent", "empty"])
@pytest.mark.parametrize("op", ANY_IF_EXISTS)
def test_for_any_value_if_exists_on_a_missing_key_denies(op: str, context: dict[str, Any]) -> None:
    """The pages disagree, so fedgate takes the answer that denies.

    "IAM JSON policy elements: Condition operators", ...IfExists condition operators: "If the
    policy key is present in the context of the request, process the key as specified in the
    policy. If the key is not present, evaluate the condition element as true."

    "Single-valued vs. multivalued context keys", Set operators for multivalued context keys, on
    ``ForAnyValue``: "For no matching context key or a null dataset, the condition returns false."

    Both describe ``ForAnyValue:StringEqualsIfExists`` on a request without the key. Treating it as
    true would let an Allow grant what its author meant to restrict (and IAM itself refuses such
    an Allow in practice); treating it as false would let a Deny stop denying. fedgate treats it as
    undecidable: an Allow with it does not apply and a Deny with it does.
    """
    assert not cond_holds(op, "aws:TagKeys", ["team"], context)
    deny = identity(allow(), allow({op: {"aws:TagKeys": ["team"]}}, Effect="Deny"))
    d = decide([deny], context=context)
    assert (d.allowed, d.kind) == (False, "explicitDeny")
    # With the key present, IfExists changes nothing: plain ForAnyValue semantics.
    positive = "Not" not in op
    assert cond_holds(op, "aws:TagKeys", ["team"], {"aws:TagKeys": ["team", "x"]})
    assert cond_holds(op, "aws:TagKeys", ["team"], {"aws:TagKeys": ["x"]}) is not positive


@pytest.mark.parametrize("context", MISSING, ids=["absent", "empty"])
@pytest.mark.parametrize("op", ["ForAllValues:StringEqualsIfExists", "ForAllValues:StringLikeIfExists"])
def test_for_all_values_if_exists_on_a_missing_key_holds(op: str, context: dict[str, Any]) -> None:
    """Here the pages agree. "Single-valued vs. multivalued context keys", on ``ForAllValues``: "It
    also returns true if there are no context keys in the request or if the context key value
    resolves to a null dataset, such as an empty string." "IAM JSON policy elements: Condition
    operators", ...IfExists: "If the key is not present, evaluate the condition element as true."
    """
    assert cond_holds(op, "aws:TagKeys", ["team"], context)
    assert cond_holds(op, "aws:TagKeys", ["team"], {"aws:TagKeys": ["team"]})
    assert not cond_holds(op, "aws:TagKeys", ["team"], {"aws:TagKeys": ["team", "x"]})


# -- Policy variables with no value in Resource --------------------------------------------------

HOME = "arn:aws:s3:::home/${aws:username}/*"


def test_deny_whose_resource_variable_has_no_value_does_not_match() -> None:
    """ "IAM policy elements: Variables and tags", Policy variables with no value: "If a variable
    that has no value in the authorization context is used as part of the Resource or NotResource
    element of a policy, the resource that includes a policy variable with no value will not match
    any resource."

    So a Deny whose only Resource pattern cannot be resolved denies nothing; its other patterns
    (static, or templates that resolve) still deny.
    """
    p = identity(allow(), allow(Effect="Deny", Resource=HOME))
    assert decide([p], resource="arn:aws:s3:::home/alice/k").allowed  # no aws:username: no match
    d = decide([p], resource="arn:aws:s3:::home/alice/k", context={"aws:username": "alice"})
    assert d.kind == "explicitDeny"
    several = identity(
        allow(),
        allow(
            Effect="Deny", Resource=[HOME, "arn:aws:s3:::team/${aws:PrincipalTag/team}/*", "arn:aws:s3:::x/*"]
        ),
    )
    assert decide([several], resource="arn:aws:s3:::x/k").kind == "explicitDeny"  # the static one
    team = {"aws:PrincipalTag/team": "eng"}  # aws:username still missing
    assert decide([several], resource="arn:aws:s3:::team/eng/k", context=team).kind == "explicitDeny"
    assert decide([several], resource="arn:aws:s3:::team/ops/k", context=team).allowed


def test_unresolvable_variable_never_allows() -> None:
    """The same sentence, for the Allow side: an Allow whose Resource pattern cannot be resolved
    matches no resource. In NotResource AWS would let such a pattern exclude nothing, so an Allow
    with ``NotResource`` would cover every resource: fedgate does not apply that Allow (and still
    applies a Deny, which is also AWS's answer), so a missing variable never grants anything.
    """
    p = identity(allow(Resource=HOME))
    assert not decide([p], resource="arn:aws:s3:::home/alice/k").allowed
    assert decide([p], resource="arn:aws:s3:::home/alice/k", context={"aws:username": "alice"}).allowed
    two = identity(allow(Resource=[HOME, "arn:aws:s3:::team/${aws:PrincipalTag/team}/*"]))
    team = {"aws:PrincipalTag/team": "eng"}
    assert decide([two], resource="arn:aws:s3:::team/eng/k", context=team).allowed  # the one that resolves
    assert not decide([two], resource="arn:aws:s3:::home/alice/k", context=team).allowed
    not_resource = identity(allow(Resource=None, NotResource=HOME))
    assert not decide([not_resource], resource="arn:aws:s3:::other/k").allowed
    deny_not_resource = identity(allow(), allow(Effect="Deny", Resource=None, NotResource=HOME))
    assert decide([deny_not_resource], resource="arn:aws:s3:::other/k").kind == "explicitDeny"
    # A variable with no value in a condition still fails closed in both directions.
    cond = identity(allow({"StringEquals": {"s3:prefix": "${aws:username}"}}))
    assert not decide([cond], context={"s3:prefix": "alice"}).allowed
