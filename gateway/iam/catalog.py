"""The IAM catalog: every principal and managed policy, compiled once, behind one atomically swapped snapshot.

Every decision (STS's trust check, the permissions of a signed call, the simulator, the browser
role chooser) reads a :class:`CatalogSnapshot`: roles by ARN with their compiled trust policy,
inline and attached managed policies, tags and permissions boundary; users with their groups,
policies and boundary; groups; long-term access keys by id; managed policies by ARN in their
identity and session-policy forms; and a cache of the compiled :class:`~gateway.policy.PolicySet`
of each (role, session policy, policy ARNs) and of each user. A snapshot never changes.
:class:`Catalog` holds the current one; :meth:`Catalog.swap` replaces it with one attribute
assignment, so a reader that takes ``catalog.snapshot`` once per request sees one consistent
state, and the policy-set cache (owned by the snapshot) is invalidated by the swap.

Snapshots are built by :func:`build_snapshot` from plain records (:mod:`gateway.iam.records`): the
YAML's and the IAM database's, merged by the collision rule stated there. A config entity naming a
managed policy that does not exist is a configuration error; an API entity's reference that
dangles (its policy went away under it) fails closed: a missing attached policy grants nothing and
a missing permissions boundary allows nothing. Likewise an API entity's document the policy engine
refuses (the API validates every one, so only a database changed behind its back holds one) is
left out, logged, without stopping the rebuild: an inline or managed policy that grants nothing, a
boundary that allows nothing, a role no one can assume.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, final

from gateway.arns import group_arn, policy_arn, role_arn, user_arn
from gateway.credentials import role_id_for
from gateway.errors import MalformedPolicyDocument
from gateway.iam.records import (
    AccessKeyStatus,
    CatalogRecords,
    EntitySource,
    GroupRecord,
    InlinePolicyRecord,
    RoleRecord,
    UserRecord,
)
from gateway.policy import Policy, PolicyKind, PolicySet, parse_policy
from gateway.policy.cache import LRU

__all__ = [
    "POLICY_SET_CACHE",
    "AccessKey",
    "Catalog",
    "CatalogSnapshot",
    "EntityKind",
    "Group",
    "InlinePolicy",
    "ManagedPolicy",
    "Role",
    "User",
    "build_snapshot",
    "entity_id_for",
]

log = logging.getLogger(__name__)

#: The kinds of named entities, for :meth:`CatalogSnapshot.source_of`.
EntityKind = Literal["user", "group", "role", "policy"]
# What a permissions boundary that no longer exists allows: nothing.
_NOTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}

#: How many compiled policy sets a snapshot keeps (one per role, session policy and policy ARNs).
POLICY_SET_CACHE = 4096

PolicySetKey = tuple[str, str | None, tuple[str, ...]]


@final
@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    """A customer managed policy: its document, compiled as an identity policy and as a session
    policy (``PolicyArns`` of an AssumeRole* call)."""

    arn: str
    name: str
    path: str
    description: str
    document: Mapping[str, Any]
    identity: Policy
    session: Policy
    source: EntitySource


@final
@dataclass(frozen=True, slots=True)
class InlinePolicy:
    """A permission policy embedded in a role, user or group."""

    name: str
    document: Mapping[str, Any]
    policy: Policy


@final
@dataclass(frozen=True, slots=True)
class Role:
    """A role as every decision sees it.

    ``trust`` is the compiled trust policy; ``inline`` and ``managed`` the permission policies (in
    that order); ``boundary`` the compiled permissions boundary, or ``None``.
    """

    arn: str
    name: str
    path: str
    role_id: str
    account_id: str
    description: str
    max_session_duration: int
    tags: Mapping[str, str]
    trust_document: Mapping[str, Any]
    trust: Policy
    inline: tuple[InlinePolicy, ...]
    managed: tuple[ManagedPolicy, ...]
    boundary: Policy | None
    source: EntitySource

    @property
    def identity_policies(self) -> tuple[Policy, ...]:
        """The role's permission policies: inline first, then attached managed policies."""
        return tuple(p.policy for p in self.inline) + tuple(m.identity for m in self.managed)


