"""SigV2 against the worked examples of AWS's "Signing and authenticating REST requests" page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.errors import AccessDenied, IncompleteSignature, RequestTimeTooSkewed, SignatureDoesNotMatch
from gateway.sigv4 import HttpRequest
from gateway.sigv4.sigv2 import is_sigv2, parse_sigv2, verify_sigv2

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _header(
    method: str, path: str, query: str, date: str, signature: str, *extra: tuple[str, str]
) -> HttpRequest:
    return HttpRequest(
        method, path, query, (("Host", "johnsmith.s3.amazonaws.com"), ("Date", date), *extra,
                              ("Authorization", f"AWS {AKID}:{signature}"))
    )  # fmt: skip


EXAMPLES = [
    pytest.param(
        _header(
            "GET", "/photos/puppy.jpg", "", "Tue, 27 Mar 2007 19:36:42 +0000", "bWq2s1WEIj+Ydj0vQ697zp+IXMU="
        ),
        datetime(2007, 3, 27, 19, 36, 42, tzinfo=UTC),
        id="object-get",
    ),
    pytest.param(
        _header(
            "PUT",
            "/photos/puppy.jpg",
            "",
            "Tue, 27 Mar 2007 21:15:45 +0000",
            "MyyxeRY7whkBe+bq8fHCL/2kKUg=",
            ("Content-Type", "image/jpeg"),
            ("Content-Length", "94328"),
        ),
        datetime(2007, 3, 27, 21, 15, 45, tzinfo=UTC),
        id="object-put",
    ),
    pytest.param(
        HttpRequest(
            "GET",
            "/photos/puppy.jpg",
            f"AWSAccessKeyId={AKID}&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620",
            (("Host", "johnsmith.s3.amazonaws.com"),),
        ),
        datetime(2007, 3, 29, 3, 40, 0, tzinfo=UTC),
        id="query-string",
    ),
]


@pytest.mark.parametrize(("request_", "now"), EXAMPLES)
def test_documented_examples(request_: HttpRequest, now: datetime) -> None:
    authorization = next((v for n, v in request_.headers if n == "Authorization"), None)
    assert is_sigv2(authorization, request_.raw_query)
    info = parse_sigv2(request_)
    assert info.access_key_id == AKID
    verify_sigv2(request_, info, SECRET, now=now, bucket="johnsmith")
    with pytest.raises(SignatureDoesNotMatch):
        verify_sigv2(request_, info, SECRET[:-1] + "x", now=now, bucket="johnsmith")
    with pytest.raises(SignatureDoesNotMatch):
        verify_sigv2(request_, info, SECRET, now=now, bucket="other")


def test_time() -> None:
    get, when = EXAMPLES[0].values
    assert isinstance(get, HttpRequest) and isinstance(when, datetime)
    with pytest.raises(RequestTimeTooSkewed):
        verify_sigv2(get, parse_sigv2(get), SECRET, now=when + timedelta(minutes=16), bucket="johnsmith")
    query, _ = EXAMPLES[2].values
    assert isinstance(query, HttpRequest)
    with pytest.raises(AccessDenied, match="expired"):
        verify_sigv2(
            query, parse_sigv2(query), SECRET, now=datetime(2007, 3, 29, 4, tzinfo=UTC), bucket="johnsmith"
        )


@pytest.mark.parametrize(
    "request_",
    [
        HttpRequest(
            "GET", "/", "", (("Authorization", f"AWS {AKID}"), ("Date", "Tue, 27 Mar 2007 19:36:42 +0000"))
        ),
        HttpRequest(
            "GET",
            "/",
            "",
            (("Authorization", f"AWS {AKID}:c2hvcnQ="), ("Date", "Tue, 27 Mar 2007 19:36:42 +0000")),
        ),
        HttpRequest("GET", "/", "", (("Authorization", f"AWS {AKID}:bWq2s1WEIj+Ydj0vQ697zp+IXMU="),)),
        HttpRequest("GET", "/", f"AWSAccessKeyId={AKID}&Signature=bWq2s1WEIj%2BYdj0vQ697zp%2BIXMU%3D", ()),
        HttpRequest("GET", "/", f"AWSAccessKeyId={AKID}&Signature=x&Expires=soon", ()),
    ],
    ids=["no-signature", "short-signature", "no-date", "no-expires", "bad-expires"],
)
def test_malformed(request_: HttpRequest) -> None:
    with pytest.raises(IncompleteSignature):
        parse_sigv2(request_)
