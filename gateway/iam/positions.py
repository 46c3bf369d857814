"""Where each statement sits in a policy's JSON text, as IAM's simulator reports it.

``MatchedStatements[].StartPosition``/``EndPosition`` are line and column pairs. Lines count from 1;
a column is the 1-based column of the character just *after* the statement's opening brace
(start) and just after its closing brace (end). That is what AWS's documented example shows: a
``"Statement": {`` on line 4 with the brace in column 18 starts at ``{Line: 4, Column: 19}``, and
the ``}`` in column 5 of line 12 ends at ``{Line: 12, Column: 6}``.

The text has already been accepted by :func:`gateway.policy.parse_policy`, so this scanner only
needs to find spans, not to validate; it still stops (returning no positions) on anything odd
rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Position", "StatementSpan", "statement_spans"]

_WS = " \t\n\r"


@dataclass(frozen=True, slots=True)
class Position:
    """A line (from 1) and column (from 1) in the policy text."""

    line: int
    column: int


@dataclass(frozen=True, slots=True)
class StatementSpan:
    """Where one statement starts and ends."""

    start: Position
    end: Position


class _Odd(Exception):
    pass


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _end_of_string(text: str, i: int) -> int:
    """``text[i]`` is an opening quote; return the index after the closing one."""
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
        elif ch == '"':
            return i + 1
        else:
            i += 1
    raise _Odd


def _end_of_value(text: str, i: int) -> int:
    """Index just after the JSON value starting at ``text[i]`` (iterative: no recursion limit)."""
    if i >= len(text):
        raise _Odd
    if text[i] == '"':
        return _end_of_string(text, i)
    if text[i] not in "{[":
        while i < len(text) and text[i] not in ",}] \t\n\r":
            i += 1
        return i
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = _end_of_string(text, i)
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise _Odd


def _members(text: str, i: int) -> list[tuple[str, int, int]]:
    """The ``(key, value_start, value_end)`` of the object whose ``{`` is at ``text[i]``."""
    out: list[tuple[str, int, int]] = []
    i = _skip_ws(text, i + 1)
    if i < len(text) and text[i] == "}":
        return out
    while True:
        if i >= len(text) or text[i] != '"':
            raise _Odd
        key_end = _end_of_string(text, i)
        key = text[i + 1 : key_end - 1]
        i = _skip_ws(text, key_end)
        if i >= len(text) or text[i] != ":":
            raise _Odd
        start = _skip_ws(text, i + 1)
        end = _end_of_value(text, start)
        out.append((key, start, end))
        i = _skip_ws(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip_ws(text, i + 1)
            continue
        if i < len(text) and text[i] == "}":
            return out
        raise _Odd


def _elements(text: str, i: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each element of the array whose ``[`` is at ``text[i]``."""
    out: list[tuple[int, int]] = []
    i = _skip_ws(text, i + 1)
    if i < len(text) and text[i] == "]":
        return out
    while True:
        end = _end_of_value(text, i)
        out.append((i, end))
        i = _skip_ws(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip_ws(text, i + 1)
            continue
        if i < len(text) and text[i] == "]":
            return out
        raise _Odd


def _position(text: str, index: int) -> Position:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return Position(line, column)


def statement_spans(text: str) -> tuple[StatementSpan, ...]:
    """The span of every statement of the policy ``text``, in document order (empty if unknown)."""
    try:
        top = _skip_ws(text, 0)
        if top >= len(text) or text[top] != "{":
            return ()
        found = [(s, e) for key, s, e in _members(text, top) if key == "Statement"]
        if len(found) != 1:
            return ()
        start, end = found[0]
        if text[start] == "{":
            objects = [(start, end)]
        elif text[start] == "[":
            objects = _elements(text, start)
        else:
            return ()
        if any(text[s] != "{" for s, _ in objects):
            return ()
        # Just after "{" and just after "}": AWS's convention (see the module docstring).
        return tuple(StatementSpan(_position(text, s + 1), _position(text, e)) for s, e in objects)
    except _Odd:
        return ()