@final
@dataclass(frozen=True, slots=True)
class Group:
    """A group: its policies apply to each of its users."""

    arn: str
    name: str
    path: str
    group_id: str
    inline: tuple[InlinePolicy, ...]
    managed: tuple[ManagedPolicy, ...]
    source: EntitySource


@final
@dataclass(frozen=True, slots=True)
class User:
    """An IAM user as every decision sees it.

    ``inline`` and ``managed`` are its own permission policies, ``groups`` the groups it is in
    (their policies count too), ``boundary`` its compiled permissions boundary or ``None`` (and
    ``boundary_arn`` the managed policy it was compiled from).
    """

    arn: str
    name: str
    path: str
    user_id: str
    account_id: str
    tags: Mapping[str, str]
    groups: tuple[Group, ...]
    inline: tuple[InlinePolicy, ...]
    managed: tuple[ManagedPolicy, ...]
    boundary: Policy | None
    source: EntitySource
    boundary_arn: str | None = None

    @property
    def identity_policies(self) -> tuple[Policy, ...]:
        """The user's permission policies: its own inline and attached, then each group's."""
        out = [p.policy for p in self.inline] + [m.identity for m in self.managed]
        for group in self.groups:
            out += [p.policy for p in group.inline] + [m.identity for m in group.managed]
        return tuple(out)


@final
@dataclass(frozen=True, slots=True)
class AccessKey:
    """A long-term access key: whose it is, whether it is active, and its secret (sealed for a key
    the database holds, plain for one the YAML declares; neither in ``repr``)."""

    access_key_id: str
    user_arn: str
    status: AccessKeyStatus
    sealed: str | None = field(repr=False)
    secret: str | None = field(repr=False)
    source: EntitySource


