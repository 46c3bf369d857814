"""Files only their owner may read: written whole (a reader never sees half), never through a link.

``fedgate login`` keeps refresh tokens this way and ``fedgate agent`` its authorization token.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["write_private"]


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
