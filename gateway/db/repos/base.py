"""What every repository shares: the transaction's context, row helpers, named-entity operations.

A repository is a typed view of some tables inside one transaction. Operations that change
anything mark the transaction dirty (so it bumps the revision on commit) and refuse to run in a
read-only transaction. Reads inside a write transaction see the latest committed state, and since
write transactions are serialized, a check followed by a change cannot race another writer.

Entities with a name (users, groups, roles, managed policies, instance profiles) share
:class:`NamedRepo`: names are unique case-insensitively, lists are ordered by that key and can be
paged with ``after`` (a name) and ``limit``.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Executable, Row, String, Table, delete, func, insert, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from gateway.credentials.keyring import KeyRing
from gateway.db import schema
from gateway.db.records import TaggableType, Tags
from gateway.errors import EntityAlreadyExists, NoSuchEntity

__all__ = ["NamedRepo", "Repo", "TxContext", "by_code_point", "check_length", "name_key"]

R = TypeVar("R")


def name_key(name: str) -> str:
    """The case-insensitive key IAM names are unique by."""
    return name.lower()


class _ByCodePoint(FunctionElement[str]):
    """A text column compared and ordered by code point, on every backend.

    Lists merge the configuration's entities (sorted in Python) with the database's, and page with
    a marker compared in SQL: both must use one order. SQLite compares text by its bytes already;
    PostgreSQL uses the database's collation (ICU or glibc locales ignore punctuation, so "a-b"
    would sort after "ab" there), so it is told ``COLLATE "C"``.
    """

    type = String()
    inherit_cache = True
    name = "by_code_point"


@compiles(_ByCodePoint)
def _by_code_point(element: _ByCodePoint, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_ByCodePoint, "postgresql")
def _by_code_point_postgresql(element: _ByCodePoint, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


def by_code_point(column: ColumnElement[str]) -> ColumnElement[str]:
    """``column`` as lists order and page it (see :class:`_ByCodePoint`)."""
    return _ByCodePoint(column)


def check_length(value: str, limit: int, what: str) -> str:
    """A backstop under the API's own validation: both backends must refuse the same values."""
    if not value or len(value) > limit:
        raise ValueError(f"{what} must be 1-{limit} characters")
    return value


class TxContext:
    """The state a transaction's repositories share."""

    __slots__ = ("account_id", "conn", "dirty", "keyring", "revision", "writable")

    def __init__(
        self,
        conn: AsyncConnection,
        *,
        account_id: str,
        revision: int,
        writable: bool,
        keyring: KeyRing | None,
    ) -> None:
        self.conn = conn
        self.account_id = account_id
        #: In a write transaction the revision it commits as; in a read, the one it sees.
        self.revision = revision
        self.writable = writable
        self.keyring = keyring
        self.dirty = False

    def require_keyring(self) -> KeyRing:
        """The key ring sealing secrets at rest; a database opened without one cannot seal."""
        if self.keyring is None:
            raise RuntimeError("this database was opened without a key ring: it cannot seal secrets")
        return self.keyring


class Repo:
    """Base of every repository: execution helpers bound to one transaction."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: TxContext) -> None:
        self._ctx = ctx

    @staticmethod
    def now() -> datetime:
        """The time written into created/updated columns."""
        return datetime.now(UTC)

    async def _rows(self, statement: Executable) -> Sequence[Row[Any]]:
        return (await self._ctx.conn.execute(statement)).all()

    async def _row(self, statement: Executable) -> Row[Any] | None:
        return (await self._ctx.conn.execute(statement)).first()

    async def _scalar(self, statement: Executable) -> Any:
        return (await self._ctx.conn.execute(statement)).scalar()

    async def _count(self, table: Table, *where: Any) -> int:
        return int(await self._scalar(select(func.count()).select_from(table).where(*where)))

    async def _write(self, statement: Executable) -> CursorResult[Any]:
        if not self._ctx.writable:
            raise RuntimeError("a read transaction cannot change the database (use db.write())")
        self._ctx.dirty = True
        result = await self._ctx.conn.execute(statement)
        assert isinstance(result, CursorResult)
        return result

    # Tags, for every repository of taggable entities.

    async def _tags(self, entity_type: TaggableType, entity_id: str) -> Tags:
        t = schema.tags
        rows = await self._rows(
            select(t.c.key, t.c.value)
            .where(t.c.entity_type == entity_type, t.c.entity_id == entity_id)
            .order_by(t.c.key_lower)
        )
        return tuple((r.key, r.value) for r in rows)

    async def _tags_of_type(self, entity_type: TaggableType) -> dict[str, Tags]:
        t = schema.tags
        rows = await self._rows(
            select(t.c.entity_id, t.c.key, t.c.value)
            .where(t.c.entity_type == entity_type)
            .order_by(t.c.entity_id, t.c.key_lower)
        )
        found: dict[str, list[tuple[str, str]]] = {}
        for r in rows:
            found.setdefault(r.entity_id, []).append((r.key, r.value))
        return {k: tuple(v) for k, v in found.items()}

    async def _set_tags(self, entity_type: TaggableType, entity_id: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite ``tags``; a key differing only in case replaces the one stored."""
        t = schema.tags
        for key, value in tags.items():
            check_length(key, 128, "a tag key")
            if len(value) > 256:
                raise ValueError("a tag value must be at most 256 characters")
            await self._write(
                delete(t).where(
                    t.c.entity_type == entity_type, t.c.entity_id == entity_id, t.c.key_lower == key.lower()
                )
            )
            await self._write(
                insert(t).values(
                    entity_type=entity_type, entity_id=entity_id, key_lower=key.lower(), key=key, value=value
                )
            )

    async def _untag(self, entity_type: TaggableType, entity_id: str, keys: Sequence[str] | None) -> None:
        """Remove the tags named ``keys`` (case-insensitively), or all of them when ``None``."""
        t = schema.tags
        where = [t.c.entity_type == entity_type, t.c.entity_id == entity_id]
        if keys is not None:
            where.append(t.c.key_lower.in_([k.lower() for k in keys]))
        await self._write(delete(t).where(*where))


