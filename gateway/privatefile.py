"""Files only their owner may read: written whole (a reader never sees half), never through a link.

``fedgate login`` keeps refresh tokens this way and ``fedgate agent`` its authorization token;
:func:`create_private` makes a secret file once (``{file: PATH, create: true}``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["create_private", "write_private"]


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, mode 0600, creating missing parent directories with mode 0700.

    The text goes to a new sibling file first (created exclusively, refusing to follow a link), which
    then replaces ``path`` in one rename: a link planted at either name is never written through.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a stale file, or a link someone planted: never write through it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def create_private(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text`` (mode 0600, parents 0700) unless it exists; whether it did.

    Exclusive, for processes starting together (the workers of one server): the text is written
    whole to a private temporary file first, which is then hard-linked to ``path``, so exactly one
    creator wins and nobody reads a half-written file; the others keep what the winner wrote.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink()
