"""Long-term access keys and virtual MFA devices: the entities holding secrets at rest.

Secrets are sealed under the key ring (:meth:`KeyRing.seal_value`) bound to their row (``access-key/
AKIA...``, ``mfa-device/SERIAL``), with the id of the sealing key beside them. Records carry them
sealed; :func:`open_access_key_secret` and :func:`open_mfa_seed` open them. After a
key-ring rotation :meth:`reseal` seals every value again under the active key, so the old key can be
dropped from the ring without losing a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, final

from sqlalchemy import Row, Table, delete, insert, select, update

from gateway.credentials.keyring import KeyRing
from gateway.db import schema
from gateway.db.ids import new_long_term_access_key_id
from gateway.db.records import AccessKeyRecord, AccessKeyStatus, MfaDeviceRecord, Tags
from gateway.db.repos.base import Repo, check_length
from gateway.errors import DeleteConflict, EntityAlreadyExists, InvalidClientTokenId, NoSuchEntity

__all__ = [
    "AccessKeyRepo",
    "MfaDeviceRepo",
    "access_key_context",
    "mfa_seed_context",
    "open_access_key_secret",
    "open_mfa_seed",
]

_STATUSES = ("Active", "Inactive")


def access_key_context(access_key_id: str) -> bytes:
    """What an access key's sealed secret is bound to."""
    return b"access-key/" + access_key_id.encode("ascii")


def mfa_seed_context(serial: str) -> bytes:
    """What an MFA device's sealed seed is bound to."""
    return b"mfa-device/" + serial.encode("utf-8")


class _SealedRepo(Repo):
    __slots__ = ()
    table: Table
    key_column: str
    sealed_column: str
    key_id_column: str

    def _context(self, key: str) -> bytes:
        raise NotImplementedError

    async def reseal(self, keyring: KeyRing) -> tuple[int, list[str]]:
        """Seal every value not under the active key again under it.

        Returns how many were resealed and the row keys whose values no key in the ring opens
        (they are left as they are: a key that was dropped too early, or another ring's data).
        """
        t = self.table
        key, sealed, key_id = t.c[self.key_column], t.c[self.sealed_column], t.c[self.key_id_column]
        rows = await self._rows(
            select(key.label("key"), sealed.label("sealed")).where(key_id != keyring.active_id)
        )
        done, unreadable = 0, []
        for row in rows:
            context = self._context(row.key)
            try:
                plaintext = keyring.unseal_value(row.sealed, context)
            except InvalidClientTokenId:
                unreadable.append(row.key)
                continue
            resealed = {
                self.sealed_column: keyring.seal_value(plaintext, context),
                self.key_id_column: keyring.active_id,
            }
            await self._write(update(t).where(key == row.key).values(resealed))
            done += 1
        return done, unreadable


@final
class AccessKeyRepo(_SealedRepo):
    """Users' long-term access keys (AKIA...)."""

    __slots__ = ()
    table = schema.access_keys
    key_column = "id"
    sealed_column = "secret_sealed"
    key_id_column = "secret_key_id"

    def _context(self, key: str) -> bytes:
        return access_key_context(key)

    @staticmethod
    def _record(row: Row[Any]) -> AccessKeyRecord:
        return AccessKeyRecord(
            id=row.id,
            user_id=row.user_id,
            status=row.status,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            last_used_service=row.last_used_service,
            last_used_region=row.last_used_region,
            sealed_secret=row.secret_sealed,
        )

    async def create(
        self,
        user_id: str,
        secret: str,
        *,
        access_key_id: str | None = None,
        status: AccessKeyStatus = "Active",
    ) -> AccessKeyRecord:
        """Store a new key for the user, its ``secret`` sealed (the two-keys quota is the API's).

        ``access_key_id`` defaults to a new ``AKIA`` id; a given one (a config-declared key being
        imported) must be free.
        """
        if status not in _STATUSES:
            raise ValueError("status must be Active or Inactive")
        if await self._count(schema.users, schema.users.c.id == user_id) == 0:
            raise NoSuchEntity(f"The user with id {user_id} cannot be found.")
        key_id = access_key_id or new_long_term_access_key_id()
        if await self.get(key_id) is not None:
            raise EntityAlreadyExists(f"The access key {key_id} already exists.")
        keyring = self._ctx.require_keyring()
        await self._write(
            insert(self.table).values(
                id=key_id,
                user_id=user_id,
                secret_sealed=keyring.seal_value(secret.encode("utf-8"), access_key_context(key_id)),
                secret_key_id=keyring.active_id,
                status=status,
                created_at=self.now(),
            )
        )
        record = await self.get(key_id)
        assert record is not None
        return record

    async def get(self, access_key_id: str) -> AccessKeyRecord | None:
        """One key, or ``None``."""
        row = await self._row(select(self.table).where(self.table.c.id == access_key_id))
        return None if row is None else self._record(row)

    async def require(self, access_key_id: str) -> AccessKeyRecord:
        """One key; raises :class:`~gateway.errors.NoSuchEntity` if there is none."""
        record = await self.get(access_key_id)
        if record is None:
            raise NoSuchEntity(f"The Access Key with id {access_key_id} cannot be found.")
        return record

    async def for_user(self, user_id: str) -> list[AccessKeyRecord]:
        """A user's keys, oldest first (also the count the two-keys quota checks)."""
        t = self.table
        rows = await self._rows(select(t).where(t.c.user_id == user_id).order_by(t.c.created_at, t.c.id))
        return [self._record(r) for r in rows]

    async def all(self) -> list[AccessKeyRecord]:
        """Every key (for the snapshot)."""
        rows = await self._rows(select(self.table).order_by(self.table.c.id))
        return [self._record(r) for r in rows]

    async def set_status(self, access_key_id: str, status: AccessKeyStatus) -> AccessKeyRecord:
        """Make a key Active or Inactive (UpdateAccessKey)."""
        if status not in _STATUSES:
            raise ValueError("status must be Active or Inactive")
        await self.require(access_key_id)
        await self._write(update(self.table).where(self.table.c.id == access_key_id).values(status=status))
        return await self.require(access_key_id)

    async def delete(self, access_key_id: str) -> None:
        """Delete a key (DeleteAccessKey)."""
        await self.require(access_key_id)
        await self._write(delete(self.table).where(self.table.c.id == access_key_id))


