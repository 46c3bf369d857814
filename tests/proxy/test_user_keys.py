"""IAM users' long-term keys through the reverse proxy: boto3 S3 -> fedgate -> moto, allowed and
denied by the user's own policies, its group's and its permissions boundary; bad keys refused in
S3's dialect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway import keys
from gateway.testing import OIDCTestIssuer
from tests.conftest import BackgroundLoop, eventually
from tests.proxy.conftest import BUCKET, Moto, ProxyGateway, proxy_config, s3_client, serve_proxy

WRITER = ("AKIAWRITEREXAMPLE001", "writer-secret-" + "w" * 26)
BOUNDED = ("AKIABOUNDEDEXAMPLE01", "bounded-secret-" + "b" * 25)
INACTIVE = ("AKIAINACTIVEEXAMPLE1", "inactive-secret-" + "i" * 24)
V = "2012-10-17"


def _allow(actions: list[str], resource: str) -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]}


def _key(pair: tuple[str, str], status: str = "Active") -> dict[str, Any]:
    return {"id": pair[0], "secret": {"value": pair[1]}, "status": status}


@pytest.fixture(scope="module")
def gateway(
    background_loop: BackgroundLoop,
    issuer: OIDCTestIssuer,
    moto: Moto,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyGateway]:
    audit_path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    config = proxy_config(
        issuer,
        moto.url,
        audit_path,
        policies=[
            {"name": "shared-only", "document": _allow(["s3:GetObject"], f"arn:aws:s3:::{BUCKET}/shared/*")}
        ],
        groups=[
            {
                "name": "readers",
                "policies": [
                    {
                        "name": "shared",
                        "document": _allow(["s3:GetObject"], f"arn:aws:s3:::{BUCKET}/shared/*"),
                    }
                ],
            }
        ],
        users=[
            {
                "name": "writer",
                "groups": ["readers"],
                "policies": [
                    {
                        "name": "home",
                        "document": _allow(
                            ["s3:GetObject", "s3:PutObject"],
                            f"arn:aws:s3:::{BUCKET}/home/${{aws:username}}/*",
                        ),
                    }
                ],
                "access_keys": [_key(WRITER), _key(INACTIVE, "Inactive")],
            },
            {
                "name": "bounded",
                "groups": ["readers"],
                "policies": [{"name": "everything", "document": _allow(["s3:*"], "*")}],
                "permissions_boundary": "shared-only",
                "access_keys": [_key(BOUNDED)],
            },
        ],
    )
    with serve_proxy(background_loop, config, audit_path) as gateway:
        yield gateway


def _s3(gateway: ProxyGateway, pair: tuple[str, str]) -> Any:
    return s3_client(gateway, {"aws_access_key_id": pair[0], "aws_secret_access_key": pair[1]})


def _denied(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call()
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_users_own_and_group_policies_allow_and_the_rest_is_denied(
    gateway: ProxyGateway, moto: Moto
) -> None:
    moto.client().put_object(Bucket=BUCKET, Key="shared/readme.txt", Body=b"shared")
    s3 = _s3(gateway, WRITER)
    s3.put_object(Bucket=BUCKET, Key="home/writer/notes.txt", Body=b"mine")  # its own policy
    assert moto.client().get_object(Bucket=BUCKET, Key="home/writer/notes.txt")["Body"].read() == b"mine"
    assert s3.get_object(Bucket=BUCKET, Key="shared/readme.txt")["Body"].read() == b"shared"  # the group's
    mark = len(moto.log.lines)
    assert _denied(lambda: s3.put_object(Bucket=BUCKET, Key="shared/new.txt", Body=b"x")) == (
        "AccessDenied",
        403,
    )
    assert _denied(lambda: s3.get_object(Bucket=BUCKET, Key="home/bounded/x")) == ("AccessDenied", 403)
    assert moto.log.since(mark) == []  # denied requests never reached the upstream


def test_a_boundary_limits_what_a_users_policies_grant(gateway: ProxyGateway, moto: Moto) -> None:
    moto.client().put_object(Bucket=BUCKET, Key="shared/b.txt", Body=b"b")
    s3 = _s3(gateway, BOUNDED)
    assert s3.get_object(Bucket=BUCKET, Key="shared/b.txt")["Body"].read() == b"b"
    assert _denied(lambda: s3.put_object(Bucket=BUCKET, Key="shared/b.txt", Body=b"x")) == (
        "AccessDenied",
        403,
    )
    assert _denied(lambda: s3.list_objects_v2(Bucket=BUCKET)) == ("AccessDenied", 403)


def test_inactive_and_unknown_keys_are_invalid_access_key_ids(gateway: ProxyGateway) -> None:
    for pair in (INACTIVE, ("AKIANOSUCHKEYEXAMPLE", "x" * 40)):
        assert _denied(
            lambda pair=pair: _s3(gateway, pair).get_object(Bucket=BUCKET, Key="shared/readme.txt")
        ) == (
            "InvalidAccessKeyId",
            403,
        )


def test_a_database_users_group_policy_change_and_key_deletion_are_enforced(
    gateway: ProxyGateway, moto: Moto, background_loop: BackgroundLoop
) -> None:
    db = gateway.app[keys.DATABASE].database
    secret = "d" * 40

    async def create() -> tuple[str, str, int]:
        async with db.write() as tx:
            group = await tx.groups.create("auditors")
            user = await tx.users.create("auditor")
            await tx.groups.add_member(group.id, user.id)
            key = await tx.access_keys.create(user.id, secret)
        return group.id, key.id, tx.revision

    async def grant(group_id: str) -> int:
        async with db.write() as tx:
            await tx.inline_policies.put(
                "group", group_id, "read", json.dumps(_allow(["s3:GetObject"], f"arn:aws:s3:::{BUCKET}/*"))
            )
        return tx.revision

    async def caught_up(revision: int) -> None:
        await eventually(lambda: gateway.app[keys.CATALOG].snapshot.revision >= revision, what="catalog")

    group_id, key_id, revision = background_loop.run(create())
    background_loop.run(caught_up(revision))
    moto.client().put_object(Bucket=BUCKET, Key="audit/log.txt", Body=b"log")
    s3 = _s3(gateway, (key_id, secret))
    assert _denied(lambda: s3.get_object(Bucket=BUCKET, Key="audit/log.txt")) == ("AccessDenied", 403)
    background_loop.run(caught_up(background_loop.run(grant(group_id))))
    assert s3.get_object(Bucket=BUCKET, Key="audit/log.txt")["Body"].read() == b"log"
    events = [json.loads(line) for line in Path(gateway.audit_path).read_text().splitlines()]
    assert any(e["userIdentity"].get("userName") == "auditor" for e in events)

    async def delete_key() -> int:
        async with db.write() as tx:
            await tx.access_keys.delete(key_id)
        return tx.revision

    background_loop.run(caught_up(background_loop.run(delete_key())))
    assert _denied(lambda: s3.get_object(Bucket=BUCKET, Key="audit/log.txt")) == ("InvalidAccessKeyId", 403)
