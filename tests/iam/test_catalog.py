"""The catalog: built from records, read through one snapshot, swapped whole."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.credentials import role_id_for
from gateway.errors import MalformedPolicyDocument
from gateway.iam.catalog import Catalog, build_snapshot
from gateway.iam.records import (
    CatalogRecords,
    InlinePolicyRecord,
    PolicyRecord,
    RoleRecord,
    records_from_config,
)
from gateway.policy import Request
from tests.conftest import config_from

ACCOUNT = "123456789012"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        }
    ],
}


def allow(action: str, resource: str = "*") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    }


def records(*, revision: int = 0, read: str = "s3:GetObject") -> CatalogRecords:
    return CatalogRecords(
        account_id=ACCOUNT,
        revision=revision,
        policies=(PolicyRecord("read", allow(read), path="/data/"), PolicyRecord("bound", allow("s3:*"))),
        roles=(
            RoleRecord(
                "app",
                TRUST,
                path="/team/",
                inline_policies=(InlinePolicyRecord("list", allow("s3:ListBucket")),),
                managed_policy_arns=(f"arn:aws:iam::{ACCOUNT}:policy/data/read",),
                tags={"team": "data"},
            ),
            RoleRecord(
                "bounded",
                TRUST,
                inline_policies=(InlinePolicyRecord("all", allow("*")),),
                permissions_boundary_arn=f"arn:aws:iam::{ACCOUNT}:policy/bound",
            ),
        ),
    )


def request(action: str) -> Request:
    return Request(action=action, resource="arn:aws:s3:::b/k", principal={"AWS": ["x"]}, context={})


APP = f"arn:aws:iam::{ACCOUNT}:role/team/app"


def test_roles_and_policies_are_indexed_by_arn_and_compiled() -> None:
    snapshot = build_snapshot(records())
    role = snapshot.role(APP)
    assert role is not None and snapshot.role_named("app") is role
    assert role.role_id == role_id_for(APP) and role.account_id == ACCOUNT
    assert [p.name for p in role.inline] == ["list"]
    assert [m.arn for m in role.managed] == [f"arn:aws:iam::{ACCOUNT}:policy/data/read"]
    assert dict(role.tags) == {"team": "data"} and role.source == "config"
    assert role.trust.kind == "trust" and role.boundary is None
    managed = snapshot.policy(f"arn:aws:iam::{ACCOUNT}:policy/data/read")
    assert managed is not None and managed.identity.kind == "identity" and managed.session.kind == "session"
    assert {r.name for r in snapshot} == {"app", "bounded"}


def test_policy_sets_combine_the_role_with_the_session_and_are_cached() -> None:
    snapshot = build_snapshot(records())
    policies = snapshot.policy_set(APP)
    assert policies.decide(request("s3:GetObject")).allowed
    assert policies.decide(request("s3:ListBucket")).allowed
    assert not policies.decide(request("s3:PutObject")).allowed
    assert snapshot.policy_set(APP) is policies
    narrowed = snapshot.policy_set(
        APP,
        '{"Version":"2012-10-17","Statement":['
        + '{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}',
    )
    assert narrowed.decide(request("s3:ListBucket")).allowed
    assert not narrowed.decide(request("s3:GetObject")).allowed


def test_fail_closed_for_what_no_longer_exists() -> None:
    snapshot = build_snapshot(records())
    gone = snapshot.policy_set(f"arn:aws:iam::{ACCOUNT}:role/gone")
    assert not gone.decide(request("s3:GetObject")).allowed
    vanished = snapshot.policy_set(APP, None, (f"arn:aws:iam::{ACCOUNT}:policy/gone",))
    assert not vanished.decide(request("s3:GetObject")).allowed


def test_a_permissions_boundary_bounds_the_role() -> None:
    snapshot = build_snapshot(records())
    policies = snapshot.policy_set(f"arn:aws:iam::{ACCOUNT}:role/bounded")
    assert policies.decide(request("s3:GetObject")).allowed
    assert not policies.decide(request("ec2:RunInstances")).allowed


def test_a_swap_replaces_everything_at_once_and_drops_the_cache() -> None:
    catalog = Catalog.from_records(records())
    before = catalog.snapshot
    cached = before.policy_set(APP)
    catalog.swap(build_snapshot(records(revision=1, read="s3:PutObject")))
    after = catalog.snapshot
    assert after is not before and after.revision == 1
    assert after.policy_set(APP) is not cached
    assert after.policy_set(APP).decide(request("s3:PutObject")).allowed
    # A reader still holding the old snapshot keeps a consistent view.
    assert before.policy_set(APP).decide(request("s3:GetObject")).allowed
    with pytest.raises(ValueError, match="older"):
        catalog.swap(build_snapshot(records(revision=0)))
    with pytest.raises(ValueError, match="one account"):
        catalog.swap(build_snapshot(CatalogRecords(account_id="999999999999", revision=5)))


def test_bad_records_are_refused() -> None:
    with pytest.raises(ValueError, match="no managed policy"):
        build_snapshot(
            CatalogRecords(ACCOUNT, roles=(RoleRecord("r", TRUST, managed_policy_arns=("arn:x",)),))
        )
    with pytest.raises(MalformedPolicyDocument):
        build_snapshot(CatalogRecords(ACCOUNT, policies=(PolicyRecord("p", {"Statement": "nope"}),)))


def test_records_from_config_name_attached_policies_by_arn() -> None:
    config = config_from(
        {
            "account_id": ACCOUNT,
            "policies": [{"name": "read", "path": "/x/", "document": allow("s3:GetObject")}],
            "roles": [
                {"name": "app", "trust_policy": TRUST, "managed_policies": ["read"], "tags": {"a": "b"}}
            ],
        }
    )
    found = records_from_config(config)
    assert found.account_id == ACCOUNT
    assert found.roles[0].managed_policy_arns == (f"arn:aws:iam::{ACCOUNT}:policy/x/read",)
    assert found.roles[0].tags == {"a": "b"} and found.policies[0].path == "/x/"
    assert build_snapshot(found).role(f"arn:aws:iam::{ACCOUNT}:role/app") is not None
