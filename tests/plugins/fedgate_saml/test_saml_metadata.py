"""IdP metadata: rollover with several signing certificates, background refresh, URL, hostile documents."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from fedgate_saml import SAMLProvider, SAMLProviderSettings
from fedgate_saml.metadata import MetadataError, parse_metadata
from gateway.errors import IDPCommunicationError, InvalidIdentityToken
from gateway.identity import ProviderContext
from gateway.testing.saml import ECDSA_SHA256, RSA_SHA256, SAMLTestIdP
from tests.conftest import running_memory_store
from tests.plugins.fedgate_saml.conftest import ACCOUNT, PROVIDER, PROVIDER_ARN, ROLE_ARN, Clock


def token(idp: SAMLTestIdP, **kwargs: Any) -> str:
    kwargs.setdefault("roles", [(ROLE_ARN, PROVIDER_ARN)])
    return SAMLTestIdP.b64(idp.response(**kwargs))


async def started(settings: dict[str, Any], clock: Clock) -> SAMLProvider:
    provider = SAMLProvider(
        SAMLProviderSettings(**settings),
        ProviderContext(ACCOUNT, running_memory_store()),
        clock=clock,
        monotonic=clock.monotonic,
    )
    await provider.start()
    return provider


async def test_rollover_two_signing_certificates(clock: Clock) -> None:
    with SAMLTestIdP(keys=2) as idp:
        provider = await started(idp.provider_config(PROVIDER), clock)
        try:
            for key in (0, 1):
                idp.active_key = key
                for response_signed in (True, False):
                    identity = await provider.authenticate(
                        token(idp, sign_response=response_signed, sign_assertion=not response_signed)
                    )
                    assert identity.issuer == idp.entity_id
        finally:
            await provider.close()


async def test_metadata_file_refresh_picks_up_a_new_key(clock: Clock) -> None:
    with SAMLTestIdP() as idp:
        settings = idp.provider_config(PROVIDER, metadata_refresh_seconds=300)
        provider = await started(settings, clock)
        try:
            new = idp.add_signing_key(publish=False)
            idp.active_key = new
            with pytest.raises(InvalidIdentityToken):
                await provider.authenticate(token(idp))
            idp.published = [0, new]
            assert idp.metadata_file.exists()  # rewritten with the new key
            loads = provider.metadata_loads
            clock.offset = 301  # the next use finds the metadata overdue and reloads it
            identity = await provider.authenticate(token(idp))
            assert identity.subject == "alice@example.com"
            assert provider.metadata_loads == loads + 1
            # Key retired at the IdP: responses signed with it stop verifying after the next reload.
            idp.published = [new]
            idp.metadata_file  # noqa: B018 - rewrites the file
            idp.active_key = 0
            await provider.reload_metadata()
            with pytest.raises(InvalidIdentityToken):
                await provider.authenticate(token(idp))
        finally:
            await provider.close()


async def test_metadata_url_is_fetched_and_refreshed(clock: Clock) -> None:
    async with SAMLTestIdP() as idp, idp.serve() as url:
        provider = await started(
            {"type": "saml", "name": PROVIDER, "metadata_url": url, "metadata_refresh_seconds": 60}, clock
        )
        try:
            assert idp.metadata_fetches == 1
            assert provider.issuer == idp.entity_id
            assert (await provider.authenticate(token(idp))).subject == "alice@example.com"
            assert idp.metadata_fetches == 1  # cached
            idp.active_key = idp.add_signing_key()
            clock.offset = 61
            assert (await provider.authenticate(token(idp))).subject == "alice@example.com"
            assert idp.metadata_fetches == 2
        finally:
            await provider.close()


async def test_unreachable_metadata_fails_with_idp_communication_error(clock: Clock, tmp_path: Path) -> None:
    provider = await started(
        {"type": "saml", "name": PROVIDER, "metadata_url": "http://127.0.0.1:9/metadata", "http_timeout": 2},
        clock,
    )
    try:
        with pytest.raises(IDPCommunicationError):
            await provider.authenticate("PHg+")
        assert provider.issuer == ""
    finally:
        await provider.close()


async def test_last_good_metadata_survives_a_broken_reload(clock: Clock) -> None:
    with SAMLTestIdP() as idp:
        settings = idp.provider_config(PROVIDER, metadata_refresh_seconds=10)
        provider = await started(settings, clock)
        try:
            await asyncio.to_thread(Path(settings["metadata_file"]).write_bytes, b"<broken")
            clock.offset = 11
            assert (await provider.authenticate(token(idp))).subject == "alice@example.com"
            with pytest.raises(IDPCommunicationError):
                await provider.reload_metadata()
        finally:
            await provider.close()


async def test_expired_signing_certificate_is_refused_unless_configured(clock: Clock) -> None:
    with SAMLTestIdP() as idp:
        idp.active_key = idp.add_signing_key(valid_days=-1, not_before_days=-30)
        strict = await started(idp.provider_config(PROVIDER), clock)
        lenient = await started(idp.provider_config(PROVIDER, check_certificate_validity=False), clock)
        try:
            with pytest.raises(InvalidIdentityToken) as info:
                await strict.authenticate(token(idp))
            assert "expired" in info.value.message
            assert (await lenient.authenticate(token(idp))).subject == "alice@example.com"
        finally:
            await strict.close()
            await lenient.close()


def test_hostile_or_useless_metadata_is_refused() -> None:
    with SAMLTestIdP() as idp:
        good = idp.metadata_xml()
        assert parse_metadata(good, entity_id=None, signer=None).entity_id == idp.entity_id
        cases = {
            "DTD": b'<!DOCTYPE x [<!ENTITY e "e">]>' + good,
            "too large": b" " * (6 << 20) + good,
            "not a SAML metadata": b"<html/>",
            "no matching identity provider": good,
            "no usable signing certificate": good.replace(idp.keys[0].cert_b64.encode(), b"AAAA"),
        }
        for expected, document in cases.items():
            entity = "https://other.example/idp" if expected == "no matching identity provider" else None
            with pytest.raises(MetadataError) as info:
                parse_metadata(document, entity_id=entity, signer=None)
            assert expected in str(info.value)


def test_entities_descriptor_needs_entity_id_when_ambiguous() -> None:
    with SAMLTestIdP() as one, SAMLTestIdP(entity_id="https://idp2.example.test/saml") as two:

        def inner(idp: SAMLTestIdP) -> bytes:
            return idp.metadata_xml().split(b"?>", 1)[-1]

        aggregate = (
            b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
            + inner(one)
            + inner(two)
            + b"</md:EntitiesDescriptor>"
        )
        with pytest.raises(MetadataError, match="set entity_id"):
            parse_metadata(aggregate, entity_id=None, signer=None)
        chosen = parse_metadata(aggregate, entity_id=two.entity_id, signer=None)
        assert chosen.entity_id == two.entity_id
        assert chosen.certs[0].der != parse_metadata(inner(one), entity_id=None, signer=None).certs[0].der


async def test_signed_metadata_is_required_when_configured(clock: Clock, tmp_path: Path) -> None:
    with SAMLTestIdP() as idp, SAMLTestIdP() as federation:
        root = etree.fromstring(idp.metadata_xml())
        root.set("ID", "_md1")
        signed_md = federation.sign_element(etree.tostring(root), "_md1")
        metadata_path, signer_path = tmp_path / "md.xml", tmp_path / "fed.pem"
        metadata_path.write_bytes(signed_md)
        signer_path.write_bytes(federation.keys[0].cert_pem)
        settings = {
            "type": "saml",
            "name": PROVIDER,
            "metadata_file": str(metadata_path),
            "metadata_signing_certificate": str(signer_path),
        }
        provider = await started(settings, clock)
        try:
            assert (await provider.authenticate(token(idp))).subject == "alice@example.com"
            metadata_path.write_bytes(signed_md.replace(idp.entity_id.encode(), b"https://evil.example/idp"))
            with pytest.raises(IDPCommunicationError) as info:
                await provider.reload_metadata()
            assert "signature" in info.value.message
            metadata_path.write_bytes(idp.metadata_xml())  # unsigned
            with pytest.raises(IDPCommunicationError):
                await provider.reload_metadata()
        finally:
            await provider.close()


async def test_rollover_between_rsa_and_ec_keys(clock: Clock) -> None:
    with SAMLTestIdP() as idp:
        ec_key = idp.add_signing_key(kind="EC")
        provider = await started(idp.provider_config(PROVIDER), clock)
        try:
            unsigned = idp.response(roles=[(ROLE_ARN, PROVIDER_ARN)], sign_response=False)
            response_id = etree.fromstring(unsigned).get("ID")
            assert response_id is not None
            ec_signed = idp.sign_element(
                unsigned, response_id, key=idp.keys[ec_key], sign_alg=ECDSA_SHA256, with_cert=False
            )
            identity = await provider.authenticate(SAMLTestIdP.b64(ec_signed))
            assert identity.subject == "alice@example.com"
            assert (
                await provider.authenticate(token(idp, sign_alg=RSA_SHA256))
            ).subject == "alice@example.com"
        finally:
            await provider.close()
