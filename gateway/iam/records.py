"""Plain records of IAM entities, as a source states them: what the catalog is built from.

Two sources feed the catalog, each handing over :class:`CatalogRecords` (documents as decoded
JSON, nothing compiled and nothing looked up): :func:`records_from_config` for the YAML file
(entities with ``source="config"``) and :func:`records_from_database` for the IAM database
(``source="api"``); :func:`merge_records` makes one set of them, and
:func:`gateway.iam.catalog.build_snapshot` validates and compiles it.

The collision rule: **a name the configuration declares is taken.** A user, group, role or
managed policy (by kind and name, names compared case-insensitively as IAM does) or an access key
id the YAML declares cannot exist in the database as well: the IAM API refuses to create one
(``EntityAlreadyExists``) and to change or delete a config entity (``UnmodifiableEntity``), reading
:attr:`CatalogSnapshot.source_of <gateway.iam.catalog.CatalogSnapshot.source_of>`. Should the
database still hold one (it was created before the YAML declared the name), the config entity wins
and the database's is left out of the catalog, with a warning naming it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from gateway.arns import policy_arn
from gateway.config import GatewayConfig
from gateway.db.records import IamSnapshot
from gateway.errors import ConfigError

__all__ = [
    "AccessKeyRecord",
    "CatalogRecords",
    "EntitySource",
    "GroupRecord",
    "InlinePolicyRecord",
    "PolicyRecord",
    "RoleRecord",
    "UserRecord",
    "merge_records",
    "records_from_config",
    "records_from_database",
]

log = logging.getLogger(__name__)

#: Where an entity is declared: ``config`` (the YAML file, read-only through any API) or ``api``.
EntitySource = Literal["config", "api"]
AccessKeyStatus = Literal["Active", "Inactive"]


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """A customer managed policy (``arn:aws:iam::ACCOUNT:policy{path}{name}``); for one the API
    manages, ``document`` is its default version's."""

    name: str
    document: Mapping[str, Any]
    path: str = "/"
    description: str = ""
    source: EntitySource = "config"


@dataclass(frozen=True, slots=True)
class InlinePolicyRecord:
    """A permission policy embedded in one role, user or group."""

    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RoleRecord:
    """A role.

    ``managed_policy_arns`` name attached managed policies (each must be among the records'
    policies); ``permissions_boundary_arn`` names the managed policy that bounds the role, if any.
    ``role_id`` is the role's ``AROA...`` id; ``None`` derives it from the ARN, as the session
    tokens do.
    """

    name: str
    trust_policy: Mapping[str, Any]
    path: str = "/"
    description: str = ""
    inline_policies: tuple[InlinePolicyRecord, ...] = ()
    managed_policy_arns: tuple[str, ...] = ()
    permissions_boundary_arn: str | None = None
    max_session_duration: int = 3600
    tags: Mapping[str, str] = field(default_factory=dict)
    role_id: str | None = None
    source: EntitySource = "config"


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A group; ``group_id`` (``AGPA...``) ``None`` derives it from the ARN."""

    name: str
    path: str = "/"
    inline_policies: tuple[InlinePolicyRecord, ...] = ()
    managed_policy_arns: tuple[str, ...] = ()
    group_id: str | None = None
    source: EntitySource = "config"


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user: its own policies, the groups it is in (by name) and its permissions boundary.

    ``user_id`` (``AIDA...``) ``None`` derives it from the ARN.
    """

    name: str
    path: str = "/"
    groups: tuple[str, ...] = ()
    inline_policies: tuple[InlinePolicyRecord, ...] = ()
    managed_policy_arns: tuple[str, ...] = ()
    permissions_boundary_arn: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    user_id: str | None = None
    source: EntitySource = "config"


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    """A user's long-term access key.

    A key the database holds carries its secret ``sealed`` under the key ring (opened on first use,
    :class:`gateway.iam.accesskeys.AccessKeys`); a key the YAML declares carries it ``secret``, read
    from its reference at load. Neither is in ``repr``.
    """

    access_key_id: str
    user_name: str
    status: AccessKeyStatus = "Active"
    sealed: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    source: EntitySource = "config"


