"""The IAM database on both backends: every test that takes ``db`` runs on SQLite and PostgreSQL.

SQLite is a file in a temporary directory; PostgreSQL is a database with a unique name created for
the test module on the server at ``$DATABASE_URL`` and dropped after it (a missing server fails,
never skips). Each test starts from empty tables (the revision keeps counting).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.config import DatabaseSettings
from gateway.credentials import KeyRing
from gateway.db import IamDatabase
from gateway.db.schema import metadata, revision
from tests.conftest import fresh_postgres_database

ACCOUNT = "123456789012"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a database private to this test module, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('iamdb')}/iam.db"
    else:
        with fresh_postgres_database(request.getfixturevalue("postgres_admin_url")) as url:
            yield url


@pytest.fixture()
def keyring() -> KeyRing:
    """The key ring secrets are sealed under."""
    return KeyRing({"k1": b"first key ring secret, 32 bytes!"}, "k1")


async def empty_tables(db: IamDatabase) -> None:
    """Delete every row but the revision's (children first), through a connection of our own."""
    engine = create_async_engine(db.target.url)
    try:
        async with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                if table is not revision:
                    await conn.execute(delete(table))
    finally:
        await engine.dispose()


def open_database(url: str, keyring: KeyRing | None, **settings: object) -> IamDatabase:
    """A database for ``url`` (not started)."""
    return IamDatabase.from_settings(
        DatabaseSettings.model_validate({"url": url, **settings}), account_id=ACCOUNT, keyring=keyring
    )


@pytest.fixture()
async def db(database_url: str, keyring: KeyRing) -> AsyncIterator[IamDatabase]:
    """A started, empty database."""
    database = open_database(database_url, keyring)
    await database.start()
    await empty_tables(database)
    yield database
    await database.close()
