"""SAML providers over the Query API with boto3: create from a real IdP's metadata, get, list,
update, delete, and the metadata documents refused (not XML, DTDs, no IdP, no certificate)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lxml import etree

from gateway.testing.saml import SAMLTestIdP
from tests.iam.api.conftest import ACCOUNT, Api
from tests.iam.api.unchecked import unchecked_client


@pytest.fixture(scope="module")
def metadata() -> Iterator[str]:
    with SAMLTestIdP() as idp:
        yield idp.metadata_xml().decode()


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_create_get_list_update_delete(admin: Any, metadata: str) -> None:
    made = admin.create_saml_provider(
        Name="corp-idp", SAMLMetadataDocument=metadata, Tags=[{"Key": "owner", "Value": "it"}]
    )
    arn = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp-idp"
    assert made["SAMLProviderArn"] == arn and made["Tags"] == [{"Key": "owner", "Value": "it"}]
    got = admin.get_saml_provider(SAMLProviderArn=arn)
    assert got["SAMLMetadataDocument"] == metadata and "CreateDate" in got
    assert arn in [p["Arn"] for p in admin.list_saml_providers()["SAMLProviderList"]]
    valid = _valid_until(metadata, "2030-01-02T03:04:05Z")
    assert (
        admin.update_saml_provider(SAMLProviderArn=arn, SAMLMetadataDocument=valid)["SAMLProviderArn"] == arn
    )
    assert admin.get_saml_provider(SAMLProviderArn=arn)["ValidUntil"].year == 2030
    with pytest.raises(ClientError) as excinfo:
        admin.create_saml_provider(Name="corp-idp", SAMLMetadataDocument=metadata)
    assert _code(excinfo) == ("EntityAlreadyExists", 409)
    admin.delete_saml_provider(SAMLProviderArn=arn)
    with pytest.raises(ClientError) as excinfo:
        admin.get_saml_provider(SAMLProviderArn=arn)
    assert _code(excinfo) == ("NoSuchEntity", 404)


def _valid_until(metadata: str, until: str) -> str:
    root = etree.fromstring(metadata.encode())
    root.set("validUntil", until)
    return etree.tostring(root).decode()


def test_unusable_metadata_is_refused(api: Api, admin: Any, metadata: str) -> None:
    padding = " " * 1000
    for document in (
        _valid_until(metadata, "9999-12-31T23:59:59-23:59"),  # past the last date there is
        _valid_until(metadata, "someday"),
        "not xml at all" + padding,
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>' + padding,
        '<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="sp"/>' + padding,
        metadata.replace("X509Certificate>", "X509CertificateX>"),  # no certificate left
        "<other/>" + padding,
    ):
        with pytest.raises(ClientError) as excinfo:
            admin.create_saml_provider(Name="refused", SAMLMetadataDocument=document)
        assert _code(excinfo) == ("InvalidInput", 400)
    assert all("refused" not in p["Arn"] for p in admin.list_saml_providers()["SAMLProviderList"])
    with pytest.raises(ClientError) as excinfo:
        unchecked_client(api).create_saml_provider(
            Name="short", SAMLMetadataDocument="<x/>"
        )  # under 1,000 characters
    assert _code(excinfo) == ("ValidationError", 400)
    with pytest.raises(ClientError) as excinfo:
        admin.get_saml_provider(SAMLProviderArn="arn:aws:iam::123456789012:role/not-saml")
    assert _code(excinfo) == ("InvalidInput", 400)


def test_unauthorized_callers_change_nothing(api: Api, admin: Any, metadata: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        api.client("reader").create_saml_provider(Name="sneaky", SAMLMetadataDocument=metadata)
    assert _code(excinfo) == ("AccessDenied", 403)
    assert all("sneaky" not in p["Arn"] for p in admin.list_saml_providers()["SAMLProviderList"])
    event = api.audit.named("CreateSAMLProvider")[-1]
    assert event["requestParameters"] == {"name": "sneaky"}  # the document is not recorded
