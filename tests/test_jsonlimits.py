"""The bounded JSON parser every unauthenticated document goes through."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.jsonlimits import DEFAULT_MAX_DEPTH, JsonLimitError, check_depth, loads


def _nested(depth: int, *, kind: str = "[]") -> str:
    open_, close = kind
    return open_ * depth + close * depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ('"[[[[[[[["', 0),
        ("[]", 1),
        ('[[1], {"a": [2]}]', 3),
        ('["\\"]", [[]]]', 3),
        ('{"a": "\\\\", "b": [[["]]]]"]]]}', 4),
        ('{"k": {"k": {"k": {"k": []}}}}', 5),
    ],
)
def test_depth_is_counted_outside_strings(text: str, depth: int) -> None:
    json.loads(text)  # every case is valid JSON
    check_depth(text, depth)  # exactly this deep is allowed
    if depth:
        with pytest.raises(JsonLimitError, match="nests deeper than"):
            check_depth(text, depth - 1)


@pytest.mark.parametrize("kind", ["[]", "{}"])
def test_documents_deeper_than_the_limit_are_refused_before_parsing(kind: str) -> None:
    # Deep enough that json.loads itself would raise RecursionError.
    deep = _nested(100_000) if kind == "[]" else '{"a":' * 100_000 + "1" + "}" * 100_000
    with pytest.raises(JsonLimitError, match=f"nests deeper than {DEFAULT_MAX_DEPTH} levels"):
        loads(deep)
    assert loads(_nested(DEFAULT_MAX_DEPTH)) is not None


def test_alternating_objects_and_arrays_count_every_level() -> None:
    doc = '{"a":[' * 20 + "1" + "]}" * 20  # 40 levels
    with pytest.raises(JsonLimitError):
        loads(doc, max_depth=39)
    assert loads(doc, max_depth=40)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000,  # never closed: json.loads recurses into every one before noticing
        '{"a":' * 5000,
        "]" * 5000 + "[" * 5000,
        "[" * 5000 + "}" * 4999,
    ],
    ids=["unclosed-arrays", "unclosed-objects", "reversed", "mismatched"],
)
def test_unbalanced_brackets_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        loads(text)


def test_adversarial_strings_are_scanned_in_one_pass() -> None:
    # Runs of escaped quotes, with and without a closing quote: a backtracking scan would take
    # minutes on these (the per-test timeout would fail it); each is a few milliseconds here.
    run = '\\"' * 100_000
    for text in (f'"{run}', f'["{run}', f'x"{run}', "[" * 40 + f'"{run}"' + "]" * 40):
        with pytest.raises(ValueError):
            loads(text)
    assert loads(f'"{run}"') == '"' * 100_000
    assert loads("[" * 32 + f'"{run}"' + "]" * 32) is not None


def test_limits_on_size_and_encoding() -> None:
    with pytest.raises(JsonLimitError, match="longer than 10 characters"):
        loads('{"a": "bcdefgh"}', max_chars=10)
    with pytest.raises(JsonLimitError, match="not UTF-8"):
        loads(b'{"a": "\xff"}')
    assert loads(b'{"a": "\xc3\xa9"}') == {"a": "é"}
    assert loads(bytearray(b"[1]")) == [1]


def test_parser_hooks_are_passed_through() -> None:
    pairs: list[list[tuple[str, Any]]] = []

    def hook(items: list[tuple[str, Any]]) -> dict[str, Any]:
        pairs.append(items)
        return dict(items)

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    assert loads('{"a": 1, "a": 2}', object_pairs_hook=hook) == {"a": 2}
    assert pairs == [[("a", 1), ("a", 2)]]
    with pytest.raises(ValueError, match="NaN"):
        loads("[NaN]", parse_constant=no_constants)
    with pytest.raises(json.JSONDecodeError):
        loads("{not json")