@final
class CatalogSnapshot:
    """One immutable state of the catalog. Build with :func:`build_snapshot`."""

    __slots__ = (
        "_by_name",
        "_groups_by_name",
        "_policy_sets",
        "_sources",
        "_users_by_name",
        "access_keys",
        "account_id",
        "groups",
        "policies",
        "revision",
        "roles",
        "users",
    )

    def __init__(
        self,
        account_id: str,
        roles: Mapping[str, Role],
        policies: Mapping[str, ManagedPolicy],
        *,
        users: Mapping[str, User] | None = None,
        groups: Mapping[str, Group] | None = None,
        access_keys: Mapping[str, AccessKey] | None = None,
        revision: int = 0,
        policy_set_cache: int = POLICY_SET_CACHE,
    ) -> None:
        self.account_id = account_id
        self.revision = revision
        self.roles: Mapping[str, Role] = MappingProxyType(dict(roles))
        """Roles by ARN."""
        self.policies: Mapping[str, ManagedPolicy] = MappingProxyType(dict(policies))
        """Managed policies by ARN."""
        self.users: Mapping[str, User] = MappingProxyType(dict(users or {}))
        """Users by ARN."""
        self.groups: Mapping[str, Group] = MappingProxyType(dict(groups or {}))
        """Groups by ARN."""
        self.access_keys: Mapping[str, AccessKey] = MappingProxyType(dict(access_keys or {}))
        """Long-term access keys by id."""
        self._by_name = {r.name: r for r in self.roles.values()}
        self._users_by_name = {u.name.lower(): u for u in self.users.values()}
        self._groups_by_name = {g.name.lower(): g for g in self.groups.values()}
        sources: dict[tuple[str, str], EntitySource] = {}
        for kind, entities in (
            ("role", self.roles.values()),
            ("policy", self.policies.values()),
            ("user", self.users.values()),
            ("group", self.groups.values()),
        ):
            for entity in entities:
                sources[(kind, entity.name.lower())] = entity.source
        self._sources = sources
        self._policy_sets: LRU[PolicySetKey, PolicySet] = LRU(policy_set_cache)

    def role(self, arn: str) -> Role | None:
        """The role ``arn`` names, if there is one."""
        return self.roles.get(arn)

    def role_named(self, name: str) -> Role | None:
        """The role called ``name`` (names are unique in an account), if there is one."""
        return self._by_name.get(name)

    def policy(self, arn: str) -> ManagedPolicy | None:
        """The managed policy ``arn`` names, if there is one."""
        return self.policies.get(arn)

    def user(self, arn: str) -> User | None:
        """The user ``arn`` names, if there is one."""
        return self.users.get(arn)

    def user_named(self, name: str) -> User | None:
        """The user called ``name`` (case-insensitively, as IAM names are), if there is one."""
        return self._users_by_name.get(name.lower())

    def group_named(self, name: str) -> Group | None:
        """The group called ``name`` (case-insensitively), if there is one."""
        return self._groups_by_name.get(name.lower())

    def access_key(self, access_key_id: str) -> AccessKey | None:
        """The long-term access key ``access_key_id``, if there is one (active or not)."""
        return self.access_keys.get(access_key_id)

    def source_of(self, kind: EntityKind, name: str) -> EntitySource | None:
        """Where the ``kind`` entity called ``name`` (case-insensitively) is declared, or ``None``
        when the name is free: the IAM API refuses to create a name that is taken and to change an
        entity whose source is ``config``."""
        return self._sources.get((kind, name.lower()))

    def user_policy_set(self, user_arn: str) -> PolicySet:
        """The compiled policies that govern the user ``user_arn`` (cached). Fail closed: a user
        that no longer exists keeps no permissions."""
        return self._user_policy_set(user_arn, None)

    def federated_policy_set(
        self, user_arn: str, session_policy: str | None, policy_arns: tuple[str, ...]
    ) -> PolicySet:
        """The compiled policies that govern a federated user (``GetFederationToken``) of the
        user ``user_arn`` (cached): the user's policies and boundary intersected with the session
        policies passed, so that with none passed nothing is allowed, as on AWS."""
        return self._user_policy_set(user_arn, (session_policy, policy_arns))

    def _user_policy_set(
        self, user_arn: str, session: tuple[str | None, tuple[str, ...]] | None
    ) -> PolicySet:
        # A user ARN holds ":user/", never "federated-user:": a federated user's key cannot meet
        # its user's own.
        key: PolicySetKey = (
            (user_arn, None, ()) if session is None else (f"federated-user:{user_arn}", *session)
        )
        found = self._policy_sets.get(key)
        if found is not None:
            return found
        user = self.users.get(user_arn)
        found = PolicySet(
            identity=user.identity_policies if user is not None else (),
            boundary=[user.boundary] if user is not None and user.boundary is not None else None,
            session=None if session is None else self._session_policies(*session),
        )
        self._policy_sets.put(key, found)
        return found

    def _session_policies(self, session_policy: str | None, policy_arns: tuple[str, ...]) -> list[Policy]:
        """The session policies of a session: its inline one and its managed ones. Fail closed: a
        managed policy that no longer exists leaves none, so nothing is allowed."""
        session: list[Policy] = []
        if session_policy is not None:
            session.append(parse_policy(session_policy, kind="session", name="session-policy"))
        for arn in policy_arns:
            managed = self.policies.get(arn)
            if managed is None:
                return []
            session.append(managed.session)
        return session

    def __iter__(self) -> Iterator[Role]:
        """Every role."""
        return iter(self.roles.values())

    def policy_set(
        self, role_arn: str, session_policy: str | None = None, policy_arns: tuple[str, ...] = ()
    ) -> PolicySet:
        """The compiled policies that govern a session of ``role_arn`` (cached).

        ``session_policy`` is the session's inline policy (JSON text) and ``policy_arns`` its
        managed session policies. Fail closed: a role that no longer exists keeps no permissions,
        and a session policy ARN that no longer exists allows nothing rather than more.
        """
        key = (role_arn, session_policy, policy_arns)
        found = self._policy_sets.get(key)
        if found is not None:
            return found
        role = self.roles.get(role_arn)
        session: list[Policy] | None = None
        if session_policy is not None or policy_arns:
            session = self._session_policies(session_policy, policy_arns)
        found = PolicySet(
            identity=role.identity_policies if role is not None else (),
            boundary=[role.boundary] if role is not None and role.boundary is not None else None,
            session=session,
        )
        self._policy_sets.put(key, found)
        return found