@dataclass(frozen=True, slots=True)
class CatalogRecords:
    """Everything one source states about one account, at one ``revision``."""

    account_id: str
    roles: tuple[RoleRecord, ...] = ()
    policies: tuple[PolicyRecord, ...] = ()
    users: tuple[UserRecord, ...] = ()
    groups: tuple[GroupRecord, ...] = ()
    access_keys: tuple[AccessKeyRecord, ...] = ()
    revision: int = 0


def records_from_config(config: GatewayConfig) -> CatalogRecords:
    """The entities the configuration file declares; its users' secrets are read now.

    Raises :class:`~gateway.errors.ConfigError` naming a secret reference that cannot be read.
    """
    account = config.account_id
    by_name = {p.name: policy_arn(account, p.path, p.name) for p in config.policies}
    keys: list[AccessKeyRecord] = []
    for i, user in enumerate(config.users):
        for j, key in enumerate(user.access_keys):
            try:
                secret = key.secret.resolve().get_secret_value()
            except ValueError as exc:
                raise ConfigError(f"users[{i}].access_keys[{j}].secret: {exc}") from None
            if not 16 <= len(secret) <= 128:
                raise ConfigError(f"users[{i}].access_keys[{j}].secret: must be 16-128 characters")
            keys.append(AccessKeyRecord(key.id, user.name, key.status, secret=secret))
    return CatalogRecords(
        account_id=account,
        policies=tuple(
            PolicyRecord(name=p.name, path=p.path, description=p.description, document=p.document)
            for p in config.policies
        ),
        roles=tuple(
            RoleRecord(
                name=r.name,
                path=r.path,
                description=r.description,
                trust_policy=r.trust_policy,
                inline_policies=tuple(InlinePolicyRecord(i.name, i.document) for i in r.policies),
                managed_policy_arns=tuple(by_name[name] for name in r.managed_policies),
                max_session_duration=r.max_session_duration,
                tags=dict(r.tags),
            )
            for r in config.roles
        ),
        groups=tuple(
            GroupRecord(
                name=g.name,
                path=g.path,
                inline_policies=tuple(InlinePolicyRecord(i.name, i.document) for i in g.policies),
                managed_policy_arns=tuple(by_name[name] for name in g.managed_policies),
            )
            for g in config.groups
        ),
        users=tuple(
            UserRecord(
                name=u.name,
                path=u.path,
                groups=tuple(u.groups),
                inline_policies=tuple(InlinePolicyRecord(i.name, i.document) for i in u.policies),
                managed_policy_arns=tuple(by_name[name] for name in u.managed_policies),
                permissions_boundary_arn=(
                    by_name[u.permissions_boundary] if u.permissions_boundary is not None else None
                ),
                tags=dict(u.tags),
            )
            for u in config.users
        ),
        access_keys=tuple(keys),
    )


