"""The agent's HTTP adapters in front of a keeper: who is refused, in which dialect, and why.

The end-to-end tests drive them with real SDKs; these pin the edges SDKs never send."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.agent.imds import ImdsTokens
from gateway.agent.keeper import RefreshPolicy, RoleKeeper
from gateway.agent.server import container_app, imds_app
from tests.agent.conftest import ROLE_ARN, FakeTime, ScriptedSource, refused

TOKEN = "agent-token-0123456789"


def _keeper(time: FakeTime, *outcomes: Any) -> RoleKeeper:
    return RoleKeeper(
        name="app",
        role_arn=ROLE_ARN,
        source=ScriptedSource(time, *outcomes),
        policy=RefreshPolicy(renew_before=300, jitter=0),
        clock=time.clock,
        sleep=time.sleep,
    )


@pytest.fixture
async def container(aiohttp_client: Any) -> tuple[Any, RoleKeeper]:
    time = FakeTime()
    keeper = _keeper(time, 900.0)
    app = container_app({"/roles/app": keeper}, token=TOKEN, token_file="/run/t", first_fetch_wait=0.1)
    return await aiohttp_client(app), keeper


async def test_before_the_first_fetch(container: tuple[Any, RoleKeeper]) -> None:
    client, keeper = container
    response = await client.get("/roles/app", headers={"Authorization": TOKEN})
    assert response.status == 503
    body = await response.json()
    assert body["Code"] == "CredentialsUnavailable" and "has not finished yet" in body["Message"]
    assert (await client.get("/readyz")).status == 503
    assert "NO CREDENTIALS YET" in await (await client.get("/status")).text()
    await keeper.refresh()
    assert (await client.get("/readyz")).status == 200
    response = await client.get("/roles/app", headers={"Authorization": TOKEN})
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["RoleArn"] == ROLE_ARN and body["AccountId"] == "123456789012"
    assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn", "AccountId"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer " + TOKEN}, 401),
        ({"Authorization": TOKEN[:-1]}, 401),
        ({"Authorization": TOKEN.upper()}, 401),
        ({"Authorization": "é" + TOKEN}, 401),
        ({"Authorization": TOKEN, "Host": "evil.example:9911"}, 403),
        ({"Authorization": TOKEN, "Host": "127.0.0.1.nip.io"}, 403),
        ({"Authorization": TOKEN, "Host": "localhost:9911"}, 200),
        ({"Authorization": TOKEN, "Host": "[::1]:9911"}, 200),
        ({"Authorization": TOKEN, "Host": "127.0.0.1"}, 200),
    ],
)
async def test_who_gets_credentials(
    container: tuple[Any, RoleKeeper], headers: dict[str, str], status: int
) -> None:
    client, keeper = container
    await keeper.refresh()
    response = await client.get("/roles/app", headers=headers)
    assert response.status == status
    body = await response.json()
    assert ("AccessKeyId" in body) == (status == 200)


async def test_other_paths_and_methods(container: tuple[Any, RoleKeeper]) -> None:
    client, _ = container
    response = await client.get("/roles/other", headers={"Authorization": TOKEN})
    assert response.status == 404 and (await response.json())["Code"] == "NotFound"
    for method in ("POST", "PUT", "HEAD", "DELETE"):
        response = await client.request(method, "/roles/app", headers={"Authorization": TOKEN})
        assert response.status == 405, method
    assert (await client.post("/healthz", data=b"x" * 4096)).status == 405


@pytest.fixture
async def imds(aiohttp_client: Any) -> tuple[Any, RoleKeeper]:
    time = FakeTime()
    keeper = _keeper(time, refused("token file /t does not exist"))
    app = imds_app(keeper, role_name="app", tokens=ImdsTokens(), first_fetch_wait=0.1)
    return await aiohttp_client(app), keeper


async def test_imds_without_credentials_answers_like_ec2(imds: tuple[Any, RoleKeeper]) -> None:
    client, keeper = imds
    await keeper.refresh()
    token = await (
        await client.put("/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "5"})
    ).text()
    session = {"X-aws-ec2-metadata-token": token}
    assert (
        await (await client.get("/latest/meta-data/iam/security-credentials", headers=session)).text()
        == "app"
    )
    response = await client.get("/latest/meta-data/iam/security-credentials/app", headers=session)
    body = await response.json()
    assert response.status == 200 and body["Code"] == "CredentialsUnavailable"
    assert "token file /t does not exist" in body["Message"] and set(body) == {
        "Code",
        "Message",
        "LastUpdated",
    }


async def test_imds_refusals_are_plain_text(imds: tuple[Any, RoleKeeper]) -> None:
    client, _ = imds
    response = await client.get("/latest/meta-data/")
    assert response.status == 401 and response.content_type == "text/plain"
    response = await client.put(
        "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "5", "Host": "x.y"}
    )
    assert response.status == 403
    response = await client.put(
        "/latest/api/token",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "5", "X-Forwarded-For": "1.2.3.4"},
    )
    assert response.status == 403 and "X-Forwarded-For" in await response.text()
