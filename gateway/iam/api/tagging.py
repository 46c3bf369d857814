"""Tagging actions' shared parts (TagUser, UntagUser, ListUserTags and their kin for other entities):
the parameters, the 50-tags quota, and the paged tag list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.db.records import Tags
from gateway.errors import LimitExceeded
from gateway.iam.api.paging import PageRequest, page_of
from gateway.iam.api.params import MAX_TAGS, Args, Param, tag_keys, tags

__all__ = ["TAGS", "TAGS_OPTIONAL", "TAG_KEYS", "check_tag_quota", "tags_page"]

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
