"""Every error code renders in every dialect, and botocore reads each one back.

The Query protocol's XML (STS, IAM), S3's XML and JSON; botocore's own parsers are the judge of
whether an SDK would see the code and message.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from botocore.parsers import QueryParser, RestJSONParser, RestXMLParser

from gateway import errors
from gateway.dialects import DIALECTS, ErrorDialect, error_body, s3_code

ERRORS = sorted(
    (
        cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.ServiceError)
        and cls is not errors.ServiceError
        and not name.startswith("_")
    ),
    key=lambda cls: cls.__name__,
)
PARSERS: dict[ErrorDialect, Any] = {"sts": QueryParser(), "s3": RestXMLParser(), "json": RestJSONParser()}


def test_every_service_error_is_in_the_tree_and_all() -> None:
    assert len(ERRORS) >= 25
    assert {cls.__name__ for cls in ERRORS} <= set(errors.__all__)
    for cls in ERRORS:
        assert cls.__name__ in (errors.__doc__ or ""), f"draw {cls.__name__} in gateway.errors' tree"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_renders_in_every_dialect(cls: type[errors.ServiceError], dialect: ErrorDialect) -> None:
    exc = cls("Something <went> & wrong\x00 here")
    status, body, content_type, headers = error_body(exc, "req-123", dialect)
    expected_code, expected_status = s3_code(exc) if dialect == "s3" else (exc.code, exc.status)
    assert status == expected_status and 400 <= status < 600
    response = {
        "status_code": status,
        "headers": {"content-type": content_type, **headers},
        "body": body.encode(),
    }
    parsed = PARSERS[dialect].parse(response, None)
    assert parsed["Error"]["Code"] == expected_code
    # XML cannot carry a NUL, so the XML dialects drop it; JSON escapes it.
    kept = exc.message if dialect == "json" else "Something <went> & wrong here"
    assert parsed["Error"]["Message"] == kept
    if dialect == "sts":
        assert parsed["Error"]["Type"] == exc.fault
        assert parsed["ResponseMetadata"]["RequestId"] == "req-123"
    elif dialect == "json":
        assert json.loads(body)["requestId"] == "req-123"
    else:
        assert parsed["ResponseMetadata"]["RequestId"] == "req-123"
