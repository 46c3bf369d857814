"""What an IAM action is, and the one way every action runs.

An :class:`IamAction` declares its parameters (:mod:`.params`), how to find the resource it acts
on (a :data:`Resolver`: the ARN IAM authorizes ``iam:ACTION`` against, e.g. the user's for user
actions), a handler over the database's repositories, and what it writes. :func:`execute` runs one:

1. the parameters are validated (``ValidationError`` naming the parameter);
2. one transaction opens (a write transaction for actions that write, so a check and the change
   it guards cannot race another writer, on any replica);
3. the resource is resolved and the caller must be allowed ``iam:ACTION`` on it
   (:meth:`Principal.authorize`: the adapter's one authorization function, the proxy's engine);
4. a write to an entity the configuration file declares is refused (``UnmodifiableEntity``,
   or ``EntityAlreadyExists`` for a create);
5. the handler runs; if anything raises, the transaction is rolled back whole.

The caller is a :class:`Principal`; the web adapter (:mod:`gateway.web.iam`) builds it from the
call's verified signature. Results are botocore-shaped Python values (lists, dicts, booleans,
datetimes) for :func:`gateway.sts.xml.xml_value`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, final

from gateway.calls import CallRecord
from gateway.db.database import IamDatabase
from gateway.db.transaction import Transaction
from gateway.errors import (
    EntityAlreadyExists,
    ServiceError,
    ServiceUnavailable,
    UnmodifiableEntity,
    ValidationError,
)
from gateway.iam.api.params import Args, Param, audit_parameters, parse
from gateway.iam.catalog import CatalogSnapshot
from gateway.iam.mfa import MfaCodes
from gateway.iam.permissions import Check, ContextValue
from gateway.identity import IdentityProvider
from gateway.sts.params import QueryParams

__all__ = [
    "ActionContext",
    "Declared",
    "Handler",
    "IamAction",
    "Principal",
    "Resolver",
    "Resource",
    "execute",
]


class Principal(Protocol):
    """Who is calling, as the IAM actions need to know it."""

    @property
    def arn(self) -> str:
        """The caller's ARN (an assumed-role session's, or an IAM user's)."""

    @property
    def user_name(self) -> str | None:
        """The caller's IAM user name: what actions default ``UserName`` to; ``None`` for a role."""

    def authorize(self, checks: Sequence[Check]) -> None:
        """Raise ``AccessDenied`` unless the caller's policies allow every check."""


@final
@dataclass(frozen=True, slots=True)
class Declared:
    """An entity the configuration file declares: ``noun`` ("role", "policy") and ``name``."""

    noun: str
    name: str


@final
@dataclass(frozen=True, slots=True)
class Resource:
    """What an action acts on.

    ``arn`` is what ``iam:ACTION`` is authorized against; ``type`` the CloudTrail resource type
    recorded with the event (``AWS::IAM::User``; ``None`` for a list's ``user/`` prefix);
    ``context`` extra condition keys (``iam:PermissionsBoundary``); ``declared`` is set when the
    entity (or, for a create, its name) belongs to the configuration file. ``also`` are further
    ARNs the action must be allowed on (a rename needs the old name and the new one).
    """

    arn: str
    type: str | None = None
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    declared: Declared | None = None
    also: tuple[str, ...] = ()


@final
@dataclass(frozen=True, slots=True)
class ActionContext:
    """What a resolver and a handler work with: one transaction and the catalog snapshot taken
    for the call, the caller, the call's audit record (for response elements), where MFA
    codes are checked (``None`` where no store is at hand: MFA actions then fail closed), and the
    identity providers the configuration file declares (listed beside the API's)."""

    tx: Transaction
    snapshot: CatalogSnapshot
    caller: Principal
    record: CallRecord
    mfa: MfaCodes | None = None
    providers: Sequence[IdentityProvider] = ()

    def mfa_codes(self) -> MfaCodes:
        """Where MFA codes are checked; ``ServiceUnavailable`` when there is none."""
        if self.mfa is None:
            raise ServiceUnavailable("MFA codes cannot be checked right now; retry later.")
        return self.mfa

    @property
    def account_id(self) -> str:
        """The account the entities belong to."""
        return self.snapshot.account_id

    def user_name(self, args: Args) -> str:
        """``UserName``, or the calling user's own name when it is omitted (as IAM does)."""
        given = args.optional("UserName") or self.caller.user_name
        if given is None:
            raise ValidationError("Must specify userName when calling with non-User credentials")
        return given


Resolver = Callable[[ActionContext, Args], Awaitable[Resource]]
Handler = Callable[[ActionContext, Args], Awaitable[Mapping[str, Any]]]


@final
@dataclass(frozen=True, slots=True)
class IamAction:
    """One IAM action.

    ``resource_doc`` and ``errors`` are for ``docs/iam-actions.md`` (generated from the registry);
    ``writes`` picks a write transaction; ``creates`` makes a configuration-declared resource an
    ``EntityAlreadyExists`` rather than an ``UnmodifiableEntity``.
    """

    name: str
    summary: str
    params: tuple[Param, ...]
    resource: Resolver
    resource_doc: str
    handler: Handler
    writes: bool = False
    creates: bool = False
    errors: tuple[type[ServiceError], ...] = ()


async def execute(
    action: IamAction,
    params: QueryParams,
    *,
    database: IamDatabase,
    snapshot: CatalogSnapshot,
    caller: Principal,
    record: CallRecord,
    mfa: MfaCodes | None = None,
    providers: Sequence[IdentityProvider] = (),
) -> Mapping[str, Any]:
    """Run ``action`` for ``caller`` (see the module docstring for the order of checks);
    ``providers`` are the configuration's identity providers."""
    args = parse(params, action.params)
    record.request_parameters = audit_parameters(args, action.params)
    transaction = database.write() if action.writes else database.read()
    async with transaction as tx:
        ctx = ActionContext(tx, snapshot, caller, record, mfa, providers)
        resource = await action.resource(ctx, args)
        caller.authorize(
            [Check(f"iam:{action.name}", arn, resource.context) for arn in (resource.arn, *resource.also)]
        )
        if resource.type is not None:
            record.resources.append((resource.type, resource.arn))
        declared = resource.declared
        if declared is not None and action.writes:
            if action.creates:
                noun = declared.noun.capitalize()
                raise EntityAlreadyExists(f"{noun} with name {declared.name} already exists.")
            raise UnmodifiableEntity(
                f"Cannot perform the operation on the {declared.noun} {declared.name}: it is declared in "
                "fedgate's configuration file; change it there."
            )
        return await action.handler(ctx, args)
