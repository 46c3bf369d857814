"""The spill file: bounded appends, claims that lose nothing while writers keep writing, bad lines."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gateway.audit.spill import MAX_LINE, SpillFile, SpillReader


def _line(n: int) -> str:
    return json.dumps({"eventID": f"e-{n}", "eventName": "GetCallerIdentity"}, separators=(",", ":"))


def _drain(reader: SpillReader, count: int = 100) -> list[str]:
    assert reader.lock()
    seen: list[str] = []
    while not reader.exhausted:
        seen.extend(reader.read(count))
        reader.commit()
    reader.remove()
    return seen


def test_written_lines_are_claimed_read_and_removed(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "spill.jsonl", 1 << 20)
    assert spill.claim() is None  # nothing spilled yet
    assert spill.write([_line(i) for i in range(5)]) == 5
    assert spill.write([_line(5)]) == 1
    assert (tmp_path / "spill.jsonl").stat().st_mode & 0o777 == 0o600
    reader = spill.claim()
    assert reader is not None
    assert not (tmp_path / "spill.jsonl").exists()  # new writes start a new file
    assert _drain(reader, count=4) == [_line(i) for i in range(6)]
    assert list(tmp_path.iterdir()) == []


def test_rewind_reads_the_same_lines_again(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "spill.jsonl", 1 << 20)
    spill.write([_line(i) for i in range(3)])
    reader = spill.claim()
    assert reader is not None and reader.lock()
    assert reader.read(2) == [_line(0), _line(1)]
    reader.rewind()  # the store refused them: nothing is lost
    assert reader.read(2) == [_line(0), _line(1)]
    reader.commit()
    assert reader.read(2) == [_line(2)]
    assert reader.exhausted
    reader.rewind()
    assert reader.read(2) == [_line(2)]
    reader.commit()
    reader.remove()


def test_size_is_bounded_and_keeps_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "spill.jsonl"
    one = len(_line(0)) + 1
    spill = SpillFile(path, 10 * one)
    assert spill.write([_line(i) for i in range(4)]) == 4
    assert spill.write([_line(i) for i in range(4, 20)]) == 6  # the rest does not fit
    assert spill.write([_line(99)]) == 0
    assert path.stat().st_size == 10 * one
    reader = spill.claim()
    assert reader is not None
    assert _drain(reader) == [_line(i) for i in range(10)]
    assert spill.write([_line(100)]) == 1  # a claimed file frees the room


def test_unreadable_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "spill.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    with path.open("wb") as f:
        f.write(_line(0).encode() + b"\n")
        f.write(b"not json\n")
        f.write(b'["a list, not an event"]\n')
        f.write(b"\xff\xfe\n")
        f.write(b'{"x":"' + b"y" * (MAX_LINE + 10) + b'"}\n')  # longer than any event
        f.write(deep.encode() + b"\n")  # would exhaust the parser's recursion
        f.write(_line(1).encode() + b"\n")
        f.write(b'{"cut short by a cra')  # the process died mid-write
    reader = SpillFile(path, 1 << 30).claim()
    assert reader is not None and reader.lock()
    assert reader.read(100) == [_line(0), _line(1)]
    assert reader.exhausted
    assert reader.commit() == 6
    reader.remove()


def test_reader_waits_for_a_writer_still_holding_the_file(tmp_path: Path) -> None:
    # A writer that opened the file before the claim holds a shared lock while it appends: the
    # reader must not read (and later delete) the file before that write is in.
    path = tmp_path / "spill.jsonl"
    spill = SpillFile(path, 1 << 20)
    spill.write([_line(0)])
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        reader = spill.claim()
        assert reader is not None
        assert reader.lock() is False
        os.write(fd, (_line(1) + "\n").encode())
    finally:
        os.close(fd)
    assert _drain(reader) == [_line(0), _line(1)]


def test_writer_starts_a_new_file_once_claimed(tmp_path: Path) -> None:
    path = tmp_path / "spill.jsonl"
    spill = SpillFile(path, 1 << 20)
    spill.write([_line(0)])
    reader = spill.claim()
    assert reader is not None and reader.lock()
    assert spill.write([_line(1)]) == 1  # not into the locked, claimed file
    assert _drain(reader) == [_line(0)]
    second = spill.claim()
    assert second is not None
    assert _drain(second) == [_line(1)]


def test_leftover_claim_of_a_dead_process_is_adopted_first(tmp_path: Path) -> None:
    path = tmp_path / "spill.jsonl"
    spill = SpillFile(path, 1 << 20)
    spill.write([_line(0)])
    leftover = spill.claim()
    assert leftover is not None
    leftover.close()  # the process died mid-replay: the claimed file stays, unlocked
    spill.write([_line(1)])
    first = spill.claim()
    assert first is not None and first.path == leftover.path
    assert _drain(first) == [_line(0)]
    second = spill.claim()
    assert second is not None
    assert _drain(second) == [_line(1)]


def test_claim_held_by_a_live_reader_is_not_adopted(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "spill.jsonl", 1 << 20)
    spill.write([_line(0)])
    live = spill.claim()
    assert live is not None and live.lock()
    assert spill.claim() is None
    assert _drain(live) == [_line(0)]


def test_unwritable_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SpillFile(tmp_path / "missing-dir" / "spill.jsonl", 1 << 20).write([_line(0)])


_WRITER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from gateway.audit.spill import SpillFile
    path, name, batches, start = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    spill = SpillFile(path, 1 << 30)
    (start.parent / name).touch()  # imported: ready
    while not start.exists():
        time.sleep(0.001)
    for b in range(batches):
        lines = [json.dumps({"eventID": f"{name}-{b}-{i}"}) for i in range(10)]
        assert spill.write(lines) == 10
    """
)


def test_concurrent_writers_and_claims_lose_nothing(tmp_path: Path) -> None:
    """Three writer processes append while this one claims and drains the file over and over."""
    signals = tmp_path / "signals"
    signals.mkdir()
    spilldir = tmp_path / "spill"
    spilldir.mkdir()
    path, start = spilldir / "spill.jsonl", signals / "start"
    argv = [sys.executable, "-c", _WRITER, str(path)]
    writers = [subprocess.Popen([*argv, f"w{n}", "300", str(start)]) for n in range(3)]
    while len(list(signals.iterdir())) < 3:  # all imported, so they write at the same time
        assert all(w.poll() is None for w in writers)
        time.sleep(0.01)
    start.touch()
    spill = SpillFile(path, 1 << 30)
    seen: list[str] = []
    claims = 0
    pending: SpillReader | None = None
    while any(w.poll() is None for w in writers) or pending is not None or path.exists():
        if pending is None:
            pending = spill.claim()
            claims += pending is not None
        if pending is not None and pending.lock():
            seen.extend(_drain(pending))
            pending = None
    assert [w.wait(30) for w in writers] == [0, 0, 0]
    ids = [json.loads(line)["eventID"] for line in seen]
    expected = {f"w{n}-{b}-{i}" for n in range(3) for b in range(300) for i in range(10)}
    assert len(ids) == len(expected) == 9000
    assert set(ids) == expected
    assert claims > 1
    assert list(spilldir.iterdir()) == []
