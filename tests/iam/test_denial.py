"""Encoded authorization messages: AWS's DecodedMessage shape, bounded, readable only by the ring."""

from __future__ import annotations

import json
import secrets

import pytest

from gateway.credentials import KeyRing
from gateway.errors import InvalidAuthorizationMessage, InvalidClientTokenId
from gateway.iam.denial import MARKER, MAX_MESSAGE_CHARS, AuthorizationMessages
from gateway.policy import PolicySet, Request, parse_policy

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {
            "Sid": "NoSecrets",
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": "arn:aws:s3:::b/secret/*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/team": ["data", "ops"]}},
        },
    ],
}


def ring() -> KeyRing:
    return KeyRing({"k1": secrets.token_bytes(32)}, "k1")


def _denied(context: dict[str, str]) -> tuple[AuthorizationMessages, str]:
    policies = PolicySet(identity=[parse_policy(POLICY, kind="identity", name="role/inline")])
    decision = policies.decide(Request("s3:GetObject", "arn:aws:s3:::b/secret/x", context=context))
    assert decision.kind == "explicitDeny"
    messages = AuthorizationMessages(ring())
    error = messages.denied(
        "User: X is not authorized", decision, principal_id="AROA:s", principal_arn="arn:x", context=context
    )
    assert error.code == "AccessDenied" and error.message.startswith("User: X is not authorized " + MARKER)
    return messages, error.message.rpartition(MARKER)[2]


def test_a_decoded_message_has_awss_shape_and_names_the_statement() -> None:
    messages, blob = _denied({"aws:PrincipalTag/team": "data", "aws:SourceIp": "192.0.2.1"})
    decoded = json.loads(messages.decode(blob))
    assert decoded["allowed"] is False and decoded["explicitDeny"] is True
    assert decoded["failures"] == {"items": []}
    [item] = decoded["matchedStatements"]["items"]
    assert item["statementId"] == "NoSecrets" and item["effect"] == "DENY"
    assert (item["policy"], item["policyType"], item["statementIndex"]) == ("role/inline", "identity", 1)
    assert item["principals"] == {"items": [{"value": "AROA:s"}]}
    assert item["conditions"]["items"] == [
        {
            "key": "aws:PrincipalTag/team",
            "operator": "StringEquals",
            "values": {"items": [{"value": "data"}, {"value": "ops"}]},
        }
    ]
    assert decoded["context"] == {
        "principal": {"id": "AROA:s", "arn": "arn:x"},
        "action": "s3:GetObject",
        "resource": "arn:aws:s3:::b/secret/x",
        "conditions": {
            "items": [
                {"key": "aws:PrincipalTag/team", "values": {"items": [{"value": "data"}]}},
                {"key": "aws:SourceIp", "values": {"items": [{"value": "192.0.2.1"}]}},
            ]
        },
    }


def test_a_huge_context_is_told_in_part_within_the_bound() -> None:
    context = {f"ctx:key{i}": secrets.token_hex(100) for i in range(500)}
    messages, blob = _denied({"aws:PrincipalTag/team": "data", **context})
    assert len(blob) <= MAX_MESSAGE_CHARS
    decoded = json.loads(messages.decode(blob))
    assert 0 < len(decoded["context"]["conditions"]["items"]) < 64


def test_only_the_ring_that_sealed_it_opens_it_and_never_as_a_token() -> None:
    _, blob = _denied({"aws:PrincipalTag/team": "data"})
    with pytest.raises(InvalidAuthorizationMessage):
        AuthorizationMessages(ring()).decode(blob)
    keyring = ring()
    token = keyring.seal(b"claims")
    own = AuthorizationMessages(keyring)
    with pytest.raises(InvalidAuthorizationMessage):
        own.decode(token)  # a session token is not a message
    sealed = keyring.seal_message(b"x")
    with pytest.raises(InvalidClientTokenId):
        keyring.unseal(sealed)  # nor a message a token
    with pytest.raises(InvalidClientTokenId):
        keyring.unseal_value(sealed, b"")
    with pytest.raises(InvalidAuthorizationMessage):
        own.decode(sealed)  # sealed, but not a message fedgate wrote
