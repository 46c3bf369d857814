"""What a session token carries: :class:`SessionClaims`, and its compact serialization.

The claims hold everything later steps need (SigV4 verification needs the secret key; authorization
needs the role, session policy, tags and identity condition keys), so a replica holding the key ring
needs no lookup. Fields derivable from the role ARN (account, role name, role id) are not serialized
but recomputed on decoding, which keeps tokens short.

A session's principal is one of three kinds (:data:`PrincipalKind`): a role session (AssumeRole*),
an IAM user's own session (``GetSessionToken``: the user, with the user's permissions) or a
federated user (``GetFederationToken``: ``federated-user/NAME``, the user's permissions cut down by
session policies). The two user kinds carry the user (ARN and unique id) and the long-term access
key that asked for them, and no role.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, final

from gateway.arns import parse_role_arn, parse_user_arn

__all__ = [
    "CLAIMS_VERSION",
    "FEDERATED_USER",
    "ROLE_SESSION",
    "USER_SESSION",
    "PrincipalKind",
    "SessionClaims",
    "decode_claims",
    "encode_claims",
    "role_facts",
    "role_id_for",
]

#: The version new tokens carry. Older tokens are still read: version 1 (before ``mfa_at``) and
#: version 2 (role sessions only, before the principal kinds); neither can carry the fields added
#: since.
CLAIMS_VERSION = 3
_READABLE_VERSIONS = frozenset({1, 2, 3})
#: Wire fields each version introduced: a token of an earlier version cannot have them.
_SINCE = {2: frozenset({"mf"}), 3: frozenset({"pk", "u", "ui", "sk"})}

#: What a session's principal is: a role session, an IAM user's own session, a federated user.
PrincipalKind = Literal["role", "user", "federated-user"]
ROLE_SESSION: PrincipalKind = "role"
USER_SESSION: PrincipalKind = "user"
FEDERATED_USER: PrincipalKind = "federated-user"
_KINDS = frozenset({ROLE_SESSION, USER_SESSION, FEDERATED_USER})

ClaimValue = str | tuple[str, ...]


def role_id_for(role_arn: str) -> str:
    """The role's unique id: ``AROA`` and 17 characters, the same on every replica for one ARN."""
    digest = hashlib.sha256(b"fedgate role id\x00" + role_arn.encode()).digest()
    return "AROA" + base64.b32encode(digest[:11]).decode()[:17]


@functools.lru_cache(maxsize=1024)
def _user_account(user_arn: str) -> str:
    return parse_user_arn(user_arn)[1]


@functools.lru_cache(maxsize=1024)
def role_facts(role_arn: str) -> tuple[str, str, str]:
    """``(account_id, role_name, role_id)`` of a role ARN; ``ValueError`` when it is malformed.

    A pure function of the ARN, memoized because every issue and validation needs it and the set
    of roles is small: SHA-256 and base32 in pure Python were a third of the decoding time.
    """
    account_id, role_name = parse_role_arn(role_arn)
    return account_id, role_name, role_id_for(role_arn)


