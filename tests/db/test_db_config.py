"""The ``database:`` settings: URLs for both backends, the in-memory default, and refusals that name
the key without echoing a password."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.config import DatabaseSettings, SecretRef
from gateway.db import IamDatabase, target_for
from gateway.errors import ConfigError, DatabaseUnavailable
from tests.conftest import eventually

ACCOUNT = "123456789012"


def test_no_url_means_an_in_memory_sqlite() -> None:
    target = target_for(DatabaseSettings())
    assert (target.backend, target.in_memory, target.sqlite_path) == ("sqlite", True, None)
    for url in ("sqlite://", "sqlite:///:memory:"):
        assert target_for(DatabaseSettings(url=url)).in_memory


def test_sqlite_paths_are_made_absolute_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = target_for(DatabaseSettings(url="sqlite:///.fedgate/iam.db"))
    assert target.sqlite_path == tmp_path / ".fedgate" / "iam.db"
    assert target.url.drivername == "sqlite+aiosqlite" and not target.in_memory


def test_postgres_urls_use_asyncpg_and_hide_the_password() -> None:
    for url in (
        "postgresql://u:pw@db:5432/iam",
        "postgres://u:pw@db/iam",
        "postgresql+asyncpg://u:pw@db/iam",
    ):
        target = target_for(DatabaseSettings(url=url))
        assert target.backend == "postgresql" and target.url.drivername == "postgresql+asyncpg"
        assert "pw" not in target.redacted() and "pw" not in repr(target)


def test_the_url_can_come_by_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDGATE_TEST_DB_URL", "postgresql://u:pw@db/iam")
    assert target_for(DatabaseSettings(url=SecretRef(env="FEDGATE_TEST_DB_URL"))).backend == "postgresql"
    with pytest.raises(ConfigError, match=r"database\.url: environment variable FEDGATE_TEST_DB_UNSET"):
        target_for(DatabaseSettings(url=SecretRef(env="FEDGATE_TEST_DB_UNSET")))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:hunter2@db/iam", "unsupported database 'mysql'"),
        ("postgresql://u:hunter2@db", "name the PostgreSQL database"),
        ("postgresql+psycopg://u:hunter2@db/iam", "unsupported database"),
        ("sqlite:///iam.db?mode=ro&pw=hunter2", "no host or options"),
        ("not a url hunter2", "not a database URL"),
    ],
)
def test_bad_urls_name_the_key_and_never_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^database\.url: ") as caught:
        target_for(DatabaseSettings(url=url))
    assert message in str(caught.value) and "hunter2" not in str(caught.value)


def test_the_staleness_bound_must_leave_room_for_a_slow_poll() -> None:
    with pytest.raises(ValidationError, match="at least twice poll_interval_seconds"):
        DatabaseSettings(poll_interval_seconds=5, max_staleness_seconds=9)
    assert DatabaseSettings(poll_interval_seconds=5, max_staleness_seconds=10).max_staleness_seconds == 10


async def test_a_new_sqlite_file_and_its_directory_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "iam.db"
    db = IamDatabase.from_settings(DatabaseSettings(url=f"sqlite:///{path}"), account_id=ACCOUNT)
    try:
        await db.start()
    finally:
        await db.close()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with contextlib.closing(sqlite3.connect(path)) as conn:  # and it is in WAL mode, for good
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_the_in_memory_default_warns_and_dies_with_the_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    first = IamDatabase.from_settings(DatabaseSettings(), account_id=ACCOUNT)
    second = IamDatabase.from_settings(DatabaseSettings(), account_id=ACCOUNT)
    try:
        await first.start()
        await second.start()
        async with first.write() as tx:
            await tx.users.create("alice")
        assert (await second.load()).users == ()  # two apps in one process never share one
    finally:
        await first.close()
        await second.close()
    assert any("No database configured" in r.getMessage() for r in caplog.records)


async def test_an_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()  # a directory where the file should be
    before = set(threading.enumerate())
    db = IamDatabase.from_settings(DatabaseSettings(url=f"sqlite:///{tmp_path}/dir.db"), account_id=ACCOUNT)
    try:
        with pytest.raises(DatabaseUnavailable):
            await db.start()
    finally:
        await db.close()
    # aiosqlite stops the worker thread of a failed connection asynchronously; let it finish while
    # this test's event loop still runs.
    await eventually(lambda: not [t for t in set(threading.enumerate()) - before if t.is_alive()])
