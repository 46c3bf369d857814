"""Reading the identity token file: what Kubernetes projects, and what must be refused unread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.agent.errors import TokenFileError
from gateway.agent.sources import MAX_TOKEN_BYTES, read_token_file

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcHAifQ.c2ln"


def test_surrounding_whitespace_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"\n{TOKEN}\r\n")
    assert read_token_file(path) == TOKEN


def test_a_projected_token_is_read_through_its_symlinks(tmp_path: Path) -> None:
    # The kubelet's layout: token -> ..data/token, ..data -> ..2026_01_01_00_00_00.1, swapped on rotation.
    first = tmp_path / "..2026_01_01_00_00_00.1"
    first.mkdir()
    (first / "token").write_text(TOKEN)
    (tmp_path / "..data").symlink_to(first.name)
    (tmp_path / "token").symlink_to("..data/token")
    assert read_token_file(tmp_path / "token") == TOKEN
    second = tmp_path / "..2026_01_01_00_10_00.2"
    second.mkdir()
    (second / "token").write_text(TOKEN + "x")
    (tmp_path / "..data.tmp").symlink_to(second.name)
    os.replace(tmp_path / "..data.tmp", tmp_path / "..data")
    assert read_token_file(tmp_path / "token") == TOKEN + "x"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b" \n\t", "is empty"),
        (b"a" * (MAX_TOKEN_BYTES + 1), "larger than"),
        (b"\xff\xfe token", "not ASCII"),
        (b"one two", "a single token"),
        (b"one\x00two", "a single token"),
    ],
)
def test_files_that_hold_no_token_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    with pytest.raises(TokenFileError, match=message) as info:
        read_token_file(path)
    assert str(path) in str(info.value)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="does not exist"):
        read_token_file(tmp_path / "absent")
    with pytest.raises(TokenFileError, match="cannot read token file"):
        read_token_file(tmp_path)  # a directory