@final
@dataclass(frozen=True, slots=True)
class SessionClaims:
    """The verified contents of a session token.

    Attributes:
        version: claims schema version.
        account_id: the account of the session's principal.
        role_arn, role_name, role_id: the assumed role (``role_id`` is ``AROA...``); empty for
            the user kinds, which assume no role.
        session_name: the role session name chosen by the caller; a federated user's name; the
            user's name for a user's own session.
        access_key_id, secret_access_key: the session's SigV4 key pair (the secret is hidden from
            ``repr``).
        issued_at, expires_at: epoch seconds (``issued_at`` to the millisecond, for revocation).
        session_policy: the session policy as minified JSON, or ``None``.
        policy_arns: ARNs of managed session policies.
        tags: session tags (``aws:PrincipalTag``).
        transitive_tag_keys: keys of tags that pass to chained sessions.
        provider_arn: the identity provider that vouched for the caller.
        subject, audience: the caller's ``sub`` (or NameID) and the audience accepted.
        source_identity: the source identity, if set.
        mfa_authenticated: whether MFA was used (asserted by the provider, or a code of the
            caller's MFA device checked by fedgate).
        mfa_at: when that MFA took place (epoch seconds: when fedgate checked the code), for
            ``aws:MultiFactorAuthAge``. ``None``: the session's issue time (version 1 tokens,
            providers that do not say when).
        identity_claims: condition keys such as ``"host/path:sub"`` for policy variables.
        chain: for a session assumed with another session's credentials (role chaining), the
            sessions it descends from as ``(role ARN, issued_at)``, oldest first, one per role
            (its earliest): revoking a role's sessions revokes their descendants too. A chain
            that starts at a user's own session (``GetSessionToken``) starts with
            ``(user ARN, issued_at)`` of that session.
        principal: the kind of principal (:data:`PrincipalKind`).
        user_arn, user_id: the IAM user of a user or federated-user session (``AIDA...``).
        source_key_id: the user's long-term access key (``AKIA...``) that asked for the session,
            or for the user's session a chain starts at: deactivating or deleting it revokes them.
    """

    account_id: str
    role_arn: str
    role_name: str
    role_id: str
    session_name: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    issued_at: float
    expires_at: float
    session_policy: str | None = None
    policy_arns: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    provider_arn: str = ""
    subject: str = ""
    audience: str = ""
    source_identity: str | None = None
    mfa_authenticated: bool = False
    mfa_at: float | None = None
    identity_claims: Mapping[str, ClaimValue] = field(default_factory=dict)
    chain: tuple[tuple[str, float], ...] = ()
    principal: PrincipalKind = ROLE_SESSION
    user_arn: str = ""
    user_id: str = ""
    source_key_id: str = ""
    version: int = CLAIMS_VERSION

    def __post_init__(self) -> None:
        # Frozen all the way down: callers may hand in dicts and lists.
        object.__setattr__(self, "policy_arns", tuple(self.policy_arns))
        object.__setattr__(self, "transitive_tag_keys", tuple(self.transitive_tag_keys))
        object.__setattr__(self, "chain", tuple((str(arn), float(at)) for arn, at in self.chain))
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))
        object.__setattr__(
            self,
            "identity_claims",
            MappingProxyType(
                {k: v if isinstance(v, str) else tuple(v) for k, v in self.identity_claims.items()}
            ),
        )

    @property
    def assumed_role_arn(self) -> str:
        """``arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION``: a role session's principal."""
        partition = self.role_arn.split(":", 2)[1]
        return f"arn:{partition}:sts::{self.account_id}:assumed-role/{self.role_name}/{self.session_name}"

    @property
    def principal_arn(self) -> str:
        """The session's principal as ``GetCallerIdentity`` names it: the assumed-role ARN, the
        user's ARN (``GetSessionToken``) or ``arn:aws:sts::ACCOUNT:federated-user/NAME``."""
        if self.principal == USER_SESSION:
            return self.user_arn
        if self.principal == FEDERATED_USER:
            partition = self.user_arn.split(":", 2)[1]
            return f"arn:{partition}:sts::{self.account_id}:federated-user/{self.session_name}"
        return self.assumed_role_arn

    @property
    def principal_id(self) -> str:
        """The principal's unique id (``aws:userid``): ``AROA...:SESSION``, the user's ``AIDA...``
        or ``ACCOUNT:NAME`` for a federated user."""
        if self.principal == USER_SESSION:
            return self.user_id
        if self.principal == FEDERATED_USER:
            return f"{self.account_id}:{self.session_name}"
        return self.assumed_role_id

    @property
    def chained(self) -> bool:
        """Whether this session was assumed with another session's credentials (role chaining)."""
        return bool(self.chain)

    @property
    def assumed_role_id(self) -> str:
        """``ROLEID:SESSION``, as in ``AssumedRoleUser.AssumedRoleId`` and ``aws:userid``."""
        return f"{self.role_id}:{self.session_name}"


# Short names on the wire (see encode_claims), and the defaults of those that may be left out.
_WIRE = {
    "version": "v",
    "role_arn": "r",
    "session_name": "s",
    "access_key_id": "k",
    "secret_access_key": "x",
    "issued_at": "ia",
    "expires_at": "ea",
    "session_policy": "p",
    "policy_arns": "pa",
    "tags": "t",
    "transitive_tag_keys": "tt",
    "provider_arn": "pv",
    "subject": "sub",
    "audience": "aud",
    "source_identity": "si",
    "mfa_authenticated": "m",
    "mfa_at": "mf",
    "identity_claims": "c",
    "chain": "ch",
    "principal": "pk",
    "user_arn": "u",
    "user_id": "ui",
    "source_key_id": "sk",
}
_DEFAULTS: dict[str, Any] = {
    "session_policy": None,
    "policy_arns": (),
    "tags": {},
    "transitive_tag_keys": (),
    "provider_arn": "",
    "subject": "",
    "audience": "",
    "source_identity": None,
    "mfa_authenticated": False,
    "mfa_at": None,
    "identity_claims": {},
    "chain": (),
    "principal": ROLE_SESSION,
    "user_arn": "",
    "user_id": "",
    "source_key_id": "",
}


