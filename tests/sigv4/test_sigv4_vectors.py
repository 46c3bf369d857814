"""The AWS SigV4 test suite (aws-c-auth, Apache-2.0; see vectors/LICENSE and vectors/NOTICE).

Every case runs in both the header and the presigned-query form: the canonical request and string
to sign must match the suite's files byte for byte, verify() must accept the signed request at the
case's timestamp, sign() must reproduce the signature, and every tampered twin must be rejected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from gateway.errors import IncompleteSignature, ServiceError, SignatureDoesNotMatch
from gateway.sigv4 import (
    HttpRequest,
    SigningKeyCache,
    canonical_request,
    parse_signature,
    sign,
    string_to_sign,
    verify,
)

VECTORS = Path(__file__).parent / "vectors"
CASES = sorted(p.name for p in VECTORS.iterdir() if (p / "context.json").is_file())
FORMS: tuple[Literal["header", "query"], ...] = ("header", "query")
TIMESTAMP = "20150830T123600Z"


def parse_http(raw: bytes) -> tuple[HttpRequest, bytes]:
    """Parse one of the suite's raw HTTP request files (LF line ends, obs-fold, utf-8 targets)."""
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode("utf-8").split("\n")
    method, _, rest = lines[0].partition(" ")
    target, _, version = rest.rpartition(" ")  # the target itself may contain spaces
    assert version == "HTTP/1.1"
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            # RFC 9112 5.2: a recipient may replace each obs-fold with a space.
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line}")
        elif line:
            name, sep, value = line.partition(":")
            assert sep, line
            headers.append((name, value))
    return HttpRequest(method, path, query, tuple(headers), hashlib.sha256(body).hexdigest()), body


@dataclass(frozen=True)
class Case:
    name: str
    form: Literal["header", "query"]
    context: dict[str, Any]
    unsigned: HttpRequest
    signed: HttpRequest

    def file(self, suffix: str) -> str:
        return (VECTORS / self.name / f"{self.form}-{suffix}").read_text(encoding="utf-8")

    @property
    def now(self) -> datetime:
        return datetime.fromisoformat(self.context["timestamp"])

    @property
    def secret(self) -> str:
        return str(self.context["credentials"]["secret_access_key"])

    @property
    def token(self) -> str | None:
        token = self.context["credentials"].get("token")
        return None if token is None else str(token)

    @property
    def token_after_signing(self) -> bool:
        return bool(self.context.get("omit_session_token", False))

    def verify(self, request: HttpRequest, *, keys: SigningKeyCache | None = None) -> None:
        info = parse_signature(request)
        verify(
            request,
            info,
            self.secret,
            now=self.now,
            region=None,
            service=self.context["service"],
            normalize_path=self.context["normalize"],
            unsigned_session_token=self.token_after_signing,
            keys=keys,
        )


def load(name: str, form: Literal["header", "query"]) -> Case:
    context = json.loads((VECTORS / name / "context.json").read_text())
    unsigned, _ = parse_http((VECTORS / name / "request.txt").read_bytes())
    signed, _ = parse_http((VECTORS / name / f"{form}-signed-request.txt").read_bytes())
    return Case(name, form, context, unsigned, signed)


ALL = [pytest.param(name, form, id=f"{name}-{form}") for name in CASES for form in FORMS]


def test_suite_is_complete() -> None:
    assert len(CASES) == 38
    assert (VECTORS / "LICENSE").is_file() and (VECTORS / "NOTICE").is_file()


@pytest.mark.parametrize(("name", "form"), ALL)
def test_canonical_request_and_string_to_sign(name: str, form: Literal["header", "query"]) -> None:
    case = load(name, form)
    info = parse_signature(case.signed)
    assert info.form == form
    assert info.access_key_id == case.context["credentials"]["access_key_id"]
    assert (info.date, info.region, info.service) == ("20150830", "us-east-1", "service")
    assert info.timestamp == TIMESTAMP
    assert info.signature == case.file("signature.txt").strip()
    exclude = {"X-Amz-Signature"} if form == "query" else set()
    if case.token_after_signing:
        exclude.add("X-Amz-Security-Token")
    assert case.signed.payload_sha256 is not None
    canonical = canonical_request(
        case.signed,
        info.signed_headers,
        case.signed.payload_sha256,
        normalize_path=case.context["normalize"],
        exclude_query=exclude,
    )
    assert canonical == case.file("canonical-request.txt")
    assert string_to_sign(info.timestamp, info.scope, canonical) == case.file("string-to-sign.txt")


@pytest.mark.parametrize(("name", "form"), ALL)
def test_verify_accepts_signed_request(name: str, form: Literal["header", "query"]) -> None:
    case = load(name, form)
    keys = SigningKeyCache(maxsize=4)
    case.verify(case.signed, keys=keys)
    case.verify(case.signed, keys=keys)  # second time from the key cache
    assert len(keys) == 1


@pytest.mark.parametrize(("name", "form"), ALL)
def test_sign_reproduces_signed_request(name: str, form: Literal["header", "query"]) -> None:
    case = load(name, form)
    signed = sign(
        case.unsigned,
        access_key_id=case.context["credentials"]["access_key_id"],
        secret_key=case.secret,
        region=case.context["region"],
        service=case.context["service"],
        now=case.now,
        session_token=case.token,
        form=form,
        expires=case.context["expiration_in_seconds"],
        normalize_path=case.context["normalize"],
        sign_session_token=not case.token_after_signing,
        # aws-c-auth adds x-amz-content-sha256 for sign_body in the header form only.
        content_sha256_header=case.context["sign_body"] and form == "header",
    )
    if form == "query":
        assert signed.raw_query == case.signed.raw_query
    else:
        expected = dict((n.lower(), v) for n, v in case.signed.headers)
        produced = dict((n.lower(), v) for n, v in signed.headers)
        assert produced["authorization"] == expected["authorization"]
        assert produced.keys() == expected.keys()
    case.verify(signed)


