"""The DeleteObjects body: hardened parsing, integrity, the forwarded body and the merged result."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway.errors import BadDigest, InvalidDigest, InvalidRequest, MalformedXML
from gateway.proxy.deletes import (
    DeleteTarget,
    check_integrity,
    denied_only,
    forwarded_body,
    merge_result,
    parse_delete,
)
from gateway.sigv4.checksums import checksum_value, expected_checksum

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
BODY = (
    f'<Delete xmlns="{NS}"><Quiet>true</Quiet><Object><Key>a &amp; b</Key></Object>'
    "<Object><Key>v</Key><VersionId>3</VersionId></Object></Delete>"
).encode()


def test_parse() -> None:
    parsed = parse_delete(BODY)
    assert parsed.quiet
    assert parsed.objects == (DeleteTarget("a & b"), DeleteTarget("v", "3"))
    assert parsed.objects[1].check("bk").action == "s3:DeleteObjectVersion"
    assert parse_delete(b"<Delete><Object><Key>k</Key></Object></Delete>").objects == (DeleteTarget("k"),)


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE d [<!ENTITY x "k">]><Delete><Object><Key>&x;</Key></Object></Delete>',
        b'<!DOCTYPE d SYSTEM "http://127.0.0.1:1/x.dtd"><Delete><Object><Key>k</Key></Object></Delete>',
        b"<Delete><Object><Key>k</Key></Object>",
        b"<Delete></Delete>",
        b"<Delete><Object><Key></Key></Object></Delete>",
        b"<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>",
        b"<Delete><Quiet>maybe</Quiet><Object><Key>k</Key></Object></Delete>",
        b"<Delete><Other/><Object><Key>k</Key></Object></Delete>",
        b"<Remove><Object><Key>k</Key></Object></Remove>",
        b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>",
    ],
    ids=[
        "entity",
        "external-dtd",
        "truncated",
        "empty",
        "empty-key",
        "two-keys",
        "quiet",
        "unknown",
        "root",
        "too-many",
    ],
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedXML):
        parse_delete(body)


def test_integrity() -> None:
    md5 = base64.b64encode(hashlib.md5(BODY).digest()).decode()
    check_integrity(BODY, md5, None)
    check_integrity(
        BODY,
        None,
        expected_checksum([("x-amz-checksum-crc32", checksum_value("x-amz-checksum-crc32", BODY))]),
    )
    with pytest.raises(InvalidRequest, match="Content-MD5"):
        check_integrity(BODY, None, None)
    with pytest.raises(BadDigest):
        check_integrity(BODY + b" ", md5, None)
    with pytest.raises(InvalidDigest):
        check_integrity(BODY, "bm90IG1kNQ==", None)
    wrong = expected_checksum([("x-amz-checksum-crc32", checksum_value("x-amz-checksum-crc32", b"x"))])
    with pytest.raises(BadDigest):
        check_integrity(BODY, None, wrong)


def test_forwarded_body_round_trips() -> None:
    body, md5 = forwarded_body([DeleteTarget("<&>"), DeleteTarget("v", "3")], quiet=True)
    assert base64.b64decode(md5) == hashlib.md5(body).digest()
    assert parse_delete(body) == parse_delete(body) and parse_delete(body).quiet
    assert parse_delete(body).objects == (DeleteTarget("<&>"), DeleteTarget("v", "3"))


def test_merge() -> None:
    upstream = (
        f'<?xml version="1.0"?><DeleteResult xmlns="{NS}"><Deleted><Key>a</Key></Deleted></DeleteResult>'
    )
    merged = merge_result(upstream.encode(), [DeleteTarget("k&"), DeleteTarget("v", "3")])
    assert merged is not None
    text = merged.decode()
    assert "<Deleted><Key>a</Key></Deleted>" in text
    assert "<Error><Key>k&amp;</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>" in text
    assert "<Error><Key>v</Key><VersionId>3</VersionId><Code>AccessDenied</Code>" in text
    assert merge_result(b"<Error><Code>InternalError</Code></Error>", []) is None
    assert merge_result(b"not xml", []) is None
    assert b"<Error><Key>x</Key><Code>AccessDenied</Code>" in denied_only([DeleteTarget("x")])
