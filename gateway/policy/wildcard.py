"""Wildcard patterns and policy variables, compiled to regular expressions once.

Three pattern flavours, all anchored (full match):

* plain globs (actions, ``StringLike``): ``*`` is any run of characters, ``?`` exactly one;
* ARN globs (``Resource``, ``ArnLike``/``ArnEquals``): the first five colon-separated segments
  (``arn``, partition, service, region, account) are matched one by one, so a wildcard there never
  crosses a ``:``; in the sixth (resource) segment ``*`` crosses ``/`` and ``:`` as AWS documents;
* templates: a pattern holding policy variables (``${aws:username}``). Substituted values are
  escaped, so a user named ``*`` matches only the literal ``*`` (the bug MinIO and PMapper have).

A variable whose key is absent (and that has no default), or is multi-valued, leaves its pattern
unresolved. The other patterns of the set still decide on their own; only when none of them matches
is the match *indeterminate*: :class:`Indeterminate` is raised and the caller decides what that
means (a ``Resource`` pattern then matches nothing, as AWS documents; everywhere else the statement
fails closed).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, final

__all__ = [
    "Indeterminate",
    "PatternSet",
    "Template",
    "Var",
    "arn_regex",
    "compile_arn",
    "compile_glob",
    "glob_regex",
    "parse_template",
    "substitute",
]

_FLAGS = re.DOTALL


class Indeterminate(Exception):
    """A pattern or condition could not be evaluated for this request (missing variable, bad value)."""


@dataclass(frozen=True, slots=True)
class Var:
    """A policy variable: lower-cased context key and optional default."""

    key: str
    default: str | None = None


# A template part: raw pattern text (wildcards active), a literal (escaped, from ${*} ${?} ${$}),
# or a variable.
Part = tuple[Literal["raw", "lit"], str] | Var


@dataclass(frozen=True, slots=True)
class Template:
    """A string holding policy variables, split into parts."""

    parts: tuple[Part, ...]

    def literal(self, ctx: Mapping[str, str | tuple[str, ...]]) -> str:
        """The template as plain text after substitution (for equality operators). Raises Indeterminate."""
        return "".join(substitute(p, ctx) if isinstance(p, Var) else p[1] for p in self.parts)


def substitute(var: Var, ctx: Mapping[str, str | tuple[str, ...]]) -> str:
    value = ctx.get(var.key)
    if value is None:
        if var.default is None:
            raise Indeterminate(f"no value for ${{{var.key}}}")
        return var.default
    if isinstance(value, str):
        return value
    # AWS does not substitute multi-valued keys; a one-element list is unambiguous.
    if len(value) == 1:
        return value[0]
    raise Indeterminate(f"${{{var.key}}} is multi-valued")


_VAR_BODY = re.compile(r"^\s*([^\s,'${}][^,'${}]*?)\s*(?:,\s*'([^']*)'\s*)?\Z")


def parse_template(text: str) -> Template | None:
    """Split ``text`` into parts; ``None`` when it holds no ``${...}``. Raises ValueError if malformed."""
    if "${" not in text:
        return None
    parts: list[Part] = []
    pos = 0
    while (start := text.find("${", pos)) != -1:
        end = text.find("}", start + 2)
        if end == -1:
            raise ValueError("unterminated policy variable (missing '}')")
        if start > pos:
            parts.append(("raw", text[pos:start]))
        body = text[start + 2 : end]
        if body in ("*", "?", "$"):
            parts.append(("lit", body))
        else:
            m = _VAR_BODY.match(body)
            if not m:
                raise ValueError(f"malformed policy variable ${{{body}}}")
            parts.append(Var(m.group(1).lower(), m.group(2)))
        pos = end + 1
    if pos < len(text):
        parts.append(("raw", text[pos:]))
    return Template(tuple(parts))


class _Star:
    """A ``*`` that may match any run of characters (ARN heads have their own, see below)."""

    __slots__ = ()


_STAR = _Star()
# A regex fragment, a template variable's index (substituted per request), or a free star.
_Token = str | int | _Star


def _linear(tokens: list[_Token]) -> list[str | int]:
    """Regex fragments for glob tokens that match in linear time, however many stars.

    A naive ``.*`` per star backtracks polynomially (``logs/*/*/*/*.gz`` against a key of a few
    hundred slashes takes seconds), and keys and condition values come from requests. Between two
    free stars the text is of fixed length, so the leftmost place it matches is always a right one
    (the next star can absorb whatever a later place would have skipped): each star but the last
    becomes an atomic lazy group ``(?>.*?SEGMENT)`` that commits to that place and never backtracks;
    the last one, which must leave exactly the final segment before the end, stays ``.*``.
    """
    stars = [i for i, t in enumerate(tokens) if t is _STAR]
    last = stars[-1] if stars else -1
    out: list[str | int] = []
    group_open = False
    for i, token in enumerate(tokens):
        if isinstance(token, _Star):
            if group_open:
                out.append(")")
            out.append(".*" if i == last else "(?>.*?")
            group_open = i != last
        else:
            out.append(token)
    return out


def _glob_tokens(parts: tuple[Part, ...]) -> list[_Token]:
    tokens: list[_Token] = []
    n_vars = 0
    for part in parts:
        if isinstance(part, Var):
            tokens.append(n_vars)
            n_vars += 1
        elif part[0] == "lit":
            tokens.append(re.escape(part[1]))
        else:
            tokens.extend(_STAR if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in part[1])
    return tokens


def glob_regex(pattern: str) -> str:
    """Regex source for a glob (no anchors; matches in linear time, see :func:`_linear`)."""
    return "".join(str(f) for f in _linear(_glob_tokens((("raw", pattern),))))


def arn_regex(pattern: str) -> str:
    """Regex source for an ARN glob (no anchors)."""
    return "".join(f for f in _arn_fragments((("raw", pattern),)) if isinstance(f, str))


def _arn_fragments(parts: tuple[Part, ...]) -> list[str | int]:
    """Regex fragments for ARN template parts; the n-th variable becomes the int ``n``.

    Colons are counted in the policy's own text only, so a substituted value containing ':' can
    never move the segment boundaries; such a value simply has to match literally. A star in the
    five head segments is ``[^:]*`` (bounded by the colons around it); in the resource segment it
    is a free star, matched in linear time.
    """
    tokens: list[_Token] = []
    colons = 0
    n_vars = 0
    for part in parts:
        if isinstance(part, Var):
            tokens.append(n_vars)
            n_vars += 1
            continue
        kind, text = part
        if kind == "lit":
            tokens.append(re.escape(text))
            continue
        for ch in text:
            in_head = colons < 5
            if ch == ":":
                colons += 1
                tokens.append(":")
            elif ch == "*":
                tokens.append("[^:]*" if in_head else _STAR)
            elif ch == "?":
                tokens.append("[^:]" if in_head else ".")
            else:
                tokens.append(re.escape(ch))
    return _linear(tokens)


def compile_glob(patterns: list[str], *, lower: bool = False) -> re.Pattern[str]:
    """One anchored regex matching any of ``patterns`` (plain globs)."""
    alts = "|".join(glob_regex(p.lower() if lower else p) for p in patterns)
    return _compile(f"(?:{alts})")


def compile_arn(patterns: list[str]) -> re.Pattern[str]:
    """One anchored regex matching any of the ARN globs ``patterns`` (``*`` alone matches anything)."""
    alts = "|".join(".*" if p == "*" else arn_regex(p) for p in patterns)
    return _compile(f"(?:{alts})")


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> re.Pattern[str]:
    # Bounded: templates resolve to a new source per distinct variable value.
    return re.compile(source, _FLAGS)


_TEMPLATE_CACHE_MAX = 256


@final
class PatternSet:
    """Glob or ARN patterns, some holding policy variables, matched as one regex per request.

    The regex source around the variables is built once; the compiled alternation is memoised per
    tuple of substituted values, so a steady stream of requests from the same users compiles
    nothing. If a variable has no value, the static patterns and every template whose variables
    all have values decide, and only a miss there is :class:`Indeterminate`.
    """

    __slots__ = ("_cache", "_each", "_one", "fragments", "static", "vars")

    def __init__(self, patterns: list[str], flavour: Literal["glob", "arn"], *, with_vars: bool) -> None:
        statics: list[str] = []
        templates: list[Template] = []
        texts: list[str] = []
        for text in patterns:
            t = parse_template(text) if with_vars else None
            if t is None:
                statics.append(text)
            else:
                templates.append(t)
                texts.append(text)
        compile_static = compile_arn if flavour == "arn" else compile_glob
        self.static = compile_static(statics) if statics else None
        keys: dict[Var, int] = {}
        alts: list[list[str | int]] = []
        for t in templates:
            fragments: list[str | int] = []
            parts = _arn_fragments(t.parts) if flavour == "arn" else _glob_fragments(t.parts)
            t_vars = [p for p in t.parts if isinstance(p, Var)]
            for f in parts:
                fragments.append(f if isinstance(f, str) else keys.setdefault(t_vars[f], len(keys)))
            alts.append(fragments)
        if statics:
            alts.append([self.static.pattern])  # type: ignore[union-attr]
        merged: list[str | int] = ["(?:"]
        for i, frags in enumerate(alts):
            if i:
                merged.append("|")
            merged.extend(frags)
        merged.append(")")
        self.fragments = tuple(merged)
        self.vars = tuple(keys)
        if templates and not self.vars:  # only escapes such as ${*}: as static as any pattern
            self.static = _compile("".join(str(f) for f in merged))
        self._one = self.vars[0] if len(self.vars) == 1 else None
        self._cache: dict[tuple[str, ...], re.Pattern[str]] = {}
        # With several templates, one missing variable must not hide a template that resolves:
        # each is also kept on its own, for that (rare) case.
        self._each = tuple(PatternSet([t], flavour, with_vars=True) for t in texts) if len(texts) > 1 else ()

    def match(self, value: str, ctx: Mapping[str, str | tuple[str, ...]]) -> bool:
        """Does ``value`` match any pattern? Raises Indeterminate (see the class docstring)."""
        if not self.vars:
            return self.static is not None and self.static.fullmatch(value) is not None
        try:
            if self._one is not None:
                values: tuple[str, ...] = (substitute(self._one, ctx),)
            else:
                values = tuple(substitute(v, ctx) for v in self.vars)
        except Indeterminate:
            if self.static is not None and self.static.fullmatch(value) is not None:
                return True
            for each in self._each:
                try:
                    if each.match(value, ctx):
                        return True
                except Indeterminate:
                    pass
            raise
        rx = self._cache.get(values)
        if rx is None:
            src = "".join(f if isinstance(f, str) else re.escape(values[f]) for f in self.fragments)
            rx = re.compile(src, _FLAGS)
            if len(self._cache) >= _TEMPLATE_CACHE_MAX:
                self._cache.clear()  # values come from requests: bound the memo
            self._cache[values] = rx
        return rx.fullmatch(value) is not None


def _glob_fragments(parts: tuple[Part, ...]) -> list[str | int]:
    return _linear(_glob_tokens(parts))
