"""What the SAML provider accepts, and the Identity it builds from a pysaml2-signed response."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from pydantic import ValidationError

import fedgate_saml
from fedgate_saml import SAMLProvider, SAMLProviderSettings
from gateway.config import ProviderSettings, parse_config
from gateway.errors import ConfigError
from gateway.identity import IdentityProvider, ProviderContext
from gateway.plugin_host import PluginHost
from gateway.store.memory import MemoryStore
from gateway.testing.saml import (
    AWS_ACS,
    MFA_CLASS,
    ROLE_ATTR,
    SESSION_DURATION_ATTR,
    SAMLTestIdP,
)
from tests.plugins.fedgate_saml.conftest import ACCOUNT, PROVIDER, PROVIDER_ARN, ROLE_ARN, Make

ATTR = "https://aws.amazon.com/SAML/Attributes/"


def token(idp: SAMLTestIdP, **kwargs: Any) -> str:
    kwargs.setdefault("roles", [(ROLE_ARN, PROVIDER_ARN)])
    return SAMLTestIdP.b64(idp.response(**kwargs))


@pytest.mark.parametrize(
    ("sign_response", "sign_assertion"),
    [(True, False), (False, True), (True, True)],
    ids=["response", "assertion", "both"],
)
async def test_signed_response_gives_identity(
    make: Make, idp: SAMLTestIdP, sign_response: bool, sign_assertion: bool
) -> None:
    provider = await make()
    identity = await provider.authenticate(
        token(idp, sign_response=sign_response, sign_assertion=sign_assertion, name_id="u-1234")
    )
    assert isinstance(provider, IdentityProvider)
    assert provider.arn == PROVIDER_ARN and provider.kind == "saml"
    assert provider.issuer == idp.entity_id
    assert identity.provider_arn == PROVIDER_ARN
    assert identity.provider_id == PROVIDER
    assert identity.kind == "saml"
    assert identity.subject == "u-1234"
    assert identity.subject_type == "persistent"
    assert identity.issuer == idp.entity_id
    assert identity.audience == AWS_ACS  # the Recipient, as AWS reports it
    assert identity.roles == ((ROLE_ARN, PROVIDER_ARN),)
    assert identity.session_name == "alice@example.com"
    assert identity.max_session_duration is None
    assert identity.mfa_authenticated is False
    assert identity.expires_at is not None and identity.issued_at is not None
    assert 0 < identity.expires_at - identity.issued_at <= 600
    keys = identity.condition_keys
    assert keys["saml:aud"] == AWS_ACS
    assert keys["saml:sub"] == "u-1234"
    assert keys["saml:sub_type"] == "persistent"
    assert keys["saml:iss"] == idp.entity_id
    assert keys["saml:doc"] == f"{ACCOUNT}/{PROVIDER}"
    expected_nq = base64.b64encode(
        hashlib.sha1(f"{idp.entity_id}{ACCOUNT}/{PROVIDER}".encode()).digest()
    ).decode()
    assert keys["saml:namequalifier"] == expected_nq == identity.name_qualifier
    assert all(k == k.lower() for k in keys)


async def test_role_pairs_in_either_order_and_several(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    other_role = f"arn:aws:iam::{ACCOUNT}:role/path/Admins"
    identity = await provider.authenticate(
        token(idp, roles=[f"{PROVIDER_ARN},{ROLE_ARN}", f"{other_role}, {PROVIDER_ARN}"])
    )
    assert identity.roles == ((ROLE_ARN, PROVIDER_ARN), (other_role, PROVIDER_ARN))


async def test_aws_attributes_and_condition_keys(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    identity = await provider.authenticate(
        token(
            idp,
            name_id="transient-42",
            name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
            authn_class=MFA_CLASS,
            session_not_on_or_after="2099-01-01T00:00:00Z",
            attributes={
                SESSION_DURATION_ATTR: ["7200"],
                ATTR + "PrincipalTag:Department": ["Engineering"],
                ATTR + "PrincipalTag:CostCenter": ["42"],
                ATTR + "TransitiveTagKeys": ["department"],
                ATTR + "SourceIdentity": ["alice"],
                "urn:oid:1.3.6.1.4.1.5923.1.1.1.1": ["staff", "member"],
                "urn:oid:1.3.6.1.4.1.5923.1.1.1.6": ["alice@example.edu"],
                "urn:oid:1.3.6.1.4.1.5923.1.1.1.3": ["o=Example"],
                "urn:oid:0.9.2342.19200300.100.1.3": ["alice@example.com"],
                "urn:oid:0.9.2342.19200300.100.1.1": ["alice"],
                "urn:oid:2.5.4.42": ["Alice"],
                "urn:oid:2.5.4.4": ["Liddell"],
                "urn:oid:2.5.4.3": ["Alice Liddell"],
                "urn:oid:2.16.840.1.113730.3.1.241": ["Alice L."],
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/primarygroupsid": ["S-1-5-21-513"],
            },
        )
    )
    assert identity.subject_type == "transient"
    assert identity.mfa_authenticated is True
    assert identity.max_session_duration == 7200
    assert identity.session_not_on_or_after == 4070908800.0
    assert identity.session_tags == {"Department": "Engineering", "CostCenter": "42"}
    assert identity.transitive_tag_keys == ("Department",)
    assert identity.source_identity == "alice"
    keys = identity.condition_keys
    assert keys["saml:sub_type"] == "transient"
    assert keys["saml:edupersonaffiliation"] == ["staff", "member"]
    assert keys["saml:edupersonprincipalname"] == "alice@example.edu"
    assert keys["saml:edupersonorgdn"] == "o=Example"
    assert keys["saml:mail"] == "alice@example.com"
    assert keys["saml:uid"] == "alice"
    assert keys["saml:givenname"] == "Alice"
    assert keys["saml:sn"] == keys["saml:surname"] == "Liddell"
    assert keys["saml:cn"] == keys["saml:commonname"] == "Alice Liddell"
    assert keys["saml:displayname"] == "Alice L."
    assert keys["saml:primarygroupsid"] == "S-1-5-21-513"
    assert identity.claims["urn:oid:1.3.6.1.4.1.5923.1.1.1.1"] == ["staff", "member"]


async def test_other_aws_audience_and_custom_recipients(make: Make, idp: SAMLTestIdP) -> None:
    provider = await make(recipients=["https://gateway.example.com/saml/acs"])
    identity = await provider.authenticate(
        token(idp, sp_entity_id="urn:amazon:webservices", destination="https://gateway.example.com/saml/acs")
    )
    assert identity.audience == "https://gateway.example.com/saml/acs"  # the Recipient, not the Audience
    assert identity.condition_keys["saml:aud"] == "https://gateway.example.com/saml/acs"


async def test_line_wrapped_base64_is_accepted(provider: SAMLProvider, idp: SAMLTestIdP) -> None:
    raw = token(idp)
    wrapped = "\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))
    identity = await provider.authenticate(wrapped)
    assert identity.roles == ((ROLE_ARN, PROVIDER_ARN),)


async def test_in_response_to_accepted_when_configured(make: Make, idp: SAMLTestIdP) -> None:
    provider = await make(allow_in_response_to=True)
    identity = await provider.authenticate(token(idp, in_response_to="_req-1"))
    assert identity.subject == "alice@example.com"


def test_plugin_registers_saml_type_and_builds_provider(idp: SAMLTestIdP) -> None:
    host = PluginHost()  # fedgate_saml comes from its entry point
    types = host.provider_types()
    assert types["saml"] is SAMLProviderSettings
    settings = SAMLProviderSettings(**idp.provider_config("corp"))
    built = host.manager.hook.fedgate_create_identity_provider(
        settings=settings, context=ProviderContext(ACCOUNT, MemoryStore())
    )
    assert isinstance(built, SAMLProvider) and built.arn == PROVIDER_ARN
    other = host.manager.hook.fedgate_create_identity_provider(
        settings=ProviderSettings(type="other"), context=ProviderContext(ACCOUNT, MemoryStore())
    )
    assert other is None


def test_settings_defaults_and_validation(tmp_path: Any) -> None:
    settings = SAMLProviderSettings(type="saml", name="a.b-c_d", metadata_file=tmp_path / "m.xml")
    assert settings.audiences == ["https://signin.aws.amazon.com/saml", "urn:amazon:webservices"]
    assert settings.recipients == ["https://signin.aws.amazon.com/saml"]
    assert settings.allow_sha1 is False and settings.max_assertion_chars == 100_000
    assert MFA_CLASS in settings.mfa_authn_context_classes
    bad: list[dict[str, Any]] = [
        {"name": "corp"},  # neither source
        {"name": "corp", "metadata_file": "m.xml", "metadata_url": "https://idp.example.com/m"},
        {"name": "corp", "metadata_url": "http://idp.example.com/metadata"},  # http off loopback
        {"name": "corp", "metadata_url": "https://user:pw@idp.example.com/metadata"},
        {"name": "bad name", "metadata_file": "m.xml"},
        {"name": "x" * 129, "metadata_file": "m.xml"},
        {"name": "corp", "metadata_file": "m.xml", "surprise": 1},
        {"name": "corp", "metadata_file": "m.xml", "audiences": []},
    ]
    for extra in bad:
        with pytest.raises(ValidationError):
            SAMLProviderSettings(type="saml", **extra)
    loopback = SAMLProviderSettings(type="saml", name="dev", metadata_url="http://127.0.0.1:8080/metadata")
    assert loopback.metadata_url == "http://127.0.0.1:8080/metadata"
    assert fedgate_saml.__doc__ is not None
    for name, field in SAMLProviderSettings.model_fields.items():
        assert field.description, "every setting is described"
        assert f"{name}:" in fedgate_saml.__doc__, f"{name} is missing from the plugin's docstring"


def test_role_attr_constant_matches_aws() -> None:
    assert ROLE_ATTR == "https://aws.amazon.com/SAML/Attributes/Role"


def test_config_file_validates_saml_providers_through_the_plugin(idp: SAMLTestIdP) -> None:
    host = PluginHost()  # fedgate_saml comes from its entry point
    raw: dict[str, Any] = {"account_id": ACCOUNT, "providers": [idp.provider_config("corp", allow_sha1=True)]}
    config = parse_config(raw, provider_types=host.provider_types(), sections=host.config_sections())
    (settings,) = config.providers
    assert isinstance(settings, SAMLProviderSettings) and settings.allow_sha1 is True
    raw["providers"] = [{"type": "saml", "name": "corp", "metadata_url": "http://idp.example.com/md"}]
    with pytest.raises(ConfigError) as info:
        parse_config(raw, provider_types=host.provider_types(), sections=host.config_sections())
    assert "providers[0].metadata_url" in str(info.value) and "https" in str(info.value)
