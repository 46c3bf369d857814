"""Parsing and validation: every malformed construct is refused with a path-naming message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import MalformedPolicyDocument, PackedPolicyTooLarge
from gateway.policy import parse_policy, policy_size
from gateway.policy.parse import MAX_SOURCE_CHARS

GOOD_ID = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
FED = {"Federated": "arn:aws:iam::123456789012:oidc-provider/issuer.example.com"}
GOOD_TRUST = {"Effect": "Allow", "Principal": FED, "Action": "sts:AssumeRoleWithWebIdentity"}


def doc(*stmts: Any, version: Any = "2012-10-17") -> dict[str, Any]:
    return {"Version": version, "Statement": list(stmts)}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


BAD: list[tuple[str, Any, str, str]] = [
    # (id, document, kind, expected message prefix)
    (
        "version",
        doc(GOOD_ID, version="2020-01-01"),
        "identity",
        'Version: must be "2012-10-17" or "2008-10-17"',
    ),
    (
        "version-yaml-date",
        {"Version": __import__("datetime").date(2012, 10, 17), "Statement": [GOOD_ID]},
        "identity",
        "Version: must be",
    ),
    (
        "top-unknown",
        {"Version": "2012-10-17", "Statement": [GOOD_ID], "Extra": 1},
        "identity",
        "Extra: unknown element",
    ),
    ("no-statement", {"Version": "2012-10-17"}, "identity", "Statement: is required"),
    ("empty-statement", {"Statement": []}, "identity", "Statement: must be an object or a non-empty list"),
    ("statement-str", {"Statement": "x"}, "identity", "Statement: must be"),
    ("statement-item", {"Statement": ["x"]}, "identity", "Statement[0]: must be an object"),
    ("id-type", {"Id": 3, "Statement": [GOOD_ID]}, "identity", "Id: must be a string"),
    (
        "effect",
        doc(with_(GOOD_ID, Effect="allow")),
        "identity",
        'Statement[0].Effect: must be "Allow" or "Deny"',
    ),
    ("effect-missing", doc(GOOD_ID, with_(GOOD_ID, Effect=None)), "identity", "Statement[1].Effect: must be"),
    ("stmt-unknown", doc(with_(GOOD_ID, Foo="x")), "identity", "Statement[0].Foo: unknown element"),
    ("sid-chars", doc(with_(GOOD_ID, Sid="no spaces")), "identity", "Statement[0].Sid: must contain only"),
    (
        "sid-dup",
        doc(with_(GOOD_ID, Sid="A"), with_(GOOD_ID, Sid="A")),
        "identity",
        'Statement[1].Sid: duplicate Sid "A"',
    ),
    (
        "action-missing",
        doc(with_(GOOD_ID, Action=None)),
        "identity",
        "Statement[0]: needs Action or NotAction",
    ),
    (
        "action-both",
        doc(with_(GOOD_ID, NotAction="s3:*")),
        "identity",
        "Statement[0]: has both Action and NotAction",
    ),
    (
        "action-form",
        doc(with_(GOOD_ID, Action=["s3:GetObject", "GetObject"])),
        "identity",
        'Statement[0].Action[1]: "GetObject" is not "service:Action"',
    ),
    (
        "action-empty-list",
        doc(with_(GOOD_ID, Action=[])),
        "identity",
        "Statement[0].Action: must be a string or",
    ),
    ("action-type", doc(with_(GOOD_ID, Action=[1])), "identity", "Statement[0].Action[0]: must be a string"),
    (
        "resource-missing",
        doc(with_(GOOD_ID, Resource=None)),
        "identity",
        "Statement[0]: needs Resource or NotResource",
    ),
    ("resource-both", doc(with_(GOOD_ID, NotResource="*")), "identity", "Statement[0]: has both Resource"),
    (
        "resource-form",
        doc(with_(GOOD_ID, Resource="bucket/*")),
        "identity",
        'Statement[0].Resource: "bucket/*" is not an ARN',
    ),
    (
        "resource-short-arn",
        doc(with_(GOOD_ID, Resource=["arn:aws:s3:b"])),
        "identity",
        "Statement[0].Resource[0]:",
    ),
    (
        "resource-var-open",
        doc(with_(GOOD_ID, Resource="arn:aws:s3:::b/${aws:username")),
        "identity",
        "Statement[0].Resource: unterminated policy variable",
    ),
    (
        "resource-var-in-account",
        doc(with_(GOOD_ID, Resource="arn:aws:iam::${aws:PrincipalAccount}:role/x")),
        "identity",
        "Statement[0].Resource: a policy variable may stand only in the resource part",
    ),
    (
        "principal-in-identity",
        doc(with_(GOOD_ID, Principal="*")),
        "identity",
        "Statement[0].Principal: not allowed in a identity policy",
    ),
    (
        "principal-in-session",
        doc(with_(GOOD_ID, NotPrincipal={"AWS": "*"})),
        "session",
        "Statement[0].NotPrincipal: not allowed",
    ),
    (
        "trust-resource",
        doc(with_(GOOD_TRUST, Resource="*")),
        "trust",
        "Statement[0].Resource: not allowed in a trust policy",
    ),
    (
        "trust-no-principal",
        doc(with_(GOOD_TRUST, Principal=None)),
        "trust",
        "Statement[0]: a trust policy statement needs Principal or NotPrincipal",
    ),
    (
        "principal-type",
        doc(with_(GOOD_TRUST, Principal={"Users": "x"})),
        "trust",
        "Statement[0].Principal.Users: unknown principal type",
    ),
    (
        "principal-str",
        doc(with_(GOOD_TRUST, Principal="arn:aws:iam::123456789012:root")),
        "trust",
        'Statement[0].Principal: must be "*" or an object',
    ),
    (
        "principal-partial-wildcard",
        doc(with_(GOOD_TRUST, Principal={"AWS": "arn:aws:iam::123456789012:role/*"})),
        "trust",
        "Statement[0].Principal.AWS: ",
    ),
    (
        "principal-bad-aws",
        doc(with_(GOOD_TRUST, Principal={"AWS": ["123456789012", "alice"]})),
        "trust",
        'Statement[0].Principal.AWS[1]: "alice" is not a valid AWS principal',
    ),
    (
        "principal-federated-star",
        doc(with_(GOOD_TRUST, Principal={"Federated": "*"})),
        "trust",
        "Statement[0].Principal.Federated: ",
    ),
    (
        "not-principal-allow",
        doc(with_(GOOD_TRUST, Principal=None, NotPrincipal=FED)),
        "trust",
        'Statement[0].NotPrincipal: is only supported with "Effect": "Deny"',
    ),
    (
        "both-principals",
        doc(with_(GOOD_TRUST, NotPrincipal=FED)),
        "trust",
        "Statement[0]: has both Principal",
    ),
    ("resource-needs-principal", doc(GOOD_ID), "resource", "Statement[0]: a resource policy statement needs"),
    (
        "cond-type",
        doc(with_(GOOD_ID, Condition=["x"])),
        "identity",
        "Statement[0].Condition: must be an object",
    ),
    (
        "cond-op",
        doc(GOOD_ID, with_(GOOD_ID, Condition={"StringLikeX": {"a:b": "c"}})),
        "identity",
        "Statement[1].Condition.StringLikeX: unknown condition operator",
    ),
    (
        "cond-op-case",
        doc(with_(GOOD_ID, Condition={"stringequals": {"a:b": "c"}})),
        "identity",
        "Statement[0].Condition.stringequals: unknown condition operator",
    ),
    (
        "cond-qualifier",
        doc(with_(GOOD_ID, Condition={"ForSomeValues:StringEquals": {"a:b": "c"}})),
        "identity",
        "Statement[0].Condition.ForSomeValues:StringEquals: unknown condition operator",
    ),
    (
        "cond-block",
        doc(with_(GOOD_ID, Condition={"StringEquals": "x"})),
        "identity",
        "Statement[0].Condition.StringEquals: must be a non-empty object",
    ),
    (
        "cond-empty-values",
        doc(with_(GOOD_ID, Condition={"StringEquals": {"a:b": []}})),
        "identity",
        "Statement[0].Condition.StringEquals.a:b: must not be an empty list",
    ),
    (
        "cond-null-value",
        doc(with_(GOOD_ID, Condition={"StringEquals": {"a:b": None}})),
        "identity",
        "Statement[0].Condition.StringEquals.a:b: values must be",
    ),
    (
        "cond-nested",
        doc(with_(GOOD_ID, Condition={"StringEquals": {"a:b": [["x"]]}})),
        "identity",
        "Statement[0].Condition.StringEquals.a:b: values must be",
    ),
    (
        "cond-number",
        doc(with_(GOOD_ID, Condition={"NumericLessThan": {"a:n": "ten"}})),
        "identity",
        "Statement[0].Condition.NumericLessThan.a:n: not a number",
    ),
    (
        "cond-date",
        doc(with_(GOOD_ID, Condition={"DateGreaterThan": {"aws:CurrentTime": "yesterday"}})),
        "identity",
        "Statement[0].Condition.DateGreaterThan.aws:CurrentTime: not an ISO 8601",
    ),
    (
        "cond-bool",
        doc(with_(GOOD_ID, Condition={"Bool": {"aws:SecureTransport": "yes"}})),
        "identity",
        "Statement[0].Condition.Bool.aws:SecureTransport: must be",
    ),
    (
        "cond-ip",
        doc(with_(GOOD_ID, Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}})),
        "identity",
        "Statement[0].Condition.IpAddress.aws:SourceIp:",
    ),
    (
        "cond-binary",
        doc(with_(GOOD_ID, Condition={"BinaryEquals": {"k:b": "%%%"}})),
        "identity",
        "Statement[0].Condition.BinaryEquals.k:b: values must be base64",
    ),
    (
        "cond-null-ifexists",
        doc(with_(GOOD_ID, Condition={"NullIfExists": {"a:b": "true"}})),
        "identity",
        "Statement[0].Condition.NullIfExists: Null takes no IfExists",
    ),
    (
        "cond-null-set",
        doc(with_(GOOD_ID, Condition={"ForAnyValue:Null": {"a:b": "true"}})),
        "identity",
        "Statement[0].Condition.ForAnyValue:Null:",
    ),
    (
        "cond-var-malformed",
        doc(with_(GOOD_ID, Condition={"StringEquals": {"a:b": "${a, b}"}})),
        "identity",
        "Statement[0].Condition.StringEquals.a:b: malformed policy variable",
    ),
    (
        "cond-key",
        doc(with_(GOOD_ID, Condition={"StringEquals": {"": "x"}})),
        "identity",
        "Statement[0].Condition.StringEquals.: condition key must be",
    ),
    ("not-object", ["x"], "identity", "Policy: must be a JSON object"),
]


@pytest.mark.parametrize(("document", "kind", "prefix"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_refused_with_path(document: Any, kind: Any, prefix: str) -> None:
    with pytest.raises(MalformedPolicyDocument) as info:
        parse_policy(document, kind=kind)
    assert info.value.message.startswith(prefix), info.value.message
    assert info.value.code == "MalformedPolicyDocument"


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("{", "Policy: not valid JSON"),
        ('{"Statement": [], "Statement": []}', "Statement: duplicate key"),
        ('{"Statement": {"Effect": "Allow", "Effect": "Deny"}}', "Effect: duplicate key"),
        ("[" * 5000 + "]" * 5000, "Policy: document nests deeper than 8 levels"),
        ('{"Statement": ' + "[" * 20 + "]" * 20 + "}", "Policy: document nests deeper"),
        # Past the interpreter's recursion limit: refused by the pre-scan, never a RecursionError.
        ('{"Statement": ' + "[" * 60_000 + "]" * 60_000 + "}", "Policy: document nests deeper"),
        ('{"Statement": ' + '{"a":' * 20_000, "Policy: document's brackets do not balance"),
        ('{"Statement": [' + ",".join(["1"] * 25_000) + "]}", "Policy: document has more than"),
        ("x" * (MAX_SOURCE_CHARS + 1), "Policy: document is longer"),
        ("null", "Policy: must be a JSON object"),
    ],
    ids=[
        "syntax",
        "dup-top",
        "dup-effect",
        "deep-array",
        "deep",
        "very-deep",
        "unclosed",
        "huge-list",
        "too-long",
        "null",
    ],
)
def test_malformed_json_text(text: str, prefix: str) -> None:
    with pytest.raises(MalformedPolicyDocument) as info:
        parse_policy(text)
    assert info.value.message.startswith(prefix), info.value.message


def test_deep_mapping_refused_before_walk() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(10_000):  # recursion would blow the stack; the iterative guard does not
        node["x"] = {}
        node = node["x"]
    with pytest.raises(MalformedPolicyDocument, match=r"^Policy: document nests deeper"):
        parse_policy({"Statement": [deep]})


def test_single_statement_object_path_and_defaults() -> None:
    with pytest.raises(MalformedPolicyDocument, match=r"^Statement\.Effect: "):
        parse_policy({"Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}})
    p = parse_policy({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})
    assert p.version == "2008-10-17"  # missing Version means 2008 semantics
    assert len(p.statements) == 1 and p.statements[0].actions == ("*",)


def test_valid_documents_of_every_kind() -> None:
    for kind in ("identity", "session", "boundary"):
        p = parse_policy(
            json.dumps(doc(GOOD_ID, with_(GOOD_ID, Effect="Deny", Sid="S1"))), kind=kind, name="n"
        )
        assert (p.kind, p.name, len(p.statements)) == (kind, "n", 2)
        assert p.statements[1].sid == "S1" and p.statements[1].effect == "Deny"
    trust = parse_policy(
        doc(GOOD_TRUST, {"Effect": "Deny", "NotPrincipal": FED, "Action": "sts:*"}), kind="trust"
    )
    assert trust.statements[1].not_principal is not None
    res = parse_policy(
        doc(with_(GOOD_ID, Principal={"AWS": ["123456789012", "arn:aws:iam::123456789012:root"]})),
        kind="resource",
    )
    assert res.statements[0].principal is not None


def test_yaml_style_scalars_accepted_in_conditions() -> None:
    p = parse_policy(
        doc(
            with_(
                GOOD_ID,
                Condition={
                    "NumericLessThan": {"aws:MultiFactorAuthAge": 3600},
                    "Bool": {"aws:MultiFactorAuthPresent": True},
                },
            )
        )
    )
    assert {c.values for c in p.statements[0].conditions} == {("3600",), ("true",)}


def test_parse_is_cached_by_document_and_digest_is_canonical() -> None:
    a = parse_policy(doc(GOOD_ID), name="same")
    b = parse_policy(json.loads(json.dumps(doc(GOOD_ID))), name="same")
    assert a is b
    c = parse_policy(json.dumps(doc(GOOD_ID), indent=2), name="same")
    assert c.digest == a.digest and c.size == a.size
    assert parse_policy(doc(GOOD_ID), name="other").name == "other"
    assert parse_policy(doc(GOOD_ID), kind="session", name="same").kind == "session"


def test_size_limit() -> None:
    text = json.dumps(doc(GOOD_ID))
    assert policy_size(text) == len(text)
    assert policy_size(doc(GOOD_ID)) == len(json.dumps(doc(GOOD_ID), separators=(",", ":")))
    with pytest.raises(PackedPolicyTooLarge):
        parse_policy(text, kind="session", max_chars=len(text) - 1)
    with pytest.raises(PackedPolicyTooLarge):
        parse_policy(doc(GOOD_ID), kind="session", max_chars=10)
    assert parse_policy(text, kind="session", max_chars=len(text)).kind == "session"


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown policy kind"):
        parse_policy(doc(GOOD_ID), kind="scp")  # type: ignore[arg-type]


def test_minify_is_the_one_compact_form() -> None:
    from gateway.policy import minify

    text = '{\n  "Version": "2012-10-17",\n  "Statement": [{"Sid": "café", "Effect": "Allow"}]\n}'
    compact = minify(text)
    assert compact == '{"Statement":[{"Effect":"Allow","Sid":"café"}],"Version":"2012-10-17"}'
    assert minify(compact) == compact and minify(json.loads(text)) == compact