def entity_id_for(prefix: str, arn: str) -> str:
    """A config entity's unique id (``AIDA...`` user, ``AGPA...`` group): the prefix and 17
    characters derived from its ARN, the same on every replica."""
    digest = hashlib.sha256(b"fedgate entity id\x00" + arn.encode()).digest()
    return prefix + base64.b32encode(digest[:11]).decode()[:17]


def build_snapshot(records: CatalogRecords, *, policy_set_cache: int = POLICY_SET_CACHE) -> CatalogSnapshot:
    """Validate and compile ``records`` into a snapshot.

    Raises :class:`~gateway.errors.MalformedPolicyDocument` for a config document the policy
    engine refuses and ``ValueError`` for a config entity naming a managed policy (or a user a
    group) the records do not hold; an API entity's such faults fail closed instead (see above).
    """
    account = records.account_id
    policies: dict[str, ManagedPolicy] = {}
    for p in records.policies:
        arn = policy_arn(account, p.path, p.name)
        try:
            policies[arn] = ManagedPolicy(
                arn=arn,
                name=p.name,
                path=p.path,
                description=p.description,
                document=p.document,
                identity=parse_policy(p.document, kind="identity", name=p.name),
                session=parse_policy(p.document, kind="session", name=arn),
                source=p.source,
            )
        except MalformedPolicyDocument as exc:
            _refused(p.source, f"policy {arn}", exc)
    roles = {}
    for r in records.roles:
        try:
            role = _role(account, r, policies)
        except MalformedPolicyDocument as exc:
            _refused(r.source, f"role {r.name}", exc)
            continue
        roles[role.arn] = role
    groups = {}
    for g in records.groups:
        group = _group(account, g, policies)
        groups[group.arn] = group
    groups_by_name = {g.name: g for g in groups.values()}
    users = {}
    for u in records.users:
        user = _user(account, u, policies, groups_by_name)
        users[user.arn] = user
    users_by_name = {u.name: u for u in users.values()}
    access_keys = {}
    for k in records.access_keys:
        owner = users_by_name.get(k.user_name)
        if owner is None:
            if k.source == "config":
                raise ValueError(f"access key {k.access_key_id}: no user {k.user_name}")
            continue
        access_keys[k.access_key_id] = AccessKey(
            k.access_key_id, owner.arn, k.status, k.sealed, k.secret, k.source
        )
    return CatalogSnapshot(
        account,
        roles,
        policies,
        users=users,
        groups=groups,
        access_keys=access_keys,
        revision=records.revision,
        policy_set_cache=policy_set_cache,
    )


def _refused(source: EntitySource, what: str, exc: MalformedPolicyDocument) -> None:
    """Re-raise for the configuration; log and leave the API entity out."""
    if source == "config":
        raise exc
    log.warning("%s in the IAM database does not compile, it is left out: %s", what, exc.message[:200])


def _compiled(
    source: EntitySource, document: Mapping[str, Any], kind: PolicyKind, name: str
) -> Policy | None:
    try:
        return parse_policy(document, kind=kind, name=name)
    except MalformedPolicyDocument as exc:
        _refused(source, name, exc)
        return None


def _attached(
    owner: str, source: EntitySource, arns: tuple[str, ...], policies: Mapping[str, ManagedPolicy]
) -> tuple[ManagedPolicy, ...]:
    found = []
    for arn in arns:
        policy = policies.get(arn)
        if policy is None:
            if source == "config":
                raise ValueError(f"{owner}: no managed policy {arn}")
            log.warning("%s: attached policy %s does not exist; it grants nothing", owner, arn)
            continue
        found.append(policy)
    return tuple(found)


def _boundary(
    owner: str, source: EntitySource, arn: str | None, policies: Mapping[str, ManagedPolicy]
) -> Policy | None:
    if arn is None:
        return None
    bound = policies.get(arn)
    if bound is None:
        if source == "config":
            raise ValueError(f"{owner}: no managed policy {arn}")
        log.warning("%s: permissions boundary %s does not exist; it allows nothing", owner, arn)
        return parse_policy(_NOTHING, kind="boundary", name=arn)
    compiled = _compiled(source, bound.document, "boundary", bound.arn)
    return compiled if compiled is not None else parse_policy(_NOTHING, kind="boundary", name=arn)


