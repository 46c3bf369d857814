"""AWS attribute validation, and a fuzz check that no mutation of a signed response changes who it names."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedgate_saml import SAMLProvider
from fedgate_saml.assertion import check_response, parse_instant
from fedgate_saml.attributes import aws_claims, name_qualifier, subject_type
from fedgate_saml.xmlsig import TrustedCert
from gateway.errors import InvalidIdentityToken, ServiceError
from gateway.testing.saml import SAMLTestIdP
from tests.plugins.fedgate_saml.conftest import PROVIDER_ARN, ROLE_ARN

ATTR = "https://aws.amazon.com/SAML/Attributes/"
BASE = {ATTR + "Role": [f"{ROLE_ARN},{PROVIDER_ARN}"], ATTR + "RoleSessionName": ["alice"]}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({ATTR + "RoleSessionName": ["alice", "bob"]}, "exactly one value"),
        ({ATTR + "RoleSessionName": ["has space"]}, "RoleSessionName"),
        ({ATTR + "SessionDuration": ["43201"]}, "SessionDuration"),
        ({ATTR + "SessionDuration": ["1e3"]}, "SessionDuration"),
        ({ATTR + "SourceIdentity": ["aws:admin"]}, "SourceIdentity"),
        ({ATTR + "PrincipalTag:aws:x": ["v"]}, "tag key"),
        ({ATTR + "PrincipalTag:team": ["a", "b"]}, "PrincipalTag:team"),
        ({ATTR + "PrincipalTag:team": ["v"], ATTR + "PrincipalTag:TEAM": ["w"]}, "unique"),
        ({ATTR + "TransitiveTagKeys": ["nope"]}, "TransitiveTagKeys"),
        ({ATTR + f"PrincipalTag:k{i}": ["v"] for i in range(51)}, "50"),
        ({ATTR + "Role": [ROLE_ARN]}, "Role"),
        ({ATTR + "Role": [f"{ROLE_ARN},arn:aws:iam::123456789012:oidc-provider/x"]}, "Role"),
    ],
)
def test_bad_aws_attributes_are_refused(extra: dict[str, list[str]], fragment: str) -> None:
    with pytest.raises(InvalidIdentityToken) as info:
        aws_claims({**BASE, **extra})
    assert fragment in info.value.message


def test_aws_claims_defaults() -> None:
    claims = aws_claims(BASE)
    assert claims.roles == ((ROLE_ARN, PROVIDER_ARN),)
    assert claims.session_name == "alice"
    assert claims.max_session_duration is None and claims.source_identity is None
    assert claims.session_tags == {} and claims.transitive_tag_keys == ()


def test_name_qualifier_and_subject_type() -> None:
    # AWS's documented example: BASE64(SHA1("https://example.com/saml" + "123456789012" + "/MySAMLIdP")).
    expected = base64.b64encode(
        hashlib.sha1(b"https://example.com/saml123456789012/MySAMLIdP").digest()
    ).decode()
    assert name_qualifier("https://example.com/saml", "123456789012", "MySAMLIdP") == expected
    assert subject_type("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent") == "persistent"
    assert subject_type("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress").endswith("emailAddress")
    assert subject_type(None).endswith("unspecified")


def test_parse_instant() -> None:
    assert parse_instant("2030-01-01T00:00:00Z", "t") == 1893456000.0
    assert parse_instant("2030-01-01T01:00:00.123456789+01:00", "t") == pytest.approx(1893456000.123456)
    assert parse_instant("2030-01-01T00:00:00", "t") == 1893456000.0
    for bad in (None, "", "tomorrow", "2030-01-01", "2030-13-01T00:00:00Z"):
        with pytest.raises(InvalidIdentityToken):
            parse_instant(bad, "t")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_signed_response_never_names_someone_else(
    provider: SAMLProvider, idp: SAMLTestIdP, data: st.DataObject
) -> None:
    xml = idp.response(
        roles=[(ROLE_ARN, PROVIDER_ARN)], sign_response=data.draw(st.booleans()), sign_assertion=True
    )
    position = data.draw(st.integers(0, len(xml) - 1))
    replacement = data.draw(st.binary(min_size=0, max_size=3))
    mutated = xml[:position] + replacement + xml[position + 1 :]
    config = provider.settings  # the same settings the provider checks with
    try:
        verified = check_response(
            mutated,
            entity_id=idp.entity_id,
            certs=_certs(idp),
            audiences=config.audiences,
            recipients=config.recipients,
            allow_sha1=False,
            require_signed_assertion=False,
            allow_in_response_to=False,
            check_validity=True,
            now=time.time(),
            leeway=60,
            max_age=config.max_assertion_age_seconds,
        )
    except ServiceError as exc:
        assert "alice@example.com" not in exc.message
        return
    # Only changes outside what the signature covers (or no-op changes) can pass.
    assert verified.name_id == "alice@example.com"
    assert verified.attributes[ATTR + "Role"] == [f"{ROLE_ARN},{PROVIDER_ARN}"]


def _certs(idp: SAMLTestIdP) -> list[TrustedCert]:
    return [TrustedCert.of(x509.load_pem_x509_certificate(k.cert_pem)) for k in idp.keys]
