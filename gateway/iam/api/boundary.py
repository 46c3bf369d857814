"""Permissions boundaries: the ``PermissionsBoundary`` parameter of users (and roles).

A boundary is a managed policy named by ARN: one the configuration declares or one in the
database. A malformed ARN is ``InvalidInput``; one that names no policy ``NoSuchEntity``. The
ARN is the ``iam:PermissionsBoundary`` condition key of the call, so a policy can allow creating
users only under a given boundary, as on AWS.
"""

from __future__ import annotations

from gateway.errors import NoSuchEntity
from gateway.iam.api.action import ActionContext
from gateway.iam.api.params import Param, arn
from gateway.iam.api.policies import check_policy_arn, find_policy
from gateway.iam.permissions import ContextValue

__all__ = ["BOUNDARY", "boundary_context", "require_boundary"]

BOUNDARY = Param("PermissionsBoundary", arn, "the ARN of a managed policy that bounds the entity")


def boundary_context(boundary: str | None) -> dict[str, ContextValue]:
    """The condition keys a call setting ``boundary`` is decided with (and ARN syntax checked)."""
    if boundary is None:
        return {}
    return {"iam:PermissionsBoundary": check_policy_arn(boundary)}


async def require_boundary(ctx: ActionContext, boundary: str) -> None:
    """``NoSuchEntity`` unless ``boundary`` names a managed policy (configured or in the database)."""
    if await find_policy(ctx, boundary) is not None:
        return
    raise NoSuchEntity(f"Scope ARN: {boundary} does not exist or is not attachable.")
