"""Parsing and validating STS Query API parameters, exactly as AWS limits them.

The Query protocol sends flat ``Name=value`` pairs; lists are ``Name.member.N`` (``PolicyArns``
members are structures: ``PolicyArns.member.1.arn``). Everything here is pure and synchronous.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from gateway.errors import InvalidParameterValue, MissingParameter, ValidationError

__all__ = [
    "MAX_POLICY_ARNS",
    "MAX_SESSION_POLICY_CHARS",
    "MAX_TAGS",
    "AssumeRoleParams",
    "AssumeRoleWithSAMLParams",
    "AssumeRoleWithWebIdentityParams",
    "GetFederationTokenParams",
    "GetSessionTokenParams",
    "QueryParams",
    "collect_params",
    "form_pairs",
    "parse_duration",
    "parse_policy_arns",
    "parse_session_name",
    "parse_session_policy",
    "parse_tags",
    "parse_transitive_tag_keys",
    "role_arn_parameter",
]

API_VERSION = "2011-06-15"
MAX_SESSION_POLICY_CHARS = 2048
MAX_POLICY_ARNS = 10
#: The longest session an IAM user may ask for (GetSessionToken, GetFederationToken): 36 hours.
MAX_USER_SESSION = 129600
#: What GetSessionToken and GetFederationToken give when DurationSeconds is not passed: 12 hours.
DEFAULT_USER_SESSION = 43200
_FEDERATED_NAME_RE = re.compile(r"^[\w+=,.@-]{2,32}\Z", re.ASCII)
_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}\Z", re.ASCII)
_ROLE_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:role/[\x21-\x7e]{1,512}\Z")
_POLICY_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}|aws):policy/[\x21-\x7e]{1,1000}\Z")
_MEMBER_RE = re.compile(r"^PolicyArns\.member\.(\d{1,3})\.arn\Z")
# AWS allows printable characters plus tab, LF and CR in policy documents.
_POLICY_CHARS_RE = re.compile(r"^[\t\n\r\u0020-\u00ff]*\Z")
MAX_TAGS = 50
_TAG_MEMBER_RE = re.compile(r"^Tags\.member\.(\d{1,3})\.(Key|Value)\Z")
_TRANSITIVE_MEMBER_RE = re.compile(r"^TransitiveTagKeys\.member\.(\d{1,3})\Z")
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}\Z", re.ASCII)
_SOURCE_IDENTITY_RE = re.compile(r"^[\w+=,.@-]{2,64}\Z", re.ASCII)
_SERIAL_NUMBER_RE = re.compile(r"^[\w+=/:,.@-]{9,256}\Z", re.ASCII)
_TOKEN_CODE_RE = re.compile(r"^\d{6}\Z", re.ASCII)
# IAM simulations list policies, actions, resources and context entries as members; 512 fields
# is far beyond any real call while the 256 KiB body cap bounds the work either way.
_MAX_PARAMS = 512


@dataclass(frozen=True, slots=True)
class QueryParams:
    """The flat parameters of one Query API call, duplicates refused."""

    values: Mapping[str, str]

    def get(self, name: str) -> str | None:
        """The value of ``name`` or ``None``."""
        return self.values.get(name)

    def require(self, name: str) -> str:
        """The value of ``name``; ``MissingParameter`` when absent."""
        value = self.values.get(name)
        if value is None:
            raise MissingParameter(f"The request must contain the parameter {name}")
        return value

    @property
    def action(self) -> str:
        """The ``Action`` parameter (``MissingParameter`` when absent)."""
        return self.require("Action")


def collect_params(pairs: Iterable[tuple[str, str]]) -> QueryParams:
    """Merge query-string and form pairs into :class:`QueryParams`.

    A parameter given twice is refused: an ambiguous request must not be decided one way and
    executed another.
    """
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in values:
            raise InvalidParameterValue(f"The parameter {name[:64]} is given more than once")
        values[name] = value
        if len(values) > _MAX_PARAMS:
            raise ValidationError("Too many parameters")
    return QueryParams(values)


def form_pairs(text: str, *, strict: bool, max_fields: int) -> list[tuple[str, str]]:
    """The ``name=value`` pairs of a query string or form body, as ``urllib.parse.parse_qsl(text,
    keep_blank_values=True, strict_parsing=strict, max_num_fields=max_fields)`` reads them.

    ``+`` is a space and percent-escapes are UTF-8, invalid sequences read as U+FFFD. Raises
    ``ValueError`` for more than ``max_fields`` fields and, when ``strict``, for a field without
    ``=`` (an empty one included). Written out because parse_qsl's general path (argument
    coercion, ``unquote``'s generator over escape runs) cost a tenth of what the STS domain code
    does for a call; a property test holds the two to the same answers.
    """
    if not text:
        return []
    if text.count("&") >= max_fields:
        raise ValueError("Max number of fields exceeded")
    pairs: list[tuple[str, str]] = []
    for field in text.split("&"):
        name, equals, value = field.partition("=")
        if not equals:
            if strict:
                raise ValueError(f"bad query field: {field[:64]!r}")
            if not field:
                continue
        pairs.append((_form_unquote(name), _form_unquote(value)))
    return pairs


def _form_unquote(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    # Literal characters re-encode to whole UTF-8 sequences, so decoding the whole text once
    # replaces exactly the invalid escape runs that unquote() replaces run by run.
    return unquote_to_bytes(text).decode("utf-8", "replace")


def _length(name: str, value: str, low: int, high: int) -> str:
    if not low <= len(value) <= high:
        raise ValidationError(
            f"1 validation error detected: Value at '{_camel(name)}' failed to satisfy constraint: "
            f"Member must have length between {low} and {high}"
        )
    return value


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def parse_duration(raw: str | None, default: int = 3600, maximum: int = 43200) -> int:
    """``DurationSeconds``: an integer 900..``maximum`` (a role's maximum is checked later)."""
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
        raise ValidationError("DurationSeconds must be an integer")
    value = int(raw)
    if not 900 <= value <= maximum:
        raise ValidationError(
            "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: "
            f"Member must have value between 900 and {maximum}"
        )
    return value


def role_arn_parameter(raw: str) -> str:
    """The ``RoleArn`` parameter: 20-2048 characters shaped like an IAM role's ARN.

    A syntax check of the parameter (``ValidationError``), not a lookup: a well-formed ARN that
    names no role is refused later, as AccessDenied, like a role the caller may not assume.
    """
    _length("RoleArn", raw, 20, 2048)
    if not _ROLE_ARN_RE.match(raw):
        raise ValidationError(f"{raw[:256]} is not a valid role ARN")
    return raw


def parse_session_name(raw: str) -> str:
    """``RoleSessionName``: 2-64 characters of ``[\\w+=,.@-]``."""
    _length("RoleSessionName", raw, 2, 64)
    if not _SESSION_NAME_RE.match(raw):
        raise ValidationError(
            "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )
    return raw


def parse_session_policy(raw: str | None) -> str | None:
    """``Policy``: 1-2048 characters of printable text (parsed by the policy engine later)."""
    if raw is None:
        return None
    if not raw:
        raise ValidationError("Policy must not be empty")
    if len(raw) > MAX_SESSION_POLICY_CHARS:
        raise ValidationError(
            "1 validation error detected: Value at 'policy' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_SESSION_POLICY_CHARS}"
        )
    if not _POLICY_CHARS_RE.match(raw):
        raise ValidationError("Policy contains characters outside the allowed range")
    return raw


def parse_policy_arns(params: QueryParams) -> tuple[str, ...]:
    """``PolicyArns.member.N.arn``: at most 10 managed-policy ARNs, numbered from 1 without gaps."""
    found: dict[int, str] = {}
    for name, value in params.values.items():
        if not name.startswith("PolicyArns"):
            continue
        match = _MEMBER_RE.match(name)
        if match is None:
            raise ValidationError(f"Unknown parameter {name[:64]}")
        found[int(match.group(1))] = value
    if len(found) > MAX_POLICY_ARNS:
        raise ValidationError(
            "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_POLICY_ARNS}"
        )
    if sorted(found) != list(range(1, len(found) + 1)):
        raise ValidationError("PolicyArns members must be numbered from 1 without gaps")
    arns = tuple(found[i] for i in sorted(found))
    for arn in arns:
        _length("PolicyArns.member.arn", arn, 20, 2048)
        if not _POLICY_ARN_RE.match(arn):
            raise ValidationError(f"{arn[:256]} is not a valid policy ARN")
    return arns


@dataclass(frozen=True, slots=True)
class AssumeRoleWithWebIdentityParams:
    """Validated parameters of ``AssumeRoleWithWebIdentity``."""

    role_arn: str
    role_session_name: str
    web_identity_token: str
    duration_seconds: int
    duration_given: bool
    policy: str | None
    policy_arns: tuple[str, ...]
    provider_id: str | None

    @classmethod
    def parse(cls, params: QueryParams) -> AssumeRoleWithWebIdentityParams:
        """Validate every parameter; the first problem raises with AWS's code."""
        role_arn = role_arn_parameter(params.require("RoleArn"))
        session_name = parse_session_name(params.require("RoleSessionName"))
        token = _length("WebIdentityToken", params.require("WebIdentityToken"), 4, 20000)
        raw_duration = params.get("DurationSeconds")
        provider_id = params.get("ProviderId")
        if provider_id is not None:
            _length("ProviderId", provider_id, 4, 2048)
        return cls(
            role_arn=role_arn,
            role_session_name=session_name,
            web_identity_token=token,
            duration_seconds=parse_duration(raw_duration),
            duration_given=raw_duration is not None,
            policy=parse_session_policy(params.get("Policy")),
            policy_arns=parse_policy_arns(params),
            provider_id=provider_id,
        )


_SAML_PROVIDER_ARN_RE = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:saml-provider/[\w.-]{1,128}\Z", re.ASCII)


@dataclass(frozen=True, slots=True)
class AssumeRoleWithSAMLParams:
    """Validated parameters of ``AssumeRoleWithSAML``."""

    role_arn: str
    principal_arn: str
    saml_assertion: str
    duration_seconds: int
    duration_given: bool
    policy: str | None
    policy_arns: tuple[str, ...]

    @classmethod
    def parse(cls, params: QueryParams) -> AssumeRoleWithSAMLParams:
        """Validate every parameter; the first problem raises with AWS's code."""
        role_arn = role_arn_parameter(params.require("RoleArn"))
        principal_arn = _length("PrincipalArn", params.require("PrincipalArn"), 20, 2048)
        if not _SAML_PROVIDER_ARN_RE.match(principal_arn):
            raise ValidationError(f"{principal_arn[:256]} is not a valid SAML provider ARN")
        assertion = _length("SAMLAssertion", params.require("SAMLAssertion"), 4, 100000)
        raw_duration = params.get("DurationSeconds")
        return cls(
            role_arn=role_arn,
            principal_arn=principal_arn,
            saml_assertion=assertion,
            duration_seconds=parse_duration(raw_duration),
            duration_given=raw_duration is not None,
            policy=parse_session_policy(params.get("Policy")),
            policy_arns=parse_policy_arns(params),
        )


def _tag_text(value: str) -> bool:
    # AWS's pattern [\p{L}\p{Z}\p{N}_.:/=+\-@]*: letters, separators, numbers and a few marks.
    return all(c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in value)


def _members(params: QueryParams, prefix: str, pattern: re.Pattern[str]) -> dict[int, dict[str, str]]:
    found: dict[int, dict[str, str]] = {}
    for name, value in params.values.items():
        if not name.startswith(prefix):
            continue
        match = pattern.match(name)
        if match is None:
            raise ValidationError(f"Unknown parameter {name[:64]}")
        part = match.group(2) if pattern.groups > 1 else ""
        found.setdefault(int(match.group(1)), {})[part] = value
    if sorted(found) != list(range(1, len(found) + 1)):
        raise ValidationError(f"{prefix} members must be numbered from 1 without gaps")
    return found


def _too_many(name: str, limit: int) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value at '{name}' failed to satisfy constraint: "
        f"Member must have length less than or equal to {limit}"
    )


def _tag_key(raw: str, name: str) -> str:
    _length(name, raw, 1, 128)
    if not _tag_text(raw):
        raise ValidationError(
            f"1 validation error detected: Value at '{_camel(name)}' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+"
        )
    return raw


def parse_tags(params: QueryParams) -> dict[str, str]:
    """``Tags.member.N.Key`` / ``.Value``: at most 50 session tags, keys unique ignoring case."""
    members = _members(params, "Tags", _TAG_MEMBER_RE)
    if len(members) > MAX_TAGS:
        raise _too_many("tags", MAX_TAGS)
    tags: dict[str, str] = {}
    seen: set[str] = set()
    for i in sorted(members):
        member = members[i]
        if "Key" not in member or "Value" not in member:
            raise ValidationError(f"Tags.member.{i} needs both a Key and a Value")
        key = _tag_key(member["Key"], "Tags.member.key")
        value = _length("Tags.member.value", member["Value"], 0, 256)
        if not _tag_text(value):
            raise ValidationError(
                "1 validation error detected: Value at 'tags.member.value' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*"
            )
        if key.lower() in seen:
            raise InvalidParameterValue(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        seen.add(key.lower())
        tags[key] = value
    return tags


def parse_transitive_tag_keys(params: QueryParams, tags: Mapping[str, str]) -> tuple[str, ...]:
    """``TransitiveTagKeys.member.N``: at most 50 keys, each one of the session tags passed."""
    members = _members(params, "TransitiveTagKeys", _TRANSITIVE_MEMBER_RE)
    if len(members) > MAX_TAGS:
        raise _too_many("transitiveTagKeys", MAX_TAGS)
    by_lower = {k.lower(): k for k in tags}
    keys: list[str] = []
    for i in sorted(members):
        key = _tag_key(members[i][""], "TransitiveTagKeys.member")
        found = by_lower.get(key.lower())
        if found is None:
            raise InvalidParameterValue(f"The transitive tag key {key} is not among the session tags passed")
        if found not in keys:
            keys.append(found)
    return tuple(keys)


def _pattern(name: str, raw: str | None, rx: re.Pattern[str], low: int, high: int, shape: str) -> str | None:
    if raw is None:
        return None
    _length(name, raw, low, high)
    if not rx.match(raw):
        raise ValidationError(
            f"1 validation error detected: Value at '{_camel(name)}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {shape}"
        )
    return raw


def _mfa_parameters(params: QueryParams) -> tuple[str | None, str | None]:
    """``SerialNumber`` (9-256 of ``[\\w+=/:,.@-]``) and ``TokenCode`` (6 digits), each optional."""
    serial_number = _pattern(
        "SerialNumber", params.get("SerialNumber"), _SERIAL_NUMBER_RE, 9, 256, "[\\w+=/:,.@-]*"
    )
    token_code = _pattern("TokenCode", params.get("TokenCode"), _TOKEN_CODE_RE, 6, 6, "[\\d]*")
    return serial_number, token_code


@dataclass(frozen=True, slots=True)
class AssumeRoleParams:
    """Validated parameters of ``AssumeRole``."""

    role_arn: str
    role_session_name: str
    duration_seconds: int
    duration_given: bool
    policy: str | None
    policy_arns: tuple[str, ...]
    tags: Mapping[str, str]
    transitive_tag_keys: tuple[str, ...]
    source_identity: str | None
    external_id: str | None
    serial_number: str | None
    token_code: str | None

    @classmethod
    def parse(cls, params: QueryParams) -> AssumeRoleParams:
        """Validate every parameter; the first problem raises with AWS's code."""
        role_arn = role_arn_parameter(params.require("RoleArn"))
        session_name = parse_session_name(params.require("RoleSessionName"))
        raw_duration = params.get("DurationSeconds")
        tags = parse_tags(params)
        serial_number, token_code = _mfa_parameters(params)
        return cls(
            role_arn=role_arn,
            role_session_name=session_name,
            duration_seconds=parse_duration(raw_duration),
            duration_given=raw_duration is not None,
            policy=parse_session_policy(params.get("Policy")),
            policy_arns=parse_policy_arns(params),
            tags=tags,
            transitive_tag_keys=parse_transitive_tag_keys(params, tags),
            source_identity=_pattern(
                "SourceIdentity", params.get("SourceIdentity"), _SOURCE_IDENTITY_RE, 2, 64, "[\\w+=,.@-]*"
            ),
            external_id=_pattern(
                "ExternalId", params.get("ExternalId"), _EXTERNAL_ID_RE, 2, 1224, "[\\w+=,.@:\\/-]*"
            ),
            serial_number=serial_number,
            token_code=token_code,
        )


@dataclass(frozen=True, slots=True)
class GetSessionTokenParams:
    """Validated parameters of ``GetSessionToken``."""

    duration_seconds: int
    serial_number: str | None
    token_code: str | None

    @classmethod
    def parse(cls, params: QueryParams) -> GetSessionTokenParams:
        """Validate every parameter; the first problem raises with AWS's code."""
        duration = parse_duration(params.get("DurationSeconds"), DEFAULT_USER_SESSION, MAX_USER_SESSION)
        serial_number, token_code = _mfa_parameters(params)
        return cls(
            duration_seconds=duration,
            serial_number=serial_number,
            token_code=token_code,
        )


@dataclass(frozen=True, slots=True)
class GetFederationTokenParams:
    """Validated parameters of ``GetFederationToken``."""

    name: str
    duration_seconds: int
    policy: str | None
    policy_arns: tuple[str, ...]
    tags: Mapping[str, str]

    @classmethod
    def parse(cls, params: QueryParams) -> GetFederationTokenParams:
        """Validate every parameter; the first problem raises with AWS's code."""
        name = params.require("Name")
        _pattern("Name", name, _FEDERATED_NAME_RE, 2, 32, "[\\w+=,.@-]*")
        return cls(
            name=name,
            duration_seconds=parse_duration(
                params.get("DurationSeconds"), DEFAULT_USER_SESSION, MAX_USER_SESSION
            ),
            policy=parse_session_policy(params.get("Policy")),
            policy_arns=parse_policy_arns(params),
            tags=parse_tags(params),
        )
