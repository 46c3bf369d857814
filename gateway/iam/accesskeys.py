"""Long-term access keys (``AKIA...``) at verification time: which user signed, and its secret.

:meth:`AccessKeys.resolve` answers from the catalog's current snapshot (no I/O): an unknown,
inactive or deleted key, or one whose user is gone, is ``InvalidClientTokenId`` (S3 renders it
``InvalidAccessKeyId``). A key the database holds carries its secret sealed under the key ring;
opened secrets are kept in a bounded cache by (key id, sealed value), so a key resealed after a
rotation is opened again and a deleted key's secret is never served (the snapshot no longer names
it). Secrets are never logged. :meth:`AccessKeys.used` reports a verified use to a recorder that
writes it off the hot path (``GetAccessKeyLastUsed``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import final

from gateway.credentials.keyring import KeyRing
from gateway.db.repos.secrets import access_key_context
from gateway.errors import InvalidClientTokenId
from gateway.iam.caller import Caller
from gateway.iam.catalog import AccessKey, Catalog
from gateway.policy.cache import LRU

__all__ = ["OPENED_SECRET_CACHE", "AccessKeys", "UseRecorder"]

#: How many opened secrets are remembered.
OPENED_SECRET_CACHE = 4096

#: ``record(access_key_id, service, region)``: must not block (it only notes the use).
UseRecorder = Callable[[str, str, str], None]


def _invalid() -> InvalidClientTokenId:
    return InvalidClientTokenId("The security token included in the request is invalid.")


@final
class AccessKeys:
    """Resolves long-term access keys through ``catalog`` and opens their secrets with ``keyring``."""

    def __init__(
        self,
        catalog: Catalog,
        keyring: KeyRing,
        *,
        record_use: UseRecorder | None = None,
        cache_size: int = OPENED_SECRET_CACHE,
    ) -> None:
        self._catalog = catalog
        self._keyring = keyring
        self._record_use = record_use
        self._opened: LRU[tuple[str, str], str] = LRU(cache_size)

    def __repr__(self) -> str:
        return f"AccessKeys(revision={self._catalog.snapshot.revision})"

    def resolve(self, access_key_id: str) -> tuple[Caller, str]:
        """The user signing with ``access_key_id`` and the key's secret; InvalidClientTokenId for a
        key that is unknown, inactive or whose user is gone."""
        snapshot = self._catalog.snapshot
        key = snapshot.access_key(access_key_id)
        if key is None or key.status != "Active":
            raise _invalid()
        user = snapshot.user(key.user_arn)
        if user is None:
            raise _invalid()
        caller = Caller.of_user(
            arn=user.arn,
            user_id=user.user_id,
            account_id=user.account_id,
            name=user.name,
            access_key_id=access_key_id,
        )
        return caller, self._secret(key)

    def _secret(self, key: AccessKey) -> str:
        if key.secret is not None:
            return key.secret
        if key.sealed is None:
            raise _invalid()
        cache_key = (key.access_key_id, key.sealed)
        found = self._opened.get(cache_key)
        if found is None:
            # InvalidClientTokenId when no key of the ring opens it (fail closed).
            opened = self._keyring.unseal_value(key.sealed, access_key_context(key.access_key_id))
            try:
                found = opened.decode("utf-8")
            except UnicodeDecodeError:
                raise _invalid() from None
            self._opened.put(cache_key, found)
        return found

    def used(self, access_key_id: str, *, service: str, region: str) -> None:
        """Note a verified use of ``access_key_id`` (no I/O)."""
        if self._record_use is not None:
            self._record_use(access_key_id, service, region)
