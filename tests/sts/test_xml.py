"""The STS documents fedgate writes parse in botocore exactly as AWS's do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
from botocore.parsers import QueryParser
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sts.xml import error_document, response_document

_MODEL = botocore.session.get_session().get_service_model("sts")


def _parse(action: str, body: str, status: int = 200) -> dict[str, object]:
    response = {"status_code": status, "headers": {}, "body": body.encode()}
    return QueryParser().parse(response, _MODEL.operation_model(action).output_shape)  # type: ignore[no-any-return]


def test_assume_role_with_web_identity_document_parses() -> None:
    expiration = datetime(2026, 11, 28, 15, 0, 0, tzinfo=UTC)
    body = response_document(
        "AssumeRoleWithWebIdentity",
        {
            "Credentials": {
                "AccessKeyId": "ASIAABCDEFGHIJKLMNOP",
                "SecretAccessKey": "s" * 40,
                "SessionToken": "token<&>",
                "Expiration": expiration,
            },
            "SubjectFromWebIdentityToken": "repo:org/app:ref:refs/heads/main",
            "AssumedRoleUser": {
                "Arn": "arn:aws:sts::123456789012:assumed-role/r/s",
                "AssumedRoleId": "AROAX:s",
            },
            "PackedPolicySize": 7,
            "Provider": "https://issuer.example",
            "Audience": "sts.amazonaws.com",
        },
        "req-1",
    )
    parsed = _parse("AssumeRoleWithWebIdentity", body)
    assert parsed["Credentials"] == {
        "AccessKeyId": "ASIAABCDEFGHIJKLMNOP",
        "SecretAccessKey": "s" * 40,
        "SessionToken": "token<&>",
        "Expiration": expiration,
    }
    assert parsed["SubjectFromWebIdentityToken"] == "repo:org/app:ref:refs/heads/main"
    assert parsed["AssumedRoleUser"] == {
        "Arn": "arn:aws:sts::123456789012:assumed-role/r/s",
        "AssumedRoleId": "AROAX:s",
    }
    assert parsed["PackedPolicySize"] == 7
    assert parsed["Provider"] == "https://issuer.example"
    assert parsed["Audience"] == "sts.amazonaws.com"
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"  # type: ignore[index]


def test_none_fields_are_omitted() -> None:
    body = response_document(
        "GetCallerIdentity", {"UserId": "u", "Account": "123456789012", "Arn": None}, "r"
    )
    assert "<Arn>" not in body
    assert _parse("GetCallerIdentity", body)["Account"] == "123456789012"


def test_error_document_parses_into_code_and_message() -> None:
    body = error_document("Sender", "InvalidIdentityToken", "bad <token> & \x00 stuff", "req-9")
    response = {"status_code": 400, "headers": {}, "body": body.encode()}
    parsed = QueryParser().parse(response, None)
    assert parsed["Error"]["Code"] == "InvalidIdentityToken"
    assert parsed["Error"]["Message"] == "bad <token> &  stuff"  # NUL dropped: XML cannot carry it
    assert parsed["Error"]["Type"] == "Sender"
    assert parsed["ResponseMetadata"]["RequestId"] == "req-9"


def _reference_text(value: str) -> str:
    """What every text node must be: markup escaped, characters XML 1.0 cannot carry dropped."""
    dropped = "".join(c for c in value if c in "\t\n\r" or (ord(c) >= 0x20 and c not in "\ufffe\uffff"))
    return dropped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("&<>\x00\x0b\x1f\ufffe\uffff\t\r\n")))
def test_text_is_escaped_whatever_it_holds(value: str) -> None:
    # The renderer skips the escaping work for text that needs none; the result must not show it.
    body = response_document("GetCallerIdentity", {"Arn": value, "Nested": {"UserId": value}}, value)
    expected = _reference_text(value)
    assert f"<Arn>{expected}</Arn><Nested><UserId>{expected}</UserId></Nested>" in body
    assert f"<RequestId>{expected}</RequestId>" in body


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["A", "B", "C", "D"]),
        st.none()
        | st.integers()
        | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("&<>\x00\x1f\ufffe"), max_size=8)
        | st.dictionaries(st.sampled_from(["X", "Y"]), st.text(max_size=4) | st.none(), max_size=2),
        max_size=4,
    )
)
def test_every_text_node_of_a_document_is_escaped_alone(fields: dict[str, Any]) -> None:
    # One value that needs escaping must not change the others, nor be missed among them.
    expected = "".join(
        f"<{name}>{_reference_nested(value)}</{name}>" for name, value in fields.items() if value is not None
    )
    assert f"<GetCallerIdentityResult>{expected}</GetCallerIdentityResult>" in response_document(
        "GetCallerIdentity", fields, "id"
    )


def _reference_nested(value: object) -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_reference_nested(v)}</{k}>" for k, v in value.items() if v is not None)
    return _reference_text(str(value))