def _inline(
    owner: str, source: EntitySource, records: tuple[InlinePolicyRecord, ...]
) -> tuple[InlinePolicy, ...]:
    out = []
    for i in records:
        compiled = _compiled(source, i.document, "identity", f"{owner}/{i.name}")
        if compiled is not None:
            out.append(InlinePolicy(i.name, i.document, compiled))
    return tuple(out)


def _role(account: str, record: RoleRecord, policies: Mapping[str, ManagedPolicy]) -> Role:
    arn = role_arn(account, record.path, record.name)
    owner = f"role {record.name}"
    return Role(
        arn=arn,
        name=record.name,
        path=record.path,
        role_id=record.role_id or role_id_for(arn),
        account_id=account,
        description=record.description,
        max_session_duration=record.max_session_duration,
        tags=MappingProxyType(dict(record.tags)),
        trust_document=record.trust_policy,
        trust=parse_policy(record.trust_policy, kind="trust", name=f"{record.name}-trust"),
        inline=_inline(record.name, record.source, record.inline_policies),
        managed=_attached(owner, record.source, record.managed_policy_arns, policies),
        boundary=_boundary(owner, record.source, record.permissions_boundary_arn, policies),
        source=record.source,
    )


def _group(account: str, record: GroupRecord, policies: Mapping[str, ManagedPolicy]) -> Group:
    arn = group_arn(account, record.path, record.name)
    return Group(
        arn=arn,
        name=record.name,
        path=record.path,
        group_id=record.group_id or entity_id_for("AGPA", arn),
        inline=_inline(f"group/{record.name}", record.source, record.inline_policies),
        managed=_attached(f"group {record.name}", record.source, record.managed_policy_arns, policies),
        source=record.source,
    )


def _user(
    account: str, record: UserRecord, policies: Mapping[str, ManagedPolicy], groups: Mapping[str, Group]
) -> User:
    arn = user_arn(account, record.path, record.name)
    owner = f"user {record.name}"
    member_of = []
    for name in record.groups:
        group = groups.get(name)
        if group is None:
            if record.source == "config":
                raise ValueError(f"{owner}: no group {name}")
            continue
        member_of.append(group)
    return User(
        arn=arn,
        name=record.name,
        path=record.path,
        user_id=record.user_id or entity_id_for("AIDA", arn),
        account_id=account,
        tags=MappingProxyType(dict(record.tags)),
        groups=tuple(member_of),
        inline=_inline(f"user/{record.name}", record.source, record.inline_policies),
        managed=_attached(owner, record.source, record.managed_policy_arns, policies),
        boundary=_boundary(owner, record.source, record.permissions_boundary_arn, policies),
        source=record.source,
        boundary_arn=record.permissions_boundary_arn,
    )


@final
class Catalog:
    """The current :class:`CatalogSnapshot`, replaced atomically by :meth:`swap`.

    Readers take :attr:`snapshot` once per request and use only that object; a writer builds a
    whole new snapshot and swaps it in. No lock is needed: the swap is one attribute assignment.
    """

    __slots__ = ("_snapshot",)

    def __init__(self, snapshot: CatalogSnapshot) -> None:
        self._snapshot = snapshot

    @classmethod
    def from_records(cls, records: CatalogRecords) -> Catalog:
        """A catalog whose first snapshot is built from ``records``."""
        return cls(build_snapshot(records))

    @property
    def snapshot(self) -> CatalogSnapshot:
        """The current snapshot."""
        return self._snapshot

    def swap(self, snapshot: CatalogSnapshot, *, rewind: bool = False) -> None:
        """Make ``snapshot`` current. It must be of the same account and, unless ``rewind`` (the
        database was restored to an earlier state), not older."""
        current = self._snapshot
        if snapshot.account_id != current.account_id:
            raise ValueError("a catalog serves one account")
        if snapshot.revision < current.revision and not rewind:
            raise ValueError(f"snapshot revision {snapshot.revision} is older than {current.revision}")
        self._snapshot = snapshot