# json.dumps with any non-default option builds a new encoder per call; this one is built once.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode_claims(claims: SessionClaims) -> bytes:
    """Serialize ``claims`` as compact JSON, leaving out defaults and what the role ARN implies
    (a user kind has no role ARN)."""
    out: dict[str, Any] = {"v": claims.version}
    if claims.principal == ROLE_SESSION:
        out["r"] = claims.role_arn
    out |= {
        "s": claims.session_name,
        "k": claims.access_key_id,
        "x": claims.secret_access_key,
        "ia": _number(claims.issued_at),
        "ea": _number(claims.expires_at),
    }
    # Every default is falsy (None, "", False, empty): those are left out.
    if claims.session_policy:
        out["p"] = claims.session_policy
    if claims.policy_arns:
        out["pa"] = list(claims.policy_arns)
    if claims.tags:
        out["t"] = dict(claims.tags)
    if claims.transitive_tag_keys:
        out["tt"] = list(claims.transitive_tag_keys)
    if claims.provider_arn:
        out["pv"] = claims.provider_arn
    if claims.subject:
        out["sub"] = claims.subject
    if claims.audience:
        out["aud"] = claims.audience
    if claims.source_identity:
        out["si"] = claims.source_identity
    if claims.mfa_authenticated:
        out["m"] = True
    if claims.mfa_at:
        out["mf"] = _number(claims.mfa_at)
    if claims.identity_claims:
        # The JSON encoder writes tuples as lists.
        out["c"] = dict(claims.identity_claims)
    if claims.chain:
        out["ch"] = [[arn, _number(at)] for arn, at in claims.chain]
    if claims.principal != ROLE_SESSION:
        out["pk"] = claims.principal
    if claims.user_arn:
        out["u"] = claims.user_arn
    if claims.user_id:
        out["ui"] = claims.user_id
    if claims.source_key_id:
        out["sk"] = claims.source_key_id
    return _ENCODER.encode(out).encode()


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def decode_claims(data: bytes) -> SessionClaims:
    """Parse what :func:`encode_claims` wrote. Raises ``ValueError`` on anything unexpected."""
    raw = json.loads(data)
    if not isinstance(raw, dict):
        raise ValueError("claims must be an object")
    unknown = set(raw) - set(_WIRE.values())
    if unknown:
        raise ValueError("unknown claim fields")
    kind = raw.get("pk", ROLE_SESSION)
    values: dict[str, Any] = {}
    for name, short in _WIRE.items():
        if short in raw:
            values[name] = raw[short]
        elif name in _DEFAULTS:
            values[name] = _DEFAULTS[name]
        elif name == "role_arn" and kind != ROLE_SESSION:
            values[name] = ""  # the user kinds assume no role
        else:
            raise ValueError(f"missing claim {name}")
    version = values["version"]
    if version not in _READABLE_VERSIONS or isinstance(version, bool):
        raise ValueError("unsupported claims version")
    if any(since > version and fields & set(raw) for since, fields in _SINCE.items()):
        raise ValueError("claim fields newer than the claims version")
    _expect(kind in _KINDS and raw.get("pk") != ROLE_SESSION, "principal")
    for name in ("role_arn", "session_name", "access_key_id", "secret_access_key", "provider_arn"):
        _expect(isinstance(values[name], str), name)
    for name in ("user_arn", "user_id", "source_key_id"):
        _expect(isinstance(values[name], str), name)
    for name in ("subject", "audience"):
        _expect(isinstance(values[name], str), name)
    for name in ("issued_at", "expires_at"):
        _expect(isinstance(values[name], int | float) and not isinstance(values[name], bool), name)
    for name in ("session_policy", "source_identity"):
        _expect(values[name] is None or isinstance(values[name], str), name)
    _expect(isinstance(values["mfa_authenticated"], bool), "mfa_authenticated")
    mfa_at = values["mfa_at"]
    _expect(mfa_at is None or (isinstance(mfa_at, int | float) and not isinstance(mfa_at, bool)), "mfa_at")
    for name in ("policy_arns", "transitive_tag_keys"):
        _expect(_is_str_list(values[name]), name)
    tags = values["tags"]
    _expect(isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values()), "tags")
    identity_claims = values["identity_claims"]
    _expect(
        isinstance(identity_claims, dict)
        and all(isinstance(v, str) or _is_str_list(v) for v in identity_claims.values()),
        "identity_claims",
    )
    chain = values["chain"]
    _expect(
        isinstance(chain, list | tuple)
        and all(
            isinstance(link, list)
            and len(link) == 2
            and isinstance(link[0], str)
            and isinstance(link[1], int | float)
            and not isinstance(link[1], bool)
            for link in chain
        ),
        "chain",
    )
    if kind == ROLE_SESSION:
        _expect("r" in raw and not values["user_id"], "role_arn")
        account_id, role_name, role_id = role_facts(values["role_arn"])
    else:
        # A user kind names its user and the key that asked for it, and no role.
        _expect("r" not in raw and bool(values["user_id"]) and bool(values["source_key_id"]), "user")
        try:
            account_id = _user_account(values["user_arn"])
        except ValueError:
            raise ValueError("bad claim user_arn") from None
        role_name = role_id = ""
    return SessionClaims(account_id=account_id, role_name=role_name, role_id=role_id, **values)


def _is_str_list(value: object) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


def _expect(ok: bool, name: str) -> None:
    if not ok:
        raise ValueError(f"bad claim {name}")
