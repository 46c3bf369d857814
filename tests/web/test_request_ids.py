"""Request ids: UUID-shaped, never repeated within a process, and not repeated by a forked worker."""

from __future__ import annotations

import os
import uuid

from gateway.web.middleware import new_request_id


def test_request_ids_are_uuid_shaped_and_distinct() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:3] + ids[-3:]:
        assert str(uuid.UUID(value)) == value


def test_a_forked_worker_draws_its_own_prefix() -> None:
    parent = new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read)
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    assert child != parent
    assert child[:19] != parent[:19]  # the random part differs, not only the counter
