"""STS's MFA check against a real IAM database (SQLite) and store: the calling user's own enabled
device only, each code once, and AWS's AccessDenied for everything else."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.config import DatabaseSettings
from gateway.credentials import KeyRing, SessionClaims, role_id_for
from gateway.db.database import IamDatabase
from gateway.errors import AccessDenied, ValidationError
from gateway.iam import totp
from gateway.iam.caller import Caller
from gateway.iam.mfa import MAX_FAILURES, MfaCodes
from gateway.store import MemoryStore, ReplayGuard
from gateway.sts.mfa import INVALID_CODE, CallerMfa

ACCOUNT = "123456789012"
SERIAL = f"arn:aws:iam::{ACCOUNT}:mfa/alice-phone"
SEED = b"an MFA seed of forty bytes, for the test"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[IamDatabase]:
    keyring = KeyRing({"k1": b"first key ring secret, 32 bytes!"}, "k1")
    settings = DatabaseSettings.model_validate({"url": f"sqlite:///{tmp_path}/iam.db"})
    db = IamDatabase.from_settings(settings, account_id=ACCOUNT, keyring=keyring)
    await db.start()
    yield db
    await db.close()


async def _alice(database: IamDatabase, *, enabled: bool = True) -> Caller:
    async with database.write() as tx:
        user = await tx.users.create("alice")
        await tx.users.create("bob")
        await tx.mfa_devices.create(SERIAL, name="alice-phone", path="/", seed=SEED)
        if enabled:
            await tx.mfa_devices.enable(SERIAL, user.id, datetime.now(UTC))
    return Caller.of_user(
        arn=user.arn, user_id=user.id, account_id=ACCOUNT, name="alice", access_key_id="AKIAEXAMPLE"
    )


def _check(database: IamDatabase) -> CallerMfa:
    # A store begun before the device was created, as a gateway's is (the first code of a device
    # created before the store's generation began is refused: it may have been spent before).
    store = MemoryStore(started=time.time() - 3600)
    return CallerMfa(database, MfaCodes(store, ReplayGuard(store), database.open_mfa_seed))


def _code(offset: int = 0) -> str:
    return totp.code_at(SEED, totp.step_of(time.time()) + offset)


async def test_the_users_code_is_accepted_once(database: IamDatabase) -> None:
    alice = await _alice(database)
    mfa = _check(database)
    now = time.time()
    assert await mfa.verify(alice, SERIAL, _code(), now=now) == now
    with pytest.raises(AccessDenied) as refused:
        await mfa.verify(alice, SERIAL, _code(), now=now)
    assert refused.value.message == INVALID_CODE


async def test_another_users_device_a_role_session_and_no_device(database: IamDatabase) -> None:
    alice = await _alice(database)
    async with database.read() as tx:
        bob_record = await tx.users.require("bob")
    bob = Caller.of_user(
        arn=bob_record.arn, user_id=bob_record.id, account_id=ACCOUNT, name="bob", access_key_id="AKIAB"
    )
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    session = Caller.of_session(
        SessionClaims(
            account_id=ACCOUNT,
            role_arn=role,
            role_name="r",
            role_id=role_id_for(role),
            session_name="s",
            access_key_id="ASIAEXAMPLE",
            secret_access_key="x",
            issued_at=0.0,
            expires_at=1.0,
        )
    )
    mfa = _check(database)
    now = time.time()
    for caller, serial in ((bob, SERIAL), (session, SERIAL), (alice, f"{SERIAL}-gone")):
        with pytest.raises(AccessDenied) as refused:
            await mfa.verify(caller, serial, _code(), now=now)
        assert refused.value.message == INVALID_CODE
    await mfa.verify(alice, SERIAL, _code(), now=now)  # none of those spent the code


async def test_a_device_not_enabled_is_refused(database: IamDatabase) -> None:
    alice = await _alice(database, enabled=False)
    with pytest.raises(AccessDenied):
        await _check(database).verify(alice, SERIAL, _code(), now=time.time())


async def test_parameters_and_throttling(database: IamDatabase) -> None:
    alice = await _alice(database)
    mfa = _check(database)
    now = time.time()
    for serial, code in (("short", "123456"), (SERIAL, "12345"), (SERIAL, "12345x")):
        with pytest.raises(ValidationError):
            await mfa.verify(alice, serial, code, now=now)
    with pytest.raises(AccessDenied, match="TokenCode is required"):
        await mfa.verify(alice, SERIAL, None, now=now)
    wrong = f"{(int(_code()) + 1) % 1_000_000:06d}"
    for _ in range(MAX_FAILURES):
        with pytest.raises(AccessDenied):
            await mfa.verify(alice, SERIAL, wrong, now=now)
    with pytest.raises(AccessDenied, match="Too many invalid codes"):
        await mfa.verify(alice, SERIAL, _code(), now=now)
