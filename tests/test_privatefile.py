"""Private files: mode 0600, written whole, never through a link planted at either name."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.privatefile import write_private


def test_written_private_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "new" / "token"
    write_private(path, "one")
    assert path.read_text() == "one" and (path.stat().st_mode & 0o777) == 0o600
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    write_private(path, "two")
    assert path.read_text() == "two" and sorted(os.listdir(path.parent)) == ["token"]


def test_links_are_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    path = tmp_path / "token"
    path.symlink_to(victim)
    (tmp_path / "token.tmp").symlink_to(victim)
    write_private(path, "secret")
    assert victim.read_text() == "keep"
    assert not path.is_symlink() and path.read_text() == "secret"