# --- tampered twins -------------------------------------------------------------------------------


def _headers(request: HttpRequest, name: str, edit: Callable[[str], str]) -> HttpRequest:
    headers = list(request.headers)
    for i, (n, v) in enumerate(headers):
        if n.lower() == name:
            headers[i] = (n, edit(v))
            break
    else:
        raise AssertionError(f"no {name} header")
    return replace(request, headers=tuple(headers))


def _flip_last_hex(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def _tamper_signature(request: HttpRequest) -> HttpRequest:
    if "X-Amz-Signature=" in request.raw_query:
        return replace(request, raw_query=_flip_last_hex(request.raw_query))
    return _headers(request, "authorization", _flip_last_hex)


def _tamper_date(request: HttpRequest) -> HttpRequest:
    later = "20150830T123601Z"
    if TIMESTAMP in request.raw_query:
        return replace(request, raw_query=request.raw_query.replace(TIMESTAMP, later))
    return _headers(request, "x-amz-date", lambda v: v.replace(TIMESTAMP, later))


def _tamper_region(request: HttpRequest) -> HttpRequest:
    if "%2Fus-east-1%2F" in request.raw_query:
        return replace(request, raw_query=request.raw_query.replace("%2Fus-east-1%2F", "%2Fus-west-2%2F"))
    return _headers(request, "authorization", lambda v: v.replace("/us-east-1/", "/us-west-2/"))


def _tamper_query_value(request: HttpRequest) -> HttpRequest:
    parts = request.raw_query.split("&")
    for i, part in enumerate(parts):
        if not part.startswith("X-Amz-"):
            parts[i] = part + "x"
            return replace(request, raw_query="&".join(parts))
    raise AssertionError("no operation parameter")


def _tamper_token(request: HttpRequest) -> HttpRequest:
    if "X-Amz-Security-Token=" in request.raw_query:
        return replace(
            request, raw_query=request.raw_query.replace("X-Amz-Security-Token=", "X-Amz-Security-Token=x")
        )
    return _headers(request, "x-amz-security-token", lambda v: "x" + v)


def _tamper_header(name: str) -> Callable[[HttpRequest], HttpRequest]:
    if name == "x-amz-content-sha256":
        other = hashlib.sha256(b"tampered").hexdigest()
        return lambda r: _headers(r, name, lambda _: other)
    return lambda r: _headers(r, name, lambda v: v + "x")


def _add_header_value(name: str) -> Callable[[HttpRequest], HttpRequest]:
    return lambda r: replace(r, headers=(*r.headers, (name, "extra")))


def twins(case: Case) -> dict[str, Callable[[HttpRequest], HttpRequest]]:
    """Every signed part of the case, each with a function that changes it."""
    info = parse_signature(case.signed)
    out: dict[str, Callable[[HttpRequest], HttpRequest]] = {
        "method": lambda r: replace(r, method="POST" if r.method == "GET" else "GET"),
        "path": lambda r: replace(r, raw_path=r.raw_path + "x"),
        "query-added": lambda r: replace(r, raw_query=f"{r.raw_query}&Added=1" if r.raw_query else "Added=1"),
        "body": lambda r: replace(r, payload_sha256=hashlib.sha256(b"tampered body").hexdigest()),
        "date": _tamper_date,
        "signature": _tamper_signature,
        "credential-region": _tamper_region,
    }
    if any(not p.startswith("X-Amz-") for p in case.signed.raw_query.split("&") if p):
        out["query-value"] = _tamper_query_value
    if case.form == "query":
        out["expires"] = lambda r: replace(
            r, raw_query=r.raw_query.replace("X-Amz-Expires=3600", "X-Amz-Expires=3599")
        )
    for name in info.signed_headers:
        if name != "x-amz-date" and name != "x-amz-security-token":
            out[f"header-{name}"] = _tamper_header(name)
        if name not in ("host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"):
            out[f"header-{name}-repeated"] = _add_header_value(name)
    if info.security_token is not None and not case.token_after_signing:
        out["session-token"] = _tamper_token
    return out


TWINS = [
    pytest.param(name, form, twin, id=f"{name}-{form}-{twin}")
    for name in CASES
    for form in FORMS
    for twin in twins(load(name, form))
]


@pytest.mark.parametrize(("name", "form", "twin"), TWINS)
def test_tampered_twin_is_rejected(name: str, form: Literal["header", "query"], twin: str) -> None:
    case = load(name, form)
    tampered = twins(case)[twin](case.signed)
    assert tampered != case.signed
    with pytest.raises(SignatureDoesNotMatch) as caught:
        case.verify(tampered)
    message = caught.value.message
    assert case.secret not in message
    assert case.file("signature.txt").strip() not in message


def test_every_case_has_the_core_twins() -> None:
    for name in CASES:
        for form in FORMS:
            kinds = twins(load(name, form))
            assert {
                "method",
                "path",
                "query-added",
                "body",
                "date",
                "signature",
                "header-host",
            } <= kinds.keys()


@pytest.mark.parametrize("form", FORMS)
def test_token_appended_after_signing_needs_opt_in(form: Literal["header", "query"]) -> None:
    case = load("post-sts-header-after", form)
    info = parse_signature(case.signed)
    assert info.security_token == case.token
    expected: type[ServiceError] = IncompleteSignature if form == "header" else SignatureDoesNotMatch
    with pytest.raises(expected):
        verify(case.signed, info, case.secret, now=case.now, service="service")
    verify(case.signed, info, case.secret, now=case.now, service="service", unsigned_session_token=True)
