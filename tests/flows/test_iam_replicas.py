"""Two gateway replicas on one PostgreSQL database: a change made through one is enforced by the
other (learned through LISTEN/NOTIFY, the poll as the safety net); revoked and deactivated keys
stop working on both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway import keys
from gateway.credentials import new_secret_access_key
from tests.conftest import BackgroundLoop, config_from, eventually, fresh_postgres_database, serve_app

ACCOUNT = "123456789012"
SIMULATE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iam:SimulateCustomPolicy", "Resource": "*"}],
}


class Replica:
    def __init__(self, app: web.Application, port: int) -> None:
        self.app = app
        self.url = f"http://127.0.0.1:{port}"

    def client(self, service: str, key: str, secret: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}),
        )


@pytest.fixture(scope="module")
def replicas(background_loop: BackgroundLoop, postgres_admin_url: str) -> Iterator[tuple[Replica, Replica]]:
    with fresh_postgres_database(postgres_admin_url) as url:
        config = config_from(
            {
                "account_id": ACCOUNT,
                "audit": {"sink": "none"},
                # A poll far slower than the test: only the notification can bring the change in time.
                "database": {"url": url, "poll_interval_seconds": 60, "max_staleness_seconds": 300},
                "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": "k" * 32}}]},
            }
        )
        started = [background_loop.run(serve_app(config)) for _ in range(2)]
        try:
            yield Replica(started[0][2], started[0][1]), Replica(started[1][2], started[1][1])
        finally:
            for runner, _, _ in started:
                background_loop.run(runner.cleanup())


def _denied(call: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call()
    return str(exc.value.response["Error"]["Code"])


def test_a_change_on_one_replica_is_enforced_by_the_other(
    replicas: tuple[Replica, Replica], background_loop: BackgroundLoop
) -> None:
    first, second = replicas
    db = first.app[keys.DATABASE].database
    secret = new_secret_access_key()

    async def create() -> tuple[str, str]:
        async with db.write() as tx:
            user = await tx.users.create("ops")
            await tx.inline_policies.put("user", user.id, "simulate", json.dumps(SIMULATE))
            key = await tx.access_keys.create(user.id, secret)
        return user.id, key.id

    async def on_second(check: Any, what: str) -> None:
        await eventually(check, what=what)

    user_id, key_id = background_loop.run(create())
    background_loop.run(
        on_second(
            lambda: second.app[keys.CATALOG].snapshot.access_key(key_id) is not None, "key on replica 2"
        )
    )
    iam = second.client("iam", key_id, secret)
    simulate = {"PolicyInputList": [json.dumps(SIMULATE)], "ActionNames": ["s3:GetObject"]}
    assert iam.simulate_custom_policy(**simulate)["EvaluationResults"]
    assert second.client("sts", key_id, secret).get_caller_identity()["Arn"].endswith(":user/ops")

    async def drop_policy() -> None:
        async with db.write() as tx:
            await tx.inline_policies.delete("user", user_id, "simulate")

    background_loop.run(drop_policy())
    background_loop.run(
        on_second(
            lambda: (
                not second.app[keys.CATALOG]
                .snapshot.user_policy_set(f"arn:aws:iam::{ACCOUNT}:user/ops")
                .identity
            ),
            "policy gone on replica 2",
        )
    )
    assert _denied(lambda: iam.simulate_custom_policy(**simulate)) == "AccessDenied"

    async def deactivate() -> None:
        async with db.write() as tx:
            await tx.access_keys.set_status(key_id, "Inactive")

    background_loop.run(deactivate())

    def refused_on_both() -> bool:
        # access_key(), not access_keys[...]: under load a replica may not have built the snapshot
        # that holds the key yet, which is "not yet", not a failure.
        found = [r.app[keys.CATALOG].snapshot.access_key(key_id) for r in replicas]
        return all(key is not None and key.status == "Inactive" for key in found)

    background_loop.run(on_second(refused_on_both, "key inactive on both"))
    for replica in replicas:
        assert _denied(replica.client("sts", key_id, secret).get_caller_identity) == "InvalidClientTokenId"

    async def delete() -> None:
        async with db.write() as tx:
            await tx.access_keys.delete(key_id)

    background_loop.run(delete())
    background_loop.run(
        on_second(
            lambda: all(r.app[keys.CATALOG].snapshot.access_key(key_id) is None for r in replicas),
            "key deleted on both",
        )
    )
    for replica in replicas:
        assert _denied(replica.client("sts", key_id, secret).get_caller_identity) == "InvalidClientTokenId"