@final
class MfaDeviceRepo(_SealedRepo):
    """Virtual MFA devices: a sealed TOTP seed, assigned to at most one user."""

    __slots__ = ()
    table = schema.mfa_devices
    key_column = "serial"
    sealed_column = "seed_sealed"
    key_id_column = "seed_key_id"

    def _context(self, key: str) -> bytes:
        return mfa_seed_context(key)

    @staticmethod
    def _record(row: Row[Any], tags: Tags) -> MfaDeviceRecord:
        return MfaDeviceRecord(
            serial=row.serial,
            name=row.name,
            path=row.path,
            user_id=row.user_id,
            enabled_at=row.enabled_at,
            created_at=row.created_at,
            sealed_seed=row.seed_sealed,
            tags=tags,
        )

    async def create(
        self, serial: str, *, name: str, path: str, seed: bytes, tags: Mapping[str, str] | None = None
    ) -> MfaDeviceRecord:
        """Store a new, unassigned device whose ``serial`` is its ARN."""
        check_length(serial, 512, "an MFA serial")
        check_length(name, 226, "an MFA device name")
        if await self.get(serial) is not None:
            raise EntityAlreadyExists("MFADevice entity at the same path and name already exists.")
        keyring = self._ctx.require_keyring()
        await self._write(
            insert(self.table).values(
                serial=serial,
                name=name,
                path=path,
                seed_sealed=keyring.seal_value(seed, mfa_seed_context(serial)),
                seed_key_id=keyring.active_id,
                created_at=self.now(),
            )
        )
        if tags:
            await self._set_tags("mfa-device", serial, tags)
        return await self.require(serial)

    async def get(self, serial: str) -> MfaDeviceRecord | None:
        """One device, or ``None``."""
        row = await self._row(select(self.table).where(self.table.c.serial == serial))
        return None if row is None else self._record(row, await self._tags("mfa-device", serial))

    async def require(self, serial: str) -> MfaDeviceRecord:
        """One device; raises :class:`~gateway.errors.NoSuchEntity` if there is none."""
        record = await self.get(serial)
        if record is None:
            raise NoSuchEntity(f"VirtualMFADevice with serial {serial} doesn't exist.")
        return record

    async def all(self) -> list[MfaDeviceRecord]:
        """Every device, by serial."""
        tags = await self._tags_of_type("mfa-device")
        rows = await self._rows(select(self.table).order_by(self.table.c.serial))
        return [self._record(r, tags.get(r.serial, ())) for r in rows]

    async def for_user(self, user_id: str) -> list[MfaDeviceRecord]:
        """The devices enabled for a user."""
        t = self.table
        rows = await self._rows(select(t).where(t.c.user_id == user_id).order_by(t.c.serial))
        return [self._record(r, await self._tags("mfa-device", r.serial)) for r in rows]

    async def enable(self, serial: str, user_id: str, at: datetime) -> MfaDeviceRecord:
        """Assign the device to a user from ``at`` (the codes were checked by the caller)."""
        record = await self.require(serial)
        if record.user_id is not None:
            raise EntityAlreadyExists("MFA device is already in use.")
        if await self._count(schema.users, schema.users.c.id == user_id) == 0:
            raise NoSuchEntity(f"The user with id {user_id} cannot be found.")
        await self._write(
            update(self.table).where(self.table.c.serial == serial).values(user_id=user_id, enabled_at=at)
        )
        return await self.require(serial)

    async def deactivate(self, serial: str) -> MfaDeviceRecord:
        """Unassign the device from its user (it stays, as on AWS, until deleted)."""
        await self.require(serial)
        await self._write(
            update(self.table).where(self.table.c.serial == serial).values(user_id=None, enabled_at=None)
        )
        return await self.require(serial)

    async def delete(self, serial: str) -> None:
        """Delete a device that is not assigned to a user."""
        record = await self.require(serial)
        if record.user_id is not None:
            raise DeleteConflict("MFA device is still in use.")
        await self._untag("mfa-device", serial, None)
        await self._write(delete(self.table).where(self.table.c.serial == serial))

    async def tag(self, serial: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite the device's tags."""
        await self.require(serial)
        await self._set_tags("mfa-device", serial, tags)

    async def untag(self, serial: str, keys: Sequence[str]) -> None:
        """Remove tags from the device."""
        await self.require(serial)
        await self._untag("mfa-device", serial, keys)


def open_access_key_secret(keyring: KeyRing, record: AccessKeyRecord) -> str:
    """The key's secret, unsealed. Raises ``ValueError`` when no key in the ring opens it."""
    try:
        return keyring.unseal_value(record.sealed_secret, access_key_context(record.id)).decode("utf-8")
    except InvalidClientTokenId:
        raise ValueError(f"the secret of access key {record.id} does not open under the key ring") from None


def open_mfa_seed(keyring: KeyRing, record: MfaDeviceRecord) -> bytes:
    """The device's TOTP seed, unsealed. Raises ``ValueError`` when no key in the ring opens it."""
    try:
        return keyring.unseal_value(record.sealed_seed, mfa_seed_context(record.serial))
    except InvalidClientTokenId:
        raise ValueError(f"the seed of MFA device {record.serial} does not open under the key ring") from None
