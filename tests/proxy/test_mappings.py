"""The pure parts: path decoding, the S3 / API Gateway / route-table mappings, header filtering."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import AccessDenied, InvalidParameterValue
from gateway.proxy import paths
from gateway.proxy.apigw import ApiGatewayMapping
from gateway.proxy.config import RouteSettings
from gateway.proxy.headers import request_headers, response_headers
from gateway.proxy.mapping import ProxyRequest, RouteTable
from gateway.proxy.paths import decode_path, encode_segments
from gateway.proxy.query import encode_query, parse_query
from gateway.proxy.s3 import S3Mapping


def _s3(
    method: str, path: str, query: str = "", host: str = "s3.local", **headers: str
) -> tuple[str, list[tuple[str, str, dict[str, object]]], str]:
    mapping = S3Mapping(virtual_host_suffix="s3.local")
    mapped = mapping.map(
        ProxyRequest(method, host, decode_path(path, encoded_slash=True), parse_query(query), headers)
    )
    return mapped.operation, [(c.action, c.resource, dict(c.context)) for c in mapped.checks], mapped.path


@pytest.mark.parametrize(
    ("method", "path", "query", "operation", "action", "resource"),
    [
        ("GET", "/bk1/k", "", "GetObject", "s3:GetObject", "arn:aws:s3:::bk1/k"),
        ("HEAD", "/bk1/a/b", "", "HeadObject", "s3:GetObject", "arn:aws:s3:::bk1/a/b"),
        ("GET", "/bk1/k", "versionId=3", "GetObject", "s3:GetObjectVersion", "arn:aws:s3:::bk1/k"),
        ("PUT", "/bk1/k", "", "PutObject", "s3:PutObject", "arn:aws:s3:::bk1/k"),
        ("DELETE", "/bk1/k", "", "DeleteObject", "s3:DeleteObject", "arn:aws:s3:::bk1/k"),
        ("POST", "/bk1/k", "uploads", "CreateMultipartUpload", "s3:PutObject", "arn:aws:s3:::bk1/k"),
        ("PUT", "/bk1/k", "partNumber=1&uploadId=u", "UploadPart", "s3:PutObject", "arn:aws:s3:::bk1/k"),
        ("POST", "/bk1/k", "uploadId=u", "CompleteMultipartUpload", "s3:PutObject", "arn:aws:s3:::bk1/k"),
        (
            "DELETE",
            "/bk1/k",
            "uploadId=u",
            "AbortMultipartUpload",
            "s3:AbortMultipartUpload",
            "arn:aws:s3:::bk1/k",
        ),
        ("GET", "/bk1/k", "uploadId=u", "ListParts", "s3:ListMultipartUploadParts", "arn:aws:s3:::bk1/k"),
        ("GET", "/bk1", "list-type=2&prefix=a/", "ListObjectsV2", "s3:ListBucket", "arn:aws:s3:::bk1"),
        (
            "GET",
            "/bk1",
            "uploads",
            "ListMultipartUploads",
            "s3:ListBucketMultipartUploads",
            "arn:aws:s3:::bk1",
        ),
        ("GET", "/bk1", "policy", "GetBucketPolicy", "s3:GetBucketPolicy", "arn:aws:s3:::bk1"),
        ("GET", "/", "", "ListBuckets", "s3:ListAllMyBuckets", "*"),
    ],
)
def test_s3_operations(
    method: str, path: str, query: str, operation: str, action: str, resource: str
) -> None:
    got_operation, checks, _ = _s3(method, path, query)
    assert got_operation == operation
    assert checks[0][:2] == (action, resource)


def test_s3_list_condition_keys() -> None:
    _, checks, _ = _s3("GET", "/bk1", "list-type=2&prefix=home%2Fann%2F&delimiter=%2F&max-keys=5")
    assert checks[0][2] == {"s3:prefix": "home/ann/", "s3:delimiter": "/", "s3:max-keys": "5"}


def test_s3_virtual_host_is_forwarded_path_style() -> None:
    operation, checks, path = _s3("GET", "/dir/a%20b.txt", host="photos.s3.local")
    assert (operation, checks[0][1], path) == (
        "GetObject",
        "arn:aws:s3:::photos/dir/a b.txt",
        "/photos/dir/a%20b.txt",
    )


def test_s3_copy_checks_the_source_and_canonicalises_it() -> None:
    operation, checks, _ = _s3("PUT", "/bk1/dst", **{"x-amz-copy-source": "/bk2/src%20file?versionId=7"})
    assert operation == "CopyObject"
    assert checks[1][:2] == ("s3:GetObjectVersion", "arn:aws:s3:::bk2/src file")
    with pytest.raises(InvalidParameterValue):
        _s3("PUT", "/bk1/dst", **{"x-amz-copy-source": "/bk2/public/../private/x"})


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("POST", "/bk1/k", "delete"),
        ("GET", "/bk1/k", "unknown-subresource"),
        ("GET", "/bk1/k", "acl&tagging"),
        ("PATCH", "/bk1/k", ""),
    ],
)
def test_s3_unknown_operations_fail_closed(method: str, path: str, query: str) -> None:
    with pytest.raises(AccessDenied):
        _s3(method, path, query)


def test_s3_delete_objects_is_decided_per_key_from_the_body() -> None:
    operation, checks, _ = _s3("POST", "/bk1", "delete")
    assert (operation, checks) == ("DeleteObjects", [])


def test_s3_bad_bucket_names() -> None:
    for path in ("/A_B/k", "/..", "/x/k"):
        with pytest.raises(InvalidParameterValue):
            _s3("GET", path)


@pytest.mark.parametrize(
    "raw", ["/a/../b", "/a/%2e%2E/b", "/a/./b", "/a/%252e", "/a/%00", "/a/%c3", "a/b", "/a/%2f/..%2fb"]
)
def test_ambiguous_paths_are_refused(raw: str) -> None:
    with pytest.raises(InvalidParameterValue):
        decode_path(raw, encoded_slash=True)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(["/", "a", "Z9", ".", "..", "-_~", "%2e", "%41", "%2F", "\\", " ", "%00"]), max_size=8
    )
    .map("".join)
    .map(lambda tail: "/" + tail),
    st.booleans(),
)
def test_plain_path_fast_path_agrees_with_decoding(raw: str, encoded_slash: bool) -> None:
    # decode_path skips decoding a path of unreserved characters and slashes; the answer (or the
    # refusal) is the one the decoding path gives.
    def outcome(path_re: re.Pattern[str]) -> tuple[str, ...] | str:
        saved, paths._PLAIN = paths._PLAIN, path_re
        try:
            return decode_path(raw, encoded_slash=encoded_slash)
        except InvalidParameterValue as exc:
            return exc.message
        finally:
            paths._PLAIN = saved

    assert outcome(paths._PLAIN) == outcome(re.compile(r"(?!)"))


def test_encoded_slash_only_where_allowed() -> None:
    assert decode_path("/a%2Fb", encoded_slash=True) == ("a", "b")
    assert decode_path("/a/b%252Fc", encoded_slash=True) == ("a", "b%2Fc")  # the key's own "%2F"
    with pytest.raises(InvalidParameterValue):
        decode_path("/a/b%252Fc")
    with pytest.raises(InvalidParameterValue):
        decode_path("/a%2Fb")
    assert encode_segments(decode_path("/x/%7E%41 b/", encoded_slash=False)) == "/x/~A%20b/"


def test_query_round_trip_drops_auth_and_keeps_bare_names() -> None:
    params = parse_query("uploads&prefix=a%2Bb+c&X-Amz-Signature=abc")
    assert encode_query(params) == "uploads&prefix=a%2Bb%2Bc"


def test_api_gateway_resource() -> None:
    mapping = ApiGatewayMapping(region="eu-west-1", account="123456789012", api_id="a1", stage="prod")
    mapped = mapping.map(ProxyRequest("POST", "h", ("orders", "7 x"), ()))
    assert mapped.checks[0].resource == "arn:aws:execute-api:eu-west-1:123456789012:a1/prod/POST/orders/7 x"
    assert mapped.path == "/orders/7%20x"


def test_route_table() -> None:
    table = RouteTable(
        [
            RouteSettings(
                method="GET",
                path="/files/{path+}",
                action="files:Read",
                resource="arn:aws:files:{region}:{account}:file/{path}",
                conditions={"files:Client": "header.x-client", "files:Mode": "query.mode"},
            )
        ],
        region="r1",
        account="123456789012",
    )
    request = ProxyRequest("GET", "h", ("files", "a", "b.txt"), parse_query("mode=ro"), {"x-client": "cli"})
    check = table.map(request).checks[0]
    assert (check.action, check.resource) == ("files:Read", "arn:aws:files:r1:123456789012:file/a/b.txt")
    assert dict(check.context) == {"files:Client": "cli", "files:Mode": "ro"}
    with pytest.raises(AccessDenied):
        table.map(ProxyRequest("PUT", "h", ("files", "a"), ()))
    with pytest.raises(AccessDenied):
        table.map(ProxyRequest("GET", "h", ("files",), ()))


def test_request_headers_are_filtered() -> None:
    headers = [
        ("Authorization", "AWS4-HMAC-SHA256 ..."),
        ("X-Amz-Security-Token", "t"),
        ("Connection", "keep-alive, X-Private"),
        ("X-Private", "1"),
        ("X-Fedgate-Identity", "forged"),
        ("X-Fedgate-Anything", "forged"),
        ("My-Identity", "forged"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("Content-Encoding", "aws-chunked,gzip"),
        ("x-amz-decoded-content-length", "5"),
        ("x-amz-meta-color", "blue"),
    ]
    out = request_headers(headers, identity_headers=["My-Identity"], decoded_chunked=True)
    assert out == [("Content-Encoding", "gzip"), ("x-amz-meta-color", "blue")]
    assert response_headers([("Connection", "close, X-A"), ("X-A", "1"), ("ETag", "e")]) == [("ETag", "e")]
