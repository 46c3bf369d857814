"""CallerView: a caller's context and decisions worked out once give exactly what a fresh
evaluation gives (:func:`permissions.session_context` + :func:`permissions.decide`)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.context import Transport
from gateway.iam import permissions
from gateway.iam.caller import Caller
from gateway.iam.catalog import CatalogSnapshot, build_snapshot
from gateway.iam.permissions import CallerView, CallerViews, Check
from gateway.iam.records import CatalogRecords, InlinePolicyRecord, RoleRecord
from gateway.policy import Request
from tests.iam.test_permissions import ACCOUNT, ROLE, TRUST, claims

# Statements whose outcome turns on context keys of every origin: the caller's tags, identity
# claims, the time, the source, MFA, a request key and its absence (Null, IfExists).
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::data/${aws:PrincipalTag/team}/*",
        },
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "*",
            "Condition": {"StringLike": {"s3:prefix": "${idp:sub}/*"}},
        },
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
        {
            "Effect": "Deny",
            "Action": "s3:PutObject",
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        },
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": "*",
            "Condition": {
                "Null": {"s3:x-amz-acl": "true"},
                "NumericLessThan": {"aws:EpochTime": "1800000500"},
            },
        },
    ],
}


def snapshot(tags: dict[str, str]) -> CatalogSnapshot:
    role = RoleRecord("app", TRUST, inline_policies=(InlinePolicyRecord("p", POLICY),), tags=tags)
    return build_snapshot(CatalogRecords(ACCOUNT, roles=(role,)))


SNAPSHOTS = {"blue": snapshot({"team": "blue"}), "none": snapshot({}), "TEAM": snapshot({"TEAM": "red"})}
names = st.sampled_from(["blue", "red", "alice", "*", "a/b", "Team", "TEAM", ""])
claim_keys = st.sampled_from(["idp:sub", "IDP:SUB", "aws:SourceIp", "aws:PrincipalTag/team", "aws:username"])
claim_values = st.one_of(names, st.lists(names, max_size=3))
sessions = st.builds(
    lambda tags, idc, mfa, mfa_at: Caller.of_session(
        claims(tags=tags, identity_claims=idc, mfa_authenticated=mfa, mfa_at=mfa_at)
    ),
    st.dictionaries(st.sampled_from(["team", "Team", "dept"]), names, max_size=2),
    st.dictionaries(claim_keys, claim_values, max_size=3),
    st.booleans(),
    st.sampled_from([None, 1_800_000_100.0]),
)
users = st.builds(
    lambda name: Caller.of_user(
        arn=f"arn:aws:iam::{ACCOUNT}:user/{name or 'u'}",
        user_id="AIDAEXAMPLEEXAMPLE12",
        account_id=ACCOUNT,
        name=name or "u",
        access_key_id="AKIAEXAMPLEEXAMPLE12",
    ),
    names,
)
transports = st.builds(
    Transport,
    source_ip=st.sampled_from(["203.0.113.9", "10.1.2.3", "::1"]),
    secure=st.booleans(),
    user_agent=st.sampled_from([None, "aws-cli/2"]),
    referer=st.sampled_from([None, "https://example.com/"]),
    now=st.sampled_from([1_800_000_000.0, 1_800_000_499.5, 1_800_000_500.0, 1_800_000_900.0]),
)
# Few distinct checks, so that a view meets the same question again under other keys (a cache hit).
CHECKS = [
    [Check("s3:GetObject", "arn:aws:s3:::data/blue/k")],
    [Check("S3:getobject", "arn:aws:s3:::data/red/k")],
    [Check("s3:ListBucket", "arn:aws:s3:::data", {"s3:prefix": "alice/x"})],
    [Check("s3:ListBucket", "arn:aws:s3:::data", {"S3:Prefix": "blue/"})],
    [Check("s3:PutObject", "arn:aws:s3:::data/blue/k")],
    [Check("s3:PutObject", "arn:aws:s3:::data/blue/k", {"s3:x-amz-acl": "public-read"})],
    [Check("s3:PutObject", "*", {"aws:SourceIp": "10.9.9.9"})],
    [Check("s3:GetObject", "arn:aws:s3:::data/blue/k"), Check("s3:PutObject", "arn:aws:s3:::data/blue/k")],
]
check_lists = st.sampled_from(CHECKS)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    caller=st.one_of(sessions, users),
    snap=st.sampled_from(sorted(SNAPSHOTS)),
    transport=transports,
    requests=st.lists(st.tuples(transports, check_lists), min_size=2, max_size=12),
)
def test_a_view_decides_as_a_fresh_evaluation(
    caller: Caller, snap: str, transport: Transport, requests: list[tuple[Transport, list[Check]]]
) -> None:
    snapshot = SNAPSHOTS[snap]
    view = CallerView(snapshot, caller)
    # One view serves many requests: its remembered decisions must match each fresh one.
    for transport, checks in requests:
        fresh = permissions.session_context(snapshot, caller, transport, region="eu-west-1")
        ctx = view.context(transport, region="eu-west-1")
        assert ctx == Request(action="s3:GetObject", resource="*", context=fresh).ctx
        assert view.decide(checks, ctx) == permissions.decide(snapshot, caller, checks, fresh)


def test_views_are_per_caller_and_per_snapshot() -> None:
    views = CallerViews(max_entries=2)
    first, second = Caller.of_session(claims()), Caller.of_session(claims(session_name="bob"))
    view = views.view(SNAPSHOTS["blue"], first)
    assert views.view(SNAPSHOTS["blue"], first) is view
    assert views.view(SNAPSHOTS["blue"], second).caller is second
    # A new snapshot (the catalog changed: tags, policies) gets a new view.
    changed = views.view(SNAPSHOTS["none"], first)
    assert changed is not view and changed.snapshot is SNAPSHOTS["none"]
    # A long-term key is checked against the whole caller, not its key id alone.
    alice = Caller.of_user(
        arn=f"arn:aws:iam::{ACCOUNT}:user/a",
        user_id="AIDA1",
        account_id=ACCOUNT,
        name="a",
        access_key_id="AKIA1",
    )
    mallory = Caller.of_user(
        arn=f"arn:aws:iam::{ACCOUNT}:user/m",
        user_id="AIDA2",
        account_id=ACCOUNT,
        name="m",
        access_key_id="AKIA1",
    )
    assert views.view(SNAPSHOTS["blue"], alice).caller is alice
    assert views.view(SNAPSHOTS["blue"], mallory).caller is mallory
    # Bounded: more callers than entries start it over, and answers stay right.
    for n in range(5):
        caller = Caller.of_session(claims(session_name=f"s{n}"))
        assert views.view(SNAPSHOTS["blue"], caller).caller is caller
    assert len(views._views) <= 2
    assert ROLE in views.view(SNAPSHOTS["blue"], first).caller.principal_arn
