"""SAML response validation throughput beside pysaml2's stock SP path (the peer), same responses.

Run: ``python bench/saml_bench.py``. Both validate the same RSA-SHA256 response-signed responses,
built and signed by :class:`gateway.testing.saml.SAMLTestIdP` (pysaml2's IdP code):

- **fedgate**: ``SAMLProvider.authenticate`` on the base64 response, in full: size check, base64,
  hardened parse, in-process signature verification (signxml), protocol checks, AWS attributes,
  condition keys, and the replay guard (one generation-checked mark on a MemoryStore). Every
  response has its own assertion ID (pysaml2 makes a fresh one per response) and each timed round
  uses a provider with an empty cache, so no response is refused as a replay and every call does a
  real insert.
- **pysaml2**: ``Saml2Client.parse_authn_request_response`` (HTTP-POST binding, unsolicited
  responses allowed) with the default ``CryptoBackendXmlSec1``, which runs the ``xmlsec1`` program
  for each signature; the same responses, one pass each (pysaml2 keeps no replay cache here).

For the record of the library choice it also times the bare signature verification of one
response with signxml (what fedgate uses) and with python-xmlsec (libxmlsec1 bindings).
Each figure is the best of a few timed rounds; the whole run takes about 20 s. Needs ``xmlsec1``.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography import x509

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from saml2 import BINDING_HTTP_POST
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

from fedgate_saml import SAMLProvider, SAMLProviderSettings
from gateway.identity import ProviderContext
from gateway.store.memory import MemoryStore
from gateway.testing.saml import AWS_ACS, AWS_AUDIENCE, SAMLTestIdP

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Engineers"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
FEDGATE_RESPONSES = 1000
PYSAML2_RESPONSES = 60
ROUNDS = 3


def _running_store() -> MemoryStore:
    """A store whose generation began an hour ago: a fresh one would refuse responses minted before
    it (plus the clock-skew leeway) as possibly spent before it began."""
    return MemoryStore(started=time.time() - 3600)


def _report(label: str, best: float) -> None:
    print(f"  {label:<58} {best:>9,.0f} /s  ({1000 / best:.3f} ms each)", flush=True)


async def best_rate_async(label: str, count: int, run: Callable[[int], Awaitable[None]]) -> float:
    """Await ``run(round)`` ROUNDS times over ``count`` items; print and return the best rate."""
    best = 0.0
    for round_no in range(ROUNDS):
        start = time.perf_counter()
        await run(round_no)
        best = max(best, count / (time.perf_counter() - start))
    _report(label, best)
    return best


def best_rate(label: str, count: int, run: Callable[[int], None]) -> float:
    """Run ``run(round)`` ROUNDS times over ``count`` items; print and return the best rate."""
    best = 0.0
    for round_no in range(ROUNDS):
        start = time.perf_counter()
        run(round_no)
        best = max(best, count / (time.perf_counter() - start))
    _report(label, best)
    return best


def pysaml2_client(idp: SAMLTestIdP, workdir: Path) -> Saml2Client:
    metadata = workdir / "idp.xml"
    metadata.write_bytes(idp.metadata_xml())
    config = SPConfig().load(
        {
            "entityid": AWS_AUDIENCE,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(AWS_ACS, BINDING_HTTP_POST)]},
                    "allow_unsolicited": True,
                    "want_response_signed": False,
                    "want_assertions_signed": False,
                    "want_assertions_or_response_signed": True,
                }
            },
            "metadata": {"local": [str(metadata)]},
            "xmlsec_binary": shutil.which("xmlsec1"),
            "crypto_backend": "xmlsec1",
            "accepted_time_diff": 60,
        }
    )
    return Saml2Client(config=config)


def signature_only(idp: SAMLTestIdP, xml: bytes) -> None:
    """Bare signature verification of one response: signxml versus python-xmlsec."""
    import xmlsec
    from lxml import etree
    from signxml.verifier import SignatureConfiguration, XMLVerifier

    cert = x509.load_pem_x509_certificate(idp.keys[0].cert_pem)
    config = SignatureConfiguration(location="./", ignore_ambiguous_key_info=True)
    key = xmlsec.Key.from_memory(idp.keys[0].cert_pem, xmlsec.constants.KeyDataFormatCertPem)
    n = 500

    def with_signxml(_: int) -> None:
        for _ in range(n):
            XMLVerifier().verify(xml, x509_cert=cert, expect_config=config)

    def with_xmlsec(_: int) -> None:
        for _ in range(n):
            root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False))
            ctx = xmlsec.SignatureContext()
            ctx.key = key
            ctx.register_id(root, "ID")
            signature = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
            assert signature is not None
            ctx.verify(signature)

    print("signature verification only (one response, parse included):")
    best_rate("signxml XMLVerifier (returns the signed bytes)", n, with_signxml)
    best_rate("python-xmlsec SignatureContext.verify", n, with_xmlsec)


async def main() -> int:
    if shutil.which("xmlsec1") is None:
        print(
            "xmlsec1 is not installed (apt-get install xmlsec1): the pysaml2 peer needs it", file=sys.stderr
        )
        return 1
    with SAMLTestIdP() as idp, tempfile.TemporaryDirectory() as tmp:
        print(f"building {FEDGATE_RESPONSES} signed responses with pysaml2's IdP ...", flush=True)
        xmls = [
            idp.response(roles=[(ROLE, PROVIDER)], sign_response=True, sign_assertion=False)
            for _ in range(FEDGATE_RESPONSES)
        ]
        tokens = [SAMLTestIdP.b64(x) for x in xmls]
        print(f"response size: {len(xmls[0])} bytes XML, {len(tokens[0])} characters base64\n")

        # One provider (with an empty replay cache) per round, so every round inserts every ID afresh.
        settings = SAMLProviderSettings(**idp.provider_config("corp"))
        providers = [
            SAMLProvider(settings, ProviderContext(ACCOUNT, _running_store())) for _ in range(ROUNDS + 1)
        ]
        for provider in providers:
            await provider.start()
        try:
            # Warm-up, and proof both accept the response.
            identity = await providers[-1].authenticate(tokens[0])
            assert identity.roles == ((ROLE, PROVIDER),)
            client = pysaml2_client(idp, Path(tmp))
            parsed = client.parse_authn_request_response(tokens[0], BINDING_HTTP_POST)
            assert parsed is not None and parsed.assertion.attribute_statement, "pysaml2 refused the response"

            async def fedgate(round_no: int) -> None:
                provider = providers[round_no]
                for token in tokens:
                    await provider.authenticate(token)

            def pysaml2(round_no: int) -> None:
                for token in tokens[round_no * PYSAML2_RESPONSES : (round_no + 1) * PYSAML2_RESPONSES]:
                    client.parse_authn_request_response(token, BINDING_HTTP_POST)

            print("full validation of a response (validations per second, best of 3):")
            ours = await best_rate_async(
                "fedgate SAMLProvider.authenticate (signxml, replay cache)", FEDGATE_RESPONSES, fedgate
            )
            peer = best_rate(
                "pysaml2 parse_authn_request_response (xmlsec1 program)", PYSAML2_RESPONSES, pysaml2
            )
            print(f"  ratio fedgate / pysaml2: {ours / peer:.1f}x\n")
            signature_only(idp, xmls[0])
        finally:
            for provider in providers:
                await provider.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
