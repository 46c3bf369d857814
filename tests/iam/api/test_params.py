"""IAM's parameter types, as IAM checks them: raw Query values in, the value or AWS's error out."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidInput, ValidationError
from gateway.iam.api import params as p
from gateway.sts.params import QueryParams


def _one(validator: p.Validator, raw: str, wire: str = "X") -> object:
    return validator(QueryParams({wire: raw}), wire)


@pytest.mark.parametrize("raw", ["/", "/a/", "/a/b-c/", "/" + "x" * 510 + "/"])
def test_paths(raw: str) -> None:
    assert _one(p.path, raw) == raw


@pytest.mark.parametrize("raw", ["", "a", "/a", "a/", "/a b/", "/é/", "/" + "x" * 511 + "/"])
def test_bad_paths(raw: str) -> None:
    with pytest.raises(ValidationError, match="at 'path'"):
        _one(p.path, raw, "Path")


@pytest.mark.parametrize(
    ("raw", "ok"), [("1", True), ("1000", True), ("0", False), ("1001", False), ("x", False)]
)
def test_max_items(raw: str, ok: bool) -> None:
    if ok:
        assert _one(p.max_items, raw) == int(raw)
    else:
        with pytest.raises(ValidationError, match="at 'maxItems'"):
            _one(p.max_items, raw, "MaxItems")


def test_names_by_limit() -> None:
    assert _one(p.name(128), "g" * 128) == "g" * 128
    with pytest.raises(ValidationError, match="length less than or equal to 64"):
        _one(p.name(64), "u" * 65, "UserName")
    with pytest.raises(ValidationError, match="regular expression pattern"):
        _one(p.name(64), "a/b", "UserName")


def test_tags() -> None:
    values = {
        "Tags.member.1.Key": "team",
        "Tags.member.1.Value": "",
        "Tags.member.2.Key": "é",
        "Tags.member.2.Value": "1",
    }
    assert p.tags(QueryParams(values), "Tags") == {"team": "", "é": "1"}
    with pytest.raises(ValidationError, match="numbered from 1 without gaps"):
        p.tags(QueryParams({"Tags.member.2.Key": "k", "Tags.member.2.Value": "v"}), "Tags")
    with pytest.raises(ValidationError, match="needs a Key and a Value"):
        p.tags(QueryParams({"Tags.member.1.Key": "k"}), "Tags")
    duplicate = {
        "Tags.member.1.Key": "K",
        "Tags.member.1.Value": "",
        "Tags.member.2.Key": "k",
        "Tags.member.2.Value": "",
    }
    with pytest.raises(InvalidInput, match="Duplicate tag keys"):
        p.tags(QueryParams(duplicate), "Tags")
    many = {f"Tags.member.{n}.{f}": f"k{n}" for n in range(1, 52) for f in ("Key", "Value")}
    with pytest.raises(ValidationError, match="less than or equal to 50"):
        p.tags(QueryParams(many), "Tags")


def test_policy_document_characters() -> None:
    assert _one(p.policy_document, '{"a":\t"b"}\n') == '{"a":\t"b"}\n'
    with pytest.raises(ValidationError, match="at 'policyDocument'"):
        _one(p.policy_document, "{\u0100}", "PolicyDocument")


def test_status_and_access_key_id() -> None:
    assert _one(p.status, "Inactive") == "Inactive"
    with pytest.raises(ValidationError, match="enum value set"):
        _one(p.status, "active", "Status")
    with pytest.raises(ValidationError, match="at 'accessKeyId'"):
        _one(p.access_key_id, "AKIA-short", "AccessKeyId")


@pytest.mark.parametrize(
    ("validator", "raw", "wire"),
    [
        (p.name(64), "admin\n", "UserName"),
        (p.path, "/\n", "Path"),
        (p.path, "/team/\n", "Path"),
        (p.path_prefix, "/team\n", "PathPrefix"),
    ],
)
def test_a_trailing_newline_is_not_an_end_of_string(validator: p.Validator, raw: str, wire: str) -> None:
    """Python's ``$`` also matches before a final newline: ``admin\\n`` would be a second user that
    lists as ``admin``. Every pattern is anchored at the true end of the string."""
    with pytest.raises(ValidationError, match="regular expression pattern"):
        _one(validator, raw, wire)


def test_no_pattern_in_the_code_ends_with_a_dollar() -> None:
    """The rule above, for every regular expression the gateway and its plugins compile."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("gateway", "plugins")
        for path in sorted((root / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"re\.(?:compile|match|fullmatch|search)\(r\"[^\"]*\$\"", line)
    ]
    assert offenders == [], "anchor with \\Z (or use fullmatch without $): " + ", ".join(offenders)