def _document(text: str, what: str) -> Mapping[str, Any] | None:
    """A stored policy document, or ``None`` (logged) when it is not a JSON object."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        log.warning("the IAM database holds a document that is not a JSON object: %s is left out", what)
        return None
    return value


def records_from_database(snapshot: IamSnapshot, account_id: str) -> CatalogRecords:
    """What the IAM database holds, as records with ``source="api"``.

    Users are in the groups the memberships name; each principal's inline policies and attached
    policy ARNs come from the snapshot's tables; a managed policy's document is its default
    version's. A stored document that is not a JSON object (the API never stores one) leaves out
    what it belongs to, failing closed: an inline or managed policy that grants nothing, a role no
    one can assume; it does not stop the rest of the database from reaching the catalog.
    """
    inline: dict[tuple[str, str], list[InlinePolicyRecord]] = {}
    for p in snapshot.inline_policies:
        document = _document(p.document, f"{p.principal_type} {p.principal_id} inline policy {p.name}")
        if document is not None:
            inline.setdefault((p.principal_type, p.principal_id), []).append(
                InlinePolicyRecord(p.name, document)
            )
    attached: dict[tuple[str, str], list[str]] = {}
    for a in snapshot.attachments:
        attached.setdefault((a.principal_type, a.principal_id), []).append(a.policy_arn)
    defaults = {(v.policy_id, v.version_id): v.document for v in snapshot.policy_versions}
    group_names = {g.id: g.name for g in snapshot.groups}
    member_of: dict[str, list[str]] = {}
    for m in snapshot.memberships:
        if m.group_id in group_names:
            member_of.setdefault(m.user_id, []).append(group_names[m.group_id])
    user_names = {u.id: u.name for u in snapshot.users}

    def policies_of(kind: str, entity_id: str) -> tuple[tuple[InlinePolicyRecord, ...], tuple[str, ...]]:
        key = (kind, entity_id)
        return tuple(inline.get(key, ())), tuple(attached.get(key, ()))

    users = []
    for u in snapshot.users:
        own, arns = policies_of("user", u.id)
        users.append(
            UserRecord(
                name=u.name,
                path=u.path,
                groups=tuple(sorted(member_of.get(u.id, ()))),
                inline_policies=own,
                managed_policy_arns=arns,
                permissions_boundary_arn=u.boundary_arn,
                tags=dict(u.tags),
                user_id=u.id,
                source="api",
            )
        )
    groups = []
    for g in snapshot.groups:
        own, arns = policies_of("group", g.id)
        groups.append(
            GroupRecord(
                name=g.name,
                path=g.path,
                inline_policies=own,
                managed_policy_arns=arns,
                group_id=g.id,
                source="api",
            )
        )
    roles = []
    for r in snapshot.roles:
        own, arns = policies_of("role", r.id)
        trust = _document(r.trust_policy, f"role {r.name}'s trust policy")
        if trust is None:
            continue
        roles.append(
            RoleRecord(
                name=r.name,
                path=r.path,
                description=r.description,
                trust_policy=trust,
                inline_policies=own,
                managed_policy_arns=arns,
                permissions_boundary_arn=r.boundary_arn,
                max_session_duration=r.max_session_duration,
                tags=dict(r.tags),
                role_id=r.id,
                source="api",
            )
        )
    policies = []
    for mp in snapshot.policies:
        text = defaults.get((mp.id, mp.default_version))
        document = _document(text, f"policy {mp.arn}") if text is not None else None
        if document is not None:
            policies.append(
                PolicyRecord(
                    name=mp.name, path=mp.path, description=mp.description, document=document, source="api"
                )
            )
    keys = [
        AccessKeyRecord(k.id, user_names[k.user_id], k.status, sealed=k.sealed_secret, source="api")
        for k in snapshot.access_keys
        if k.user_id in user_names
    ]
    return CatalogRecords(
        account_id=account_id,
        roles=tuple(roles),
        policies=tuple(policies),
        users=tuple(users),
        groups=tuple(groups),
        access_keys=tuple(keys),
        revision=snapshot.revision,
    )


def _kept(kind: str, config: Iterable[Any], api: Iterable[Any], name: str = "name") -> tuple[Any, ...]:
    taken = {getattr(c, name).lower() for c in config}
    out = list(config)
    for entity in api:
        if getattr(entity, name).lower() in taken:
            log.warning(
                "the IAM database holds a %s the configuration declares (%s); the configuration's is used",
                kind,
                getattr(entity, name)[:128],
            )
            continue
        out.append(entity)
    return tuple(out)


def merge_records(config: CatalogRecords, api: CatalogRecords) -> CatalogRecords:
    """One set of records from both sources, by the collision rule (the config's names are taken),
    at the database's revision."""
    if config.account_id != api.account_id:
        raise ValueError("both sources must describe one account")
    config_users = {u.name.lower() for u in config.users}
    return replace(
        config,
        roles=_kept("role", config.roles, api.roles),
        policies=_kept("managed policy", config.policies, api.policies),
        users=_kept("user", config.users, api.users),
        groups=_kept("group", config.groups, api.groups),
        # A database key of a user shadowed by a config user of that name is not that user's.
        access_keys=_kept(
            "access key",
            config.access_keys,
            (k for k in api.access_keys if k.user_name.lower() not in config_users),
            name="access_key_id",
        ),
        revision=api.revision,
    )