class NamedRepo(Repo, Generic[R]):
    """Operations shared by entities with a unique name, a path and an id."""

    __slots__ = ()

    table: Table
    noun: str  # "user": for messages
    taggable: TaggableType | None = None
    name_limit = 64

    def _record(self, row: Row[Any], tags: Tags) -> R:
        raise NotImplementedError

    def _missing(self, name: str) -> NoSuchEntity:
        return NoSuchEntity(f"The {self.noun} with name {name} cannot be found.")

    def _exists(self, name: str) -> EntityAlreadyExists:
        return EntityAlreadyExists(f"{self.noun.capitalize()} with name {name} already exists.")

    async def _build(self, row: Row[Any]) -> R:
        tags = await self._tags(self.taggable, row.id) if self.taggable else ()
        return self._record(row, tags)

    async def _build_many(self, rows: Sequence[Row[Any]]) -> builtins.list[R]:
        tags = await self._tags_of_type(self.taggable) if self.taggable else {}
        return [self._record(row, tags.get(row.id, ())) for row in rows]

    async def _find(self, name: str) -> Row[Any] | None:
        t = self.table
        return await self._row(select(t).where(t.c.name_key == name_key(name)))

    async def _require_row(self, name: str) -> Row[Any]:
        row = await self._find(name)
        if row is None:
            raise self._missing(name)
        return row

    async def get(self, name: str) -> R | None:
        """The entity named ``name`` (in any case), or ``None``."""
        row = await self._find(name)
        return None if row is None else await self._build(row)

    async def require(self, name: str) -> R:
        """The entity named ``name``; raises :class:`~gateway.errors.NoSuchEntity` if there is none."""
        return await self._build(await self._require_row(name))

    async def get_by_id(self, entity_id: str) -> R | None:
        """The entity whose id is ``entity_id``, or ``None``."""
        row = await self._row(select(self.table).where(self.table.c.id == entity_id))
        return None if row is None else await self._build(row)

    async def list(
        self, path_prefix: str = "/", *, after: str | None = None, limit: int | None = None
    ) -> builtins.list[R]:
        """Entities whose path starts with ``path_prefix``, by name; ``after`` a name, for paging.

        The prefix is compared case-sensitively, as IAM and the policies authorizing the List do
        (SQLite's ``LIKE`` ignores ASCII case: ``/secret/`` would list ``/Secret/`` too).
        """
        t = self.table
        query = (
            select(t)
            .where(func.substr(t.c.path, 1, len(path_prefix)) == path_prefix)
            .order_by(by_code_point(t.c.name_key))
        )
        if after is not None:
            query = query.where(by_code_point(t.c.name_key) > name_key(after))
        if limit is not None:
            query = query.limit(limit)
        return await self._build_many(await self._rows(query))

    async def all(self) -> builtins.list[R]:
        """Every entity (for the snapshot)."""
        return await self.list()

    async def count(self) -> int:
        """How many there are (for quotas)."""
        return await self._count(self.table)

    async def _insert(self, name: str, values: dict[str, Any], tags: Mapping[str, str] | None) -> R:
        check_length(name, self.name_limit, f"a {self.noun} name")
        check_length(values["path"], schema.IAM_PATH, "a path")
        if await self._find(name) is not None:
            raise self._exists(name)
        await self._write(insert(self.table).values(name=name, name_key=name_key(name), **values))
        if tags and self.taggable:
            await self._set_tags(self.taggable, values["id"], tags)
        return await self.require(name)

    async def _update(self, name: str, values: dict[str, Any]) -> R:
        row = await self._require_row(name)
        new_name = values.get("name")
        if new_name is not None:
            check_length(new_name, self.name_limit, f"a {self.noun} name")
            other = await self._find(new_name)
            if other is not None and other.id != row.id:
                raise self._exists(new_name)
            values["name_key"] = name_key(new_name)
        if "path" in values:
            check_length(values["path"], schema.IAM_PATH, "a path")
        if values:
            await self._write(self.table.update().where(self.table.c.id == row.id).values(**values))
        built = await self.get_by_id(row.id)
        assert built is not None
        return built

    async def _rename(self, name: str, new_name: str | None, new_path: str | None) -> R:
        values: dict[str, Any] = {}
        if new_name is not None:
            values["name"] = new_name
        if new_path is not None:
            values["path"] = new_path
        return await self._update(name, values)

    async def _delete_row(self, row: Row[Any]) -> None:
        if self.taggable:
            await self._untag(self.taggable, row.id, None)
        await self._write(delete(self.table).where(self.table.c.id == row.id))

    async def tag(self, name: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags of the entity named ``name``."""
        if self.taggable is None:
            raise TypeError(f"a {self.noun} has no tags")
        await self._set_tags(self.taggable, (await self._require_row(name)).id, tags)

    async def untag(self, name: str, keys: Sequence[str]) -> None:
        """Remove tags (by key, in any case) from the entity named ``name``."""
        if self.taggable is None:
            raise TypeError(f"a {self.noun} has no tags")
        await self._untag(self.taggable, (await self._require_row(name)).id, keys)
