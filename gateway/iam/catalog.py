"""The IAM catalog: every role and managed policy, compiled once, behind one atomically swapped snapshot.

Every decision (STS's trust check, the permissions of a signed call, the simulator, the browser
role chooser) reads a :class:`CatalogSnapshot`: roles by ARN with their compiled trust policy,
inline and attached managed policies, tags and permissions boundary; managed policies by ARN in
their identity and session-policy forms; and a cache of the compiled
:class:`~gateway.policy.PolicySet` of each (role, session policy, policy ARNs). A snapshot never
changes. :class:`Catalog` holds the current one; :meth:`Catalog.swap` replaces it with one
attribute assignment, so a reader that takes ``catalog.snapshot`` once per request sees one
consistent state, and the policy-set cache (owned by the snapshot) is invalidated by the swap.

Snapshots are built by :func:`build_snapshot` from plain records (:mod:`gateway.iam.records`), so
any source can feed the catalog: the YAML configuration today, the IAM database next.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, final

from gateway.arns import policy_arn, role_arn
from gateway.credentials import role_id_for
from gateway.iam.records import CatalogRecords, EntitySource, RoleRecord
from gateway.policy import Policy, PolicySet, parse_policy
from gateway.policy.cache import LRU

__all__ = [
    "POLICY_SET_CACHE",
    "Catalog",
    "CatalogSnapshot",
    "InlinePolicy",
    "ManagedPolicy",
    "Role",
    "build_snapshot",
]

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
    """A permission policy embedded in a role."""

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
class CatalogSnapshot:
    """One immutable state of the catalog. Build with :func:`build_snapshot`."""

    __slots__ = ("_by_name", "_policy_sets", "_roles", "account_id", "policies", "revision", "roles")

    def __init__(
        self,
        account_id: str,
        roles: Mapping[str, Role],
        policies: Mapping[str, ManagedPolicy],
        *,
        revision: int = 0,
        policy_set_cache: int = POLICY_SET_CACHE,
    ) -> None:
        self.account_id = account_id
        self.revision = revision
        self.roles: Mapping[str, Role] = MappingProxyType(dict(roles))
        """Roles by ARN."""
        self.policies: Mapping[str, ManagedPolicy] = MappingProxyType(dict(policies))
        """Managed policies by ARN."""
        self._by_name = {r.name: r for r in self.roles.values()}
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
            session = []
            if session_policy is not None:
                session.append(parse_policy(session_policy, kind="session", name="session-policy"))
            for arn in policy_arns:
                managed = self.policies.get(arn)
                if managed is None:
                    session = []
                    break
                session.append(managed.session)
        found = PolicySet(
            identity=role.identity_policies if role is not None else (),
            boundary=[role.boundary] if role is not None and role.boundary is not None else None,
            session=session,
        )
        self._policy_sets.put(key, found)
        return found


def build_snapshot(records: CatalogRecords, *, policy_set_cache: int = POLICY_SET_CACHE) -> CatalogSnapshot:
    """Validate and compile ``records`` into a snapshot.

    Raises :class:`~gateway.errors.MalformedPolicyDocument` for a document the policy engine
    refuses and ``ValueError`` for a role naming a managed policy the records do not hold.
    """
    account = records.account_id
    policies: dict[str, ManagedPolicy] = {}
    for p in records.policies:
        arn = policy_arn(account, p.path, p.name)
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
    roles = {}
    for r in records.roles:
        role = _role(account, r, policies)
        roles[role.arn] = role
    return CatalogSnapshot(
        account, roles, policies, revision=records.revision, policy_set_cache=policy_set_cache
    )


def _role(account: str, record: RoleRecord, policies: Mapping[str, ManagedPolicy]) -> Role:
    arn = role_arn(account, record.path, record.name)
    managed = []
    for attached in record.managed_policy_arns:
        found = policies.get(attached)
        if found is None:
            raise ValueError(f"role {record.name}: no managed policy {attached}")
        managed.append(found)
    boundary = None
    if record.permissions_boundary_arn is not None:
        bound = policies.get(record.permissions_boundary_arn)
        if bound is None:
            raise ValueError(f"role {record.name}: no managed policy {record.permissions_boundary_arn}")
        boundary = parse_policy(bound.document, kind="boundary", name=bound.arn)
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
        inline=tuple(
            InlinePolicy(
                i.name, i.document, parse_policy(i.document, kind="identity", name=f"{record.name}/{i.name}")
            )
            for i in record.inline_policies
        ),
        managed=tuple(managed),
        boundary=boundary,
        source=record.source,
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

    def swap(self, snapshot: CatalogSnapshot) -> None:
        """Make ``snapshot`` current. It must be of the same account and not older."""
        current = self._snapshot
        if snapshot.account_id != current.account_id:
            raise ValueError("a catalog serves one account")
        if snapshot.revision < current.revision:
            raise ValueError(f"snapshot revision {snapshot.revision} is older than {current.revision}")
        self._snapshot = snapshot
