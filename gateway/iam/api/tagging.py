"""Tagging actions' shared parts (TagUser, UntagUser, ListUserTags and their kin for other entities):
the parameters, the 50-tags quota, and the paged tag list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from gateway.db.records import Tags
from gateway.errors import LimitExceeded
from gateway.iam.api.action import ActionContext, Handler
from gateway.iam.api.paging import PageRequest, page_of
from gateway.iam.api.params import MAX_TAGS, Args, Param, tag_keys, tags

__all__ = ["TAGS", "TAGS_OPTIONAL", "TAG_KEYS", "TagHandlers", "check_tag_quota", "tag_handlers", "tags_page"]

TAGS = Param("Tags", tags, "`Tags.member.N.Key`/`.Value`, at most 50, keys unique in any case", required=True)
#: ``Tags`` of a create action.
TAGS_OPTIONAL = Param("Tags", tags, "`Tags.member.N.Key`/`.Value`, at most 50, keys unique in any case")
TAG_KEYS = Param("TagKeys", tag_keys, "`TagKeys.member.N`: the keys to remove (any case)", required=True)


def check_tag_quota(existing: Tags, added: Mapping[str, str]) -> None:
    """``LimitExceeded`` when adding ``added`` would leave more than 50 tags (keys in any case)."""
    keys = {k.lower() for k, _ in existing} | {k.lower() for k in added}
    if len(keys) > MAX_TAGS:
        raise LimitExceeded(f"The number of tags has reached the maximum limit of {MAX_TAGS}.")


def tags_page(existing: Tags, args: Args) -> dict[str, Any]:
    """The page of tags ``args`` ask for, as ListUserTags (and the other List*Tags) answer."""
    page = page_of(existing, PageRequest.of(args), lambda t: t[0].lower())
    return page.fields("Tags", lambda t: {"Key": t[0], "Value": t[1]})


class _Tagged(Protocol):
    @property
    def tags(self) -> Tags: ...


class _TagStore(Protocol):
    async def tag(self, key: str, tags: Mapping[str, str], /) -> None: ...

    async def untag(self, key: str, keys: Sequence[str], /) -> None: ...


E = TypeVar("E", bound=_Tagged)

#: The handlers of one entity kind's Tag*, Untag* and List*Tags actions.
TagHandlers = tuple[Handler, Handler, Handler]


def tag_handlers(
    find: Callable[[ActionContext, Args], Awaitable[E]],
    store: Callable[[ActionContext], _TagStore],
    key: Callable[[E], str],
    *,
    listed: Callable[[ActionContext, Args], Awaitable[_Tagged]] | None = None,
) -> TagHandlers:
    """Tag, untag and list-tags handlers for one entity kind: ``find`` the entity the request
    names (``NoSuchEntity`` if none), then change its tags in ``store`` under its ``key``, the
    quota checked first; ``listed`` finds it for the list where that also sees the configuration's
    entities (default: ``find``)."""

    async def tag(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
        entity = await find(ctx, args)
        adding = args.mapping("Tags")
        check_tag_quota(entity.tags, adding)
        await store(ctx).tag(key(entity), adding)
        return {}

    async def untag(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
        await store(ctx).untag(key(await find(ctx, args)), args.strings("TagKeys"))
        return {}

    async def list_tags(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
        return tags_page((await (listed or find)(ctx, args)).tags, args)

    return tag, untag, list_tags
