"""The action framework itself, on a real (in-memory SQLite) database and catalog: the order of
its checks, configuration-declared entities, and that a refused call changes nothing.

The principal here is a recording stand-in for the web adapter's (the adapter's own authorization
is tested over TCP in the other modules); the framework under test is real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.calls import CallRecord
from gateway.config import DatabaseSettings
from gateway.context import Transport
from gateway.credentials import KeyRing
from gateway.db import IamDatabase
from gateway.errors import AccessDenied, EntityAlreadyExists, UnmodifiableEntity, ValidationError
from gateway.iam.api import ACTIONS, ActionContext, IamAction, Resource, execute
from gateway.iam.api.entities import declared
from gateway.iam.api.params import Args, Param, name
from gateway.iam.catalog import CatalogSnapshot, build_snapshot
from gateway.iam.permissions import Check
from gateway.iam.records import CatalogRecords, PolicyRecord, RoleRecord
from gateway.sts.params import QueryParams

ACCOUNT = "123456789012"
DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}


@dataclass
class Caller:
    allow: bool = True
    checks: list[Check] = field(default_factory=list)
    arn: str = f"arn:aws:sts::{ACCOUNT}:assumed-role/admin/s"
    user_name: str | None = None

    def authorize(self, checks: Sequence[Check]) -> None:
        self.checks.extend(checks)
        if not self.allow:
            raise AccessDenied("denied")


@pytest.fixture()
async def database() -> AsyncIterator[IamDatabase]:
    db = IamDatabase.from_settings(
        DatabaseSettings(), account_id=ACCOUNT, keyring=KeyRing({"k": b"k" * 32}, "k")
    )
    await db.start()
    yield db
    await db.close()


@pytest.fixture()
def snapshot() -> CatalogSnapshot:
    return build_snapshot(
        CatalogRecords(
            account_id=ACCOUNT,
            policies=(PolicyRecord("declared-policy", DOC), PolicyRecord("api-policy", DOC, source="api")),
            roles=(RoleRecord("declared-role", TRUST),),
        )
    )


def _record() -> CallRecord:
    return CallRecord(
        "req", Transport(source_ip="127.0.0.1", secure=False, user_agent=None, referer=None, now=0.0)
    )


async def _run(
    action: IamAction, params: Mapping[str, str], db: IamDatabase, snapshot: CatalogSnapshot, caller: Caller
) -> Mapping[str, Any]:
    values = {"Action": action.name, "Version": "2010-05-08", **params}
    return await execute(
        action, QueryParams(values), database=db, snapshot=snapshot, caller=caller, record=_record()
    )


def _role_action(*, creates: bool) -> IamAction:
    """A role action of the shape i11-more's are: its resource is the named role."""

    async def resource(ctx: ActionContext, args: Args) -> Resource:
        role_name = args.text("RoleName")
        arn = f"arn:aws:iam::{ctx.account_id}:role/{role_name}"
        return Resource(arn, "AWS::IAM::Role", declared=declared(ctx.snapshot, "role", role_name))

    async def handler(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
        await ctx.tx.users.create("side-effect")
        return {}

    return IamAction(
        "CreateRole" if creates else "TagRole",
        "test",
        (Param("RoleName", name(64), "a role", required=True),),
        resource,
        "the role's ARN",
        handler,
        writes=True,
        creates=creates,
    )


def test_declared_entities_are_the_configurations(snapshot: CatalogSnapshot) -> None:
    assert declared(snapshot, "role", "declared-role") is not None
    assert declared(snapshot, "policy", "declared-policy") is not None
    assert declared(snapshot, "policy", "api-policy") is None
    assert declared(snapshot, "role", "other") is None


async def test_a_configured_entity_is_unmodifiable(database: IamDatabase, snapshot: CatalogSnapshot) -> None:
    caller = Caller()
    with pytest.raises(UnmodifiableEntity, match="declared-role"):
        await _run(_role_action(creates=False), {"RoleName": "declared-role"}, database, snapshot, caller)
    with pytest.raises(EntityAlreadyExists, match="Role with name declared-role already exists"):
        await _run(_role_action(creates=True), {"RoleName": "declared-role"}, database, snapshot, caller)
    async with database.read() as tx:
        assert await tx.users.get("side-effect") is None  # the handler never ran
    # Authorized first: a caller who may not act learns nothing about the entity.
    assert [c.action for c in caller.checks] == ["iam:TagRole", "iam:CreateRole"]
    with pytest.raises(AccessDenied):
        await _run(
            _role_action(creates=False),
            {"RoleName": "declared-role"},
            database,
            snapshot,
            Caller(allow=False),
        )


async def test_denied_calls_change_nothing(database: IamDatabase, snapshot: CatalogSnapshot) -> None:
    with pytest.raises(AccessDenied):
        await _run(ACTIONS["CreateUser"], {"UserName": "u"}, database, snapshot, Caller(allow=False))
    revision = await database.revision()
    async with database.read() as tx:
        assert await tx.users.get("u") is None
    assert await database.revision() == revision


async def test_parameters_are_validated_before_authorization(
    database: IamDatabase, snapshot: CatalogSnapshot
) -> None:
    caller = Caller(allow=False)
    with pytest.raises(ValidationError, match="Member must not be null"):
        await _run(ACTIONS["CreateUser"], {}, database, snapshot, caller)
    assert caller.checks == []


async def test_the_check_names_the_action_and_resource(
    database: IamDatabase, snapshot: CatalogSnapshot
) -> None:
    caller = Caller()
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/declared-policy"
    params = {"UserName": "b", "Path": "/p/", "PermissionsBoundary": boundary}
    await _run(ACTIONS["CreateUser"], params, database, snapshot, caller)
    assert caller.checks == [
        Check("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/p/b", {"iam:PermissionsBoundary": boundary})
    ]


async def test_unknown_parameters_are_refused_but_a_query_signature_is_not(
    database: IamDatabase, snapshot: CatalogSnapshot
) -> None:
    with pytest.raises(ValidationError, match="Unknown parameter Bogus"):
        await _run(ACTIONS["ListUsers"], {"Bogus": "1"}, database, snapshot, Caller())
    signed = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Signature": "ab" * 32}
    assert await _run(ACTIONS["ListUsers"], signed, database, snapshot, Caller()) == {
        "Users": [],
        "IsTruncated": False,
    }
