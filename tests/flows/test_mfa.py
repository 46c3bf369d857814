"""The MFA journey across two replicas sharing a real Redis store and a PostgreSQL database: a
user's virtual MFA device enabled on one replica, its codes refused a second time on the other, and
wrong codes throttling the device on both."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.iam import totp
from gateway.iam.mfa import MAX_FAILURES
from tests.conftest import BackgroundLoop, config_from, fresh_postgres_database, serve_app

ACCOUNT = "123456789012"
ADMIN_KEY = "AKIAMFAADMINEXAMPLE1"
ADMIN_SECRET = "mfa-admin-secret-" + "a" * 23
V = "2012-10-17"


@dataclass(frozen=True)
class Replica:
    url: str

    def client(
        self, service: str, key: str = ADMIN_KEY, secret: str = ADMIN_SECRET, token: str | None = None
    ) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=Config(retries={"max_attempts": 1}),
        )


def gateway_config(database_url: str, redis_url: str, prefix: str) -> dict[str, Any]:
    """Two replicas' configuration: one store, one database, one key ring; an admin user (declared in
    the file, with a long-term key) who may do anything."""
    return {
        "account_id": ACCOUNT,
        "audit": {"sink": "none"},
        "store": {"backend": "redis", "url": redis_url, "prefix": prefix},
        "database": {"url": database_url, "poll_interval_seconds": 1},
        "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": "k" * 32}}]},
        "users": [
            {
                "name": "mfa-admin",
                "policies": [
                    {
                        "name": "all",
                        "document": {
                            "Version": V,
                            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                        },
                    }
                ],
                "access_keys": [{"id": ADMIN_KEY, "secret": {"value": ADMIN_SECRET}}],
            }
        ],
    }


@pytest.fixture(scope="module")
def replicas(
    background_loop: BackgroundLoop, postgres_admin_url: str, redis_url: str, redis_run_prefix: str
) -> Iterator[tuple[Replica, Replica]]:
    with fresh_postgres_database(postgres_admin_url) as url, pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        config = config_from(gateway_config(url, redis_url, f"{redis_run_prefix}mfa:"))
        started = [background_loop.run(serve_app(config)) for _ in range(2)]
        try:
            yield Replica(f"http://127.0.0.1:{started[0][1]}"), Replica(f"http://127.0.0.1:{started[1][1]}")
        finally:
            for runner, _, _ in started:
                background_loop.run(runner.cleanup())


def codes(seed: bytes, *steps: int) -> list[str]:
    """What an authenticator app shows for ``seed`` (the Base32 text), ``steps`` from now's."""
    now = totp.step_of(time.time())
    return [totp.code_at(base64.b32decode(seed), now + s) for s in steps]


def new_device(iam: Any, user: str) -> tuple[str, bytes]:
    iam.create_user(UserName=user)
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{user}-phone")["VirtualMFADevice"]
    return device["SerialNumber"], device["Base32StringSeed"]


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def test_a_code_is_accepted_once_across_replicas(replicas: tuple[Replica, Replica]) -> None:
    first, second = replicas
    iam_a, iam_b = first.client("iam"), second.client("iam")
    serial, seed = new_device(iam_a, "replayed")
    one, two = codes(seed, -1, 0)
    iam_a.enable_mfa_device(
        UserName="replayed", SerialNumber=serial, AuthenticationCode1=one, AuthenticationCode2=two
    )
    # The same two codes on the other replica: spent already, in the store both share.
    with pytest.raises(ClientError) as excinfo:
        iam_b.resync_mfa_device(
            UserName="replayed", SerialNumber=serial, AuthenticationCode1=one, AuthenticationCode2=two
        )
    assert _error(excinfo) == ("InvalidAuthenticationCode", "Authentication code for device is not valid.")


def test_wrong_codes_throttle_the_device_on_every_replica(replicas: tuple[Replica, Replica]) -> None:
    first, second = replicas
    serial, seed = new_device(first.client("iam"), "guessed")
    one, two = codes(seed, -1, 0)
    wrong = f"{(int(two) + 1) % 1_000_000:06d}"
    for n in range(MAX_FAILURES):
        with pytest.raises(ClientError) as excinfo:
            replicas[n % 2].client("iam").enable_mfa_device(
                UserName="guessed", SerialNumber=serial, AuthenticationCode1=one, AuthenticationCode2=wrong
            )
        assert _error(excinfo)[0] == "InvalidAuthenticationCode"
    for replica in (first, second):
        with pytest.raises(ClientError) as excinfo:
            replica.client("iam").enable_mfa_device(
                UserName="guessed", SerialNumber=serial, AuthenticationCode1=one, AuthenticationCode2=two
            )
        code, message = _error(excinfo)
        assert code == "InvalidAuthenticationCode" and "Too many invalid codes" in message
