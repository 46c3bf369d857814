"""Pagination as IAM's List actions do it: ``Marker``, ``MaxItems`` and ``IsTruncated``.

Lists are ordered by a key (a name, case-insensitively; an access key id); the marker of a
truncated page is the key of its last item, and the next page starts after it. A database list is
asked for one item more than ``MaxItems`` (``limit=fetch``) so truncation is known without a
count; a list already in memory is cut with :func:`page_of`; a list of both (the configuration's
entities and the database's, in one ordering) with :func:`merged_page`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gateway.iam.api.params import Args, Param, marker, max_items, path_prefix

__all__ = ["DEFAULT_MAX_ITEMS", "PAGING", "PATH_PREFIX", "Page", "PageRequest", "merged_page", "page_of"]

T = TypeVar("T")

DEFAULT_MAX_ITEMS = 100

#: The parameters of every paged action.
PAGING = (
    Param("Marker", marker, "the `Marker` of the previous, truncated answer"),
    Param("MaxItems", max_items, "1-1000 (default 100)"),
)
#: The ``PathPrefix`` of the List actions that filter by path.
PATH_PREFIX = Param("PathPrefix", path_prefix, "only entities whose path starts with it (default `/`)")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page was asked for: after ``marker``, at most ``max_items``."""

    marker: str | None
    max_items: int

    @classmethod
    def of(cls, args: Args) -> PageRequest:
        """The page ``args``' ``Marker`` and ``MaxItems`` ask for."""
        return cls(args.optional("Marker"), args.number("MaxItems") or DEFAULT_MAX_ITEMS)

    @property
    def fetch(self) -> int:
        """How many items to read: one more than a page, to learn whether there are more."""
        return self.max_items + 1


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of items, and the marker of the next one (``None``: this is the last)."""

    items: list[T]
    marker: str | None

    @classmethod
    def cut(cls, fetched: Sequence[T], request: PageRequest, key: Callable[[T], str]) -> Page[T]:
        """A page of ``fetched`` (read with ``limit=request.fetch``, after the marker)."""
        items = list(fetched[: request.max_items])
        truncated = len(fetched) > request.max_items
        return cls(items, key(items[-1]) if truncated and items else None)

    def fields(self, name: str, shape: Callable[[T], Any]) -> dict[str, Any]:
        """``{name: [shape(item)...], "IsTruncated": ..., "Marker": ...}`` as IAM answers."""
        out: dict[str, Any] = {name: [shape(i) for i in self.items], "IsTruncated": self.marker is not None}
        if self.marker is not None:
            out["Marker"] = self.marker
        return out


def page_of(items: Sequence[T], request: PageRequest, key: Callable[[T], str]) -> Page[T]:
    """The requested page of ``items`` (in any order; they are sorted by ``key``)."""
    ordered = sorted(items, key=key)
    if request.marker is not None:
        ordered = [i for i in ordered if key(i) > request.marker]
    return Page.cut(ordered[: request.fetch], request, key)


async def merged_page(
    declared: Sequence[T],
    stored: Callable[[int], Awaitable[Sequence[T]]],
    request: PageRequest,
    key: Callable[[T], str],
    *,
    taken: Collection[str],
) -> Page[T]:
    """The requested page of the configuration's ``declared`` items and the database's, in one
    ordering by ``key`` (the lower-cased name, the database's ``name_key``).

    ``stored(limit)`` reads the database's items after the request's marker, by that key, at most
    ``limit``; those whose key the configuration ``taken`` (every name it declares, whatever the
    path: the collision rule of :mod:`gateway.iam.records`) are left out, and as many more are
    read so that truncation is still known.
    """
    fetched = [i for i in await stored(request.fetch + len(taken)) if key(i) not in taken]
    return page_of([*declared, *fetched], request, key)
