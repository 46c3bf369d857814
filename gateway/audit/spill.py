"""The store sink's spill file: JSON lines the store could not take, kept until they are re-appended.

Several processes (the workers of one ``fedgate serve``) may share one spill file, so writing and
reading follow a small protocol on the file system:

- A **writer** opens the path with ``O_APPEND``, takes a *shared* ``flock``, checks that the path
  still names the file it opened, and appends whole lines in one ``write``. The file is bounded by
  ``max_bytes`` (about: two writers may both fit a batch into the last room); lines that do not
  fit are refused and the caller counts them as dropped, so the file keeps the oldest events.
- A **reader** *claims* the file by renaming it to ``NAME.replay-PID-TOKEN`` (writers that open
  the path afterwards start a new file), then takes an *exclusive* ``flock``, which it gets only
  once every writer still holding the old file has finished. It re-appends the lines and deletes
  the file when all of it has reached the store.
- A claimed file left behind by a process that died (or stopped) mid-replay is claimed again by
  the next reader that can lock it; its events may then reach the store twice. Delivery from the
  spill file is at least once, never silently lost: every event has a unique ``eventID``.

Every call is a few short local-file system calls, made on the event loop thread; none waits on a
lock (a busy lock is reported, and the caller tries again).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, final

from gateway import jsonlimits

__all__ = ["SpillFile", "SpillReader"]

# Longer lines are not events this sink wrote (those are a few KiB at most): skipped, never parsed.
MAX_LINE = 1024 * 1024
_OPEN_ATTEMPTS = 3


@final
class SpillFile:
    """Appends JSON lines to ``path`` (created with mode 0600) up to about ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self._max_bytes = max_bytes

    def write(self, lines: Sequence[str]) -> int:
        """Append as many of ``lines`` (in order, each without a newline) as fit; return how many.

        Raises :class:`OSError` when the file cannot be written at all (missing directory,
        permissions, disk full); a partial write counts the lines written before it failed.
        """
        for _ in range(_OPEN_ATTEMPTS):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                if not _lock(fd, fcntl.LOCK_SH) or not _still_named(fd, self.path):
                    continue  # claimed by a reader since we opened it: the path is a new file now
                return _append_lines(fd, lines, self._max_bytes - os.fstat(fd).st_size)
            finally:
                os.close(fd)  # releases the lock
        return 0  # claimed again and again while we tried: the caller counts these as dropped

    def claim(self) -> SpillReader | None:
        """Take a spill file to re-append: one left by a dead process first, else the live one.

        Returns ``None`` when there is nothing to claim.
        """
        for leftover in sorted(self.path.parent.glob(f"{self.path.name}.replay-*")):
            reader = SpillReader.adopt(leftover)
            if reader is not None:
                return reader
        claimed = self.path.with_name(f"{self.path.name}.replay-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.rename(self.path, claimed)
        except FileNotFoundError:
            return None
        return SpillReader(claimed)


@final
class SpillReader:
    """A claimed spill file, read in batches: :meth:`read`, then :meth:`commit` or :meth:`rewind`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = open(path, "rb")  # noqa: SIM115  # closed in remove() or close()
        self._locked = False
        self._offset = 0  # everything before it has reached the store
        self._next = 0
        self._bad = 0  # unreadable lines between _offset and _next
        self.exhausted = False

    @classmethod
    def adopt(cls, path: Path) -> SpillReader | None:
        """Claim a leftover ``*.replay-*`` file if no live process holds it, else ``None``."""
        try:
            reader = cls(path)
        except FileNotFoundError:
            return None
        if reader.lock():
            return reader
        reader.close()
        return None

    def lock(self) -> bool:
        """Try to take the exclusive lock (without waiting); ``True`` once it is held.

        Until then a writer that opened the file before it was claimed may still be appending.
        """
        if not self._locked:
            self._locked = _lock(self._file.fileno(), fcntl.LOCK_EX)
            if self._locked and os.fstat(self._file.fileno()).st_nlink == 0:
                # Another reader adopted and finished it between our claim and our lock.
                self.exhausted = True
        return self._locked

    def read(self, count: int) -> list[str]:
        """Up to ``count`` event lines after the committed offset (unreadable lines skipped).

        Sets :attr:`exhausted` when the end of the file is reached.
        """
        if not self._locked:
            raise RuntimeError("lock() the claimed file before reading it")
        lines: list[str] = []
        self._bad = 0
        self._file.seek(self._offset)
        while len(lines) < count and not self.exhausted:
            raw = self._file.readline(MAX_LINE + 1)
            if not raw:
                self.exhausted = True
            elif not raw.endswith(b"\n"):
                if len(raw) > MAX_LINE:
                    self._skip_rest_of_line()
                self._bad += 1  # too long, or cut short by a crash mid-write
            elif (line := _event_line(raw)) is not None:
                lines.append(line)
            else:
                self._bad += 1
        self._next = self._file.tell()
        return lines

    def commit(self) -> int:
        """Mark what :meth:`read` returned as delivered; return how many lines it skipped."""
        self._offset, bad, self._bad = self._next, self._bad, 0
        return bad

    def rewind(self) -> None:
        """Forget the last :meth:`read`: its lines will be read again."""
        self._bad = 0
        self.exhausted = False

    def remove(self) -> None:
        """Delete the file (everything in it was delivered) and release it."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.close()

    def close(self) -> None:
        """Release the file, keeping it for a later reader."""
        self._file.close()
        self._locked = False

    def _skip_rest_of_line(self) -> None:
        while chunk := self._file.readline(MAX_LINE):
            if chunk.endswith(b"\n"):
                return
        self.exhausted = True


def _lock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _still_named(fd: int, path: Path) -> bool:
    opened = os.fstat(fd)
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)


def _append_lines(fd: int, lines: Sequence[str], room: int) -> int:
    data = bytearray()
    fitted = 0
    for line in lines:
        encoded = line.encode() + b"\n"
        if len(data) + len(encoded) > room:
            break
        data += encoded
        fitted += 1
    view = memoryview(data)
    written = 0
    try:
        while written < len(view):
            written += os.write(fd, view[written:])
    except OSError:
        whole = data[:written].count(b"\n")
        if whole:
            return whole
        raise
    return fitted


def _event_line(raw: bytes) -> str | None:
    """``raw`` without its newline if it is one JSON object (what the sink writes), else ``None``."""
    try:
        value = jsonlimits.loads(raw[:-1])  # bounded nesting: the file could hold anything
    except ValueError:
        return None
    return raw[:-1].decode() if isinstance(value, dict) else None
