"""The MFA journey across two replicas sharing a real Redis store and a PostgreSQL database: a
user's virtual MFA device enabled on one replica, its codes refused a second time on the other, and
wrong codes throttling the device on both, through the IAM API and through STS's AssumeRole."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.iam import totp
from gateway.iam.mfa import MAX_FAILURES
from gateway.sts.mfa import INVALID_CODE
from tests.conftest import BackgroundLoop, config_from, fresh_postgres_database, serve_app
from tests.flows.mfa import (
    EXTERNAL_ID,
    MFA_REQUIRED,
    MfaUser,
    Replica,
    error_of,
    gateway_config,
    mfa_user,
    wrong,
)


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
    assert error_of(excinfo) == ("InvalidAuthenticationCode", "Authentication code for device is not valid.")


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
        assert error_of(excinfo)[0] == "InvalidAuthenticationCode"
    for replica in (first, second):
        with pytest.raises(ClientError) as excinfo:
            replica.client("iam").enable_mfa_device(
                UserName="guessed", SerialNumber=serial, AuthenticationCode1=one, AuthenticationCode2=two
            )
        code, message = error_of(excinfo)
        assert code == "InvalidAuthenticationCode" and "Too many invalid codes" in message


def _known_on(replica: Replica, user: MfaUser) -> None:
    """Wait until ``replica`` knows ``user``'s access key, made through the other replica (the
    database's notification brings it; the deadline only bounds a hang)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            replica.client("sts", user.key, user.secret).get_caller_identity()
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "InvalidClientTokenId" or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def _assume(replica: Replica, user: MfaUser, code: str, session: str = "mfa") -> dict[str, Any]:
    response: dict[str, Any] = replica.client("sts", user.key, user.secret).assume_role(
        RoleArn=MFA_REQUIRED,
        RoleSessionName=session,
        ExternalId=EXTERNAL_ID,
        SerialNumber=user.serial,
        TokenCode=code,
    )
    return response


def test_an_assume_role_code_is_refused_on_the_other_replica(replicas: tuple[Replica, Replica]) -> None:
    first, second = replicas
    user = mfa_user(first.client("iam"), "sts-replayed")
    _known_on(second, user)
    code = user.app.code()
    assumed = _assume(first, user, code)
    assert assumed["AssumedRoleUser"]["Arn"].endswith(":assumed-role/mfa-required/mfa")
    # The same code on the other replica: spent already, in the store both share.
    with pytest.raises(ClientError) as excinfo:
        _assume(second, user, code)
    assert error_of(excinfo) == ("AccessDenied", INVALID_CODE)
    # And on the first one again.
    with pytest.raises(ClientError) as excinfo:
        _assume(first, user, code)
    assert error_of(excinfo) == ("AccessDenied", INVALID_CODE)


def test_wrong_assume_role_codes_throttle_the_device_on_every_replica(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    user = mfa_user(first.client("iam"), "sts-guessed")
    _known_on(second, user)
    right = user.app.code()
    for n in range(MAX_FAILURES):
        with pytest.raises(ClientError) as excinfo:
            _assume(replicas[n % 2], user, wrong(right))
        assert error_of(excinfo) == ("AccessDenied", INVALID_CODE)
    for replica in (first, second):
        with pytest.raises(ClientError) as excinfo:
            _assume(replica, user, right)
        assert error_of(excinfo) == (
            "AccessDenied",
            "MultiFactorAuthentication failed: "
            "Too many invalid codes for this MFA device; try again in a few minutes.",
        )
