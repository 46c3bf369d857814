"""What a Query API action is: the table entry each API (STS, IAM) registers, and the call it gets.

Kept apart from the endpoint (:mod:`gateway.web.query`) so that the app key holding the table
(:data:`gateway.keys.QUERY_ACTIONS`) points at plain types, not at the handler module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from gateway.calls import CallRecord
from gateway.sts.params import QueryParams
from gateway.sts.xml import XmlValue

__all__ = ["QueryAction", "QueryActions", "QueryCall", "QueryHandler"]


@dataclass(frozen=True, slots=True)
class QueryCall:
    """One Query API call, as handed to an action handler; ``record`` is what the audit trail tells."""

    request: web.Request
    params: QueryParams
    body: bytes
    record: CallRecord


QueryHandler = Callable[[QueryCall], Awaitable[Mapping[str, XmlValue]]]


@dataclass(frozen=True, slots=True)
class QueryAction:
    """An action handler, the XML namespace of its responses and its audit event source.

    ``read_only`` is the audit event's ``readOnly`` (``None``: whether the name starts with
    ``Get``).
    """

    handler: QueryHandler
    namespace: str
    event_source: str
    read_only: bool | None = None


#: Actions by ``(Version, Action)``.
QueryActions = Mapping[tuple[str, str], QueryAction]
