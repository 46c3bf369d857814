"""``fedgate db``: the IAM database's schema from the command line, and the shared way commands
reach the database a gateway uses.

``fedgate db upgrade`` applies pending migrations; ``fedgate db current`` says where the schema
stands (exit 0 when current, 1 when an upgrade is needed). Both need ``database.url``: the default
in-memory database lives inside the serving process, so a command cannot reach it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.config import GatewayConfig
from gateway.credentials.keyring import KeyRing
from gateway.db import IamDatabase, target_for
from gateway.db.migrate import known_revisions

__all__ = [
    "MEMORY_DATABASE_HINT",
    "NoSharedDatabase",
    "add_db_commands",
    "run_with_database",
]

T = TypeVar("T")

#: The fix, when a command needs a database other processes can reach.
MEMORY_DATABASE_HINT = (
    "set database.url (sqlite:///.fedgate/iam.db for one host, postgresql://USER@HOST/DB for replicas)"
)


class NoSharedDatabase(Exception):
    """The configuration names no database a command could share with the gateway."""


def run_with_database(
    config: GatewayConfig,
    action: Callable[[IamDatabase], Awaitable[T]],
    *,
    prepare: bool = True,
    keyring: KeyRing | None = None,
) -> T:
    """Open the configured database, ``prepare`` its schema as ``serve`` would, run ``action``, close.

    ``keyring`` seals and opens secrets at rest (needed to create access keys). Raises
    :class:`NoSharedDatabase` when the database would be in memory; the database's own errors
    (unreachable, schema) propagate to the command line's handler.
    """
    if target_for(config.database).in_memory:
        raise NoSharedDatabase()

    async def run() -> T:
        db = IamDatabase.from_settings(config.database, account_id=config.account_id, keyring=keyring)
        try:
            if prepare:
                await db.start()
            return await action(db)
        finally:
            await db.close()

    return asyncio.run(run())


def add_db_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fedgate db upgrade`` and ``fedgate db current``."""
    from gateway.cliopts import add_config_argument

    db = sub.add_parser(
        "db",
        help="manage the IAM database's schema",
        description="Manage the schema of the IAM database named by database.url (sqlite or postgresql).",
    )
    commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = commands.add_parser(
        "upgrade",
        help="apply pending schema migrations",
        description="Apply every pending schema migration in one transaction (replicas may keep "
        "running; several upgrading at once wait for each other).",
    )
    add_config_argument(upgrade)
    upgrade.set_defaults(handler=_upgrade)
    current = commands.add_parser(
        "current",
        help="show the schema revision",
        description="Print the database's schema revision and the one this fedgate needs; exit 0 when "
        "they match, 1 when `fedgate db upgrade` is needed.",
    )
    add_config_argument(current)
    current.set_defaults(handler=_current)


def _upgrade(args: argparse.Namespace) -> int:
    from gateway.startup import load  # the whole gateway: only when a command runs

    config, _ = load(args.config)

    async def upgrade(db: IamDatabase) -> tuple[str | None, str]:
        return await db.upgrade()

    try:
        before, after = run_with_database(config, upgrade, prepare=False)
    except NoSharedDatabase:
        return _no_database("db upgrade")
    if before == after:
        print(f"database schema at {after}: already current")
    else:
        print(f"database schema upgraded from {before or 'empty'} to {after}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from gateway.startup import load  # the whole gateway: only when a command runs

    config, _ = load(args.config)

    async def revisions(db: IamDatabase) -> tuple[str | None, str]:
        return await db.schema_revisions()

    try:
        current, head = run_with_database(config, revisions, prepare=False)
    except NoSharedDatabase:
        return _no_database("db current")
    if current == head:
        print(f"database schema at {current}: current")
        return 0
    if current is not None and current not in known_revisions():
        print(f"database schema at {current}, newer than this fedgate knows ({head}): run a newer fedgate")
        return 1
    where = current or "nothing (empty)"
    print(f"database schema at {where}; this fedgate needs {head}: run `fedgate db upgrade`")
    return 1


def _no_database(command: str) -> int:
    print(
        f"fedgate: {command} needs a database shared with the gateway: {MEMORY_DATABASE_HINT}",
        file=sys.stderr,
    )
    return 2
