"""Encoded authorization messages: why a request was denied, sealed so only fedgate can read it.

An ``AccessDenied`` from the reverse proxy or the IAM API ends, as AWS services write it, with
``Encoded authorization failure message: <blob>``. The blob is the explanation of the policy
engine's :class:`~gateway.policy.Decision` in the JSON shape AWS's ``DecodeAuthorizationMessage``
returns (``allowed``, ``explicitDeny``, ``matchedStatements``, ``failures``, ``context`` with the
principal, action, resource and the condition keys the decision saw), compressed and sealed with
the key ring under a purpose of its own (:meth:`~gateway.credentials.KeyRing.seal_message`), so it
never opens as a session token and only a holder of the ring reads it. A caller allowed
``sts:DecodeAuthorizationMessage`` gets it back through :meth:`AuthorizationMessages.decode`.

The message names statements (their policy, index, ``Sid``, actions, resources, conditions) and
condition values; it never holds a secret: context keys carry no token, secret or signature, and
every list and value is bounded, so the blob stays small whatever the request was.

Each matched statement carries, beyond AWS's fields, ``policy``, ``policyType`` and
``statementIndex`` (0-based): which policy and which statement decided.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, final

from gateway.credentials import KeyRing
from gateway.errors import AccessDenied, InvalidAuthorizationMessage, InvalidClientTokenId
from gateway.iam.permissions import ContextValue
from gateway.policy import Decision, MatchedStatement

__all__ = ["MARKER", "MAX_MESSAGE_CHARS", "AuthorizationMessages", "explanation"]

#: What precedes the blob at the end of an AccessDenied message, as AWS services write it.
MARKER = "Encoded authorization failure message: "
#: The longest blob fedgate writes (and the longest ``EncodedMessage`` it reads).
MAX_MESSAGE_CHARS = 6144
_VERSION = 1
_MAX_STATEMENTS = 8
_MAX_ITEMS = 16  # actions, resources, principals, values of one condition
_MAX_CONDITIONS = 64  # context keys
_MAX_VALUE_CHARS = 256
_MAX_PLAINTEXT = 64 * 1024


def _clip(value: str) -> str:
    return value if len(value) <= _MAX_VALUE_CHARS else value[: _MAX_VALUE_CHARS - 3] + "..."


def _items(values: Sequence[str]) -> dict[str, Any]:
    return {"items": [{"value": _clip(v)} for v in values[:_MAX_ITEMS]]}


def _statement(matched: MatchedStatement, principal_id: str) -> dict[str, Any]:
    stmt = matched.statement
    actions: Sequence[str] = ()
    resources: Sequence[str] = ()
    principals: Sequence[str] = (principal_id,)
    conditions: list[dict[str, Any]] = []
    if stmt is not None:
        actions = (
            stmt.actions if stmt.actions is not None else [f"NotAction:{a}" for a in stmt.not_actions or ()]
        )
        if stmt.resources is not None:
            resources = stmt.resources
        elif stmt.not_resources is not None:
            resources = [f"NotResource:{r}" for r in stmt.not_resources]
        spec = stmt.principal or stmt.not_principal
        if spec is not None:  # a trust or resource policy names its principals itself
            principals = ["*"] if spec.any_principal else [v for vs in spec.values.values() for v in vs]
        conditions = [
            {"key": _clip(c.key), "operator": c.operator, "values": _items(c.values)}
            for c in stmt.conditions[:_MAX_ITEMS]
        ]
    return {
        "statementId": matched.sid,
        "effect": matched.effect.upper(),
        "principals": _items(principals),
        "principalGroups": {"items": []},
        "actions": _items(actions),
        "resources": _items(resources),
        "conditions": {"items": conditions},
        "policy": _clip(matched.policy),
        "policyType": matched.kind,
        "statementIndex": matched.index,
    }


def _conditions(context: Mapping[str, ContextValue], limit: int) -> list[dict[str, Any]]:
    out = []
    for key in sorted(context, key=str.lower)[:limit]:
        value = context[key]
        values = [value] if isinstance(value, str) else list(value)
        out.append({"key": _clip(key), "values": _items(values)})
    return out


def explanation(
    decision: Decision, *, principal_id: str, principal_arn: str, context: Mapping[str, ContextValue]
) -> dict[str, Any]:
    """``decision`` in the shape of AWS's ``DecodedMessage`` (see the module docstring)."""
    return {
        "allowed": decision.allowed,
        "explicitDeny": decision.kind == "explicitDeny",
        "matchedStatements": {
            "items": [_statement(m, principal_id) for m in decision.matched[:_MAX_STATEMENTS]]
        },
        "failures": {"items": []},
        "context": {
            "principal": {"id": principal_id, "arn": principal_arn},
            "action": decision.action,
            "resource": _clip(decision.resource),
            "conditions": {"items": _conditions(context, _MAX_CONDITIONS)},
        },
    }


@final
class AuthorizationMessages:
    """Seals explanations into the blob of an AccessDenied and opens them again."""

    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring

    def encode(
        self,
        decision: Decision,
        *,
        principal_id: str,
        principal_arn: str,
        context: Mapping[str, ContextValue],
    ) -> str:
        """The sealed blob explaining ``decision`` (at most :data:`MAX_MESSAGE_CHARS`)."""
        message = explanation(
            decision, principal_id=principal_id, principal_arn=principal_arn, context=context
        )
        conditions = message["context"]["conditions"]["items"]
        while True:
            body = json.dumps({"v": _VERSION, "m": message}, separators=(",", ":"), ensure_ascii=False)
            blob = self._keyring.seal_message(zlib.compress(body.encode(), 9))
            if len(blob) <= MAX_MESSAGE_CHARS or not conditions:
                return blob
            # Too many context keys to tell: tell fewer rather than nothing.
            del conditions[len(conditions) // 2 :]

    def denied(
        self,
        text: str,
        decision: Decision,
        *,
        principal_id: str,
        principal_arn: str,
        context: Mapping[str, ContextValue],
    ) -> AccessDenied:
        """The AccessDenied whose message is ``text`` followed by the encoded explanation."""
        blob = self.encode(decision, principal_id=principal_id, principal_arn=principal_arn, context=context)
        return AccessDenied(f"{text} {MARKER}{blob}")

    def decode(self, blob: str) -> str:
        """The ``DecodedMessage`` JSON of ``blob``; InvalidAuthorizationMessage for anything that is
        not a message this key ring sealed."""
        invalid = InvalidAuthorizationMessage("The encoded authorization message is invalid.")
        if len(blob) > MAX_MESSAGE_CHARS:
            raise invalid
        try:
            packed = self._keyring.unseal_message(blob.strip())
            inflater = zlib.decompressobj()
            body = inflater.decompress(packed, _MAX_PLAINTEXT)
            if inflater.unconsumed_tail or not inflater.eof:
                raise ValueError("oversized or truncated")
            raw = json.loads(body)
        except (InvalidClientTokenId, ValueError, zlib.error):
            raise invalid from None
        if not isinstance(raw, dict) or raw.get("v") != _VERSION or not isinstance(raw.get("m"), dict):
            raise invalid
        return json.dumps(raw["m"], separators=(",", ":"), ensure_ascii=False)
