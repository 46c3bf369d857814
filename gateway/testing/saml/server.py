"""The test IdP's server: pysaml2's IdP code, serving metadata, browser sign-on and single logout.

:class:`SAMLTestIdP` builds responses with pysaml2's own IdP code (:class:`saml2.server.Server`)
and signs them in process with python-xmlsec, through a pysaml2 crypto backend, so no ``xmlsec1``
program is needed. Keys and certificates are real (RSA 2048, generated with ``cryptography``)::

    with SAMLTestIdP() as idp:
        settings = idp.provider_config(name="corp")       # {"type": "saml", "metadata_file": ...}
        xml = idp.response(roles=[(ROLE_ARN, idp.provider_arn("123456789012", "corp"))],
                           session_name="alice", sign_assertion=True, sign_response=False)
        token = SAMLTestIdP.b64(xml)                        # what AssumeRoleWithSAML receives
        idp.add_signing_key(); idp.active_key = 1           # rollover: publish, then sign with it
        async with idp.serve() as url: ...                  # metadata over HTTP on 127.0.0.1

:meth:`SAMLTestIdP.serve` also serves a browser single sign-on endpoint (HTTP-Redirect binding,
listed in the metadata while served): it inflates the AuthnRequest, verifies its signature with
``sp_certificate`` when set, shows a username form, and answers with a page whose form POSTs the
signed response to the requester's ACS (a visible "Continue" button: no JavaScript needed). Roles
granted per username come from ``user_roles``. The single logout endpoint ``/saml/slo``
(HTTP-Redirect, listed in the metadata while served) verifies an SP's LogoutRequest with
``sp_certificate``, records it in ``logout_requests`` and redirects to the SP's SLO URL (from
``sp_slo_urls``, or the SP's metadata when its entity id is a loopback URL) with a signed
LogoutResponse; LogoutResponses it receives are recorded in ``logout_responses``.
:meth:`SAMLTestIdP.logout_request_url` builds an IdP-initiated LogoutRequest.

For attacks, :meth:`SAMLTestIdP.sign_element` signs any element of any document (by its ``ID``)
with any key and algorithm, :meth:`SAMLTestIdP.hmac_sign_element` makes an HMAC signature, and the
namespace constants help locate elements. It is for tests only: keys live in a temporary directory.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import secrets
import shutil
import ssl
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web
from cryptography.utils import CryptographyDeprecationWarning
from lxml import etree
from multidict import MultiDict
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, md, saml, xmldsig
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.sigver import CryptoBackend
from yarl import URL

from gateway.arns import saml_provider_arn
from gateway.testing.saml import messages
from gateway.testing.saml.messages import (
    AWS_ACS,
    AWS_AUDIENCE,
    PASSWORD_CLASS,
    ROLE_ATTR,
    RSA_SHA256,
    SAML_NS,
    SAML_STATUS_SUCCESS,
    SAMLP_NS,
    SESSION_NAME_ATTR,
    SHA256,
    TestKey,
    make_key,
    page,
    sp_metadata,
)

# pysaml2's server module touches a cipher mode that cryptography deprecates; harmless here (no
# symmetric crypto is used), and it must not turn into an error under filterwarnings=error.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from saml2.server import Server

__all__ = ["SAMLTestIdP"]

_URI_FORMAT = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
_KNOWN_SPS = (AWS_AUDIENCE, "urn:amazon:webservices", "https://sp.other.test/saml")


class _InProcessSigner(CryptoBackend):  # type: ignore[misc]
    """pysaml2 crypto backend that signs pysaml2's own signature templates with python-xmlsec."""

    def __init__(self, idp: SAMLTestIdP) -> None:
        super().__init__()
        self._idp = idp

    @property
    def version(self) -> str:
        return "python-xmlsec"

    def sign_statement(self, statement: Any, node_name: str, key_file: str, node_id: str) -> str:
        raw = statement if isinstance(statement, bytes) else str(statement).encode()
        key = self._idp.keys[self._idp.active_key]
        return SAMLTestIdP.sign_template(raw, node_id, key.key_pem).decode()


class SAMLTestIdP:
    """A SAML IdP built on pysaml2's ``Server``, signing in process; use as a (async) context manager.

    Attributes that tests may change:
        active_key: index into ``keys`` of the key responses are signed with.
        published: indexes of the keys listed as signing keys in the metadata.
        sp_certificate: PEM certificate AuthnRequests must be signed with (``None``: not checked).
        user_roles: ``(role_arn, provider_arn)`` pairs granted per username at the SSO form.
    Counter: ``metadata_fetches`` (requests served by :meth:`serve`). ``authn_requests`` records the
    AuthnRequests the SSO endpoint accepted (``id``, ``acs``, ``issuer``, ``signed``; and the
    ``session_index`` issued once the user signed in).
    """

    def __init__(
        self,
        *,
        entity_id: str = "https://idp.example.test/saml/metadata",
        keys: int = 1,
        cert_valid_days: int = 365,
    ) -> None:
        self.entity_id = entity_id
        self._dir = Path(tempfile.mkdtemp(prefix="fedgate-saml-idp-"))
        self.keys: list[TestKey] = [
            make_key(self._dir, f"k{i}", valid_days=cert_valid_days) for i in range(keys)
        ]
        self.active_key = 0
        self.published: list[int] = list(range(keys))
        self.metadata_fetches = 0
        self.sp_certificate: bytes | None = None
        self.user_roles: dict[str, list[tuple[str, str]]] = {}
        self.authn_requests: list[dict[str, Any]] = []
        self.sso_url: str | None = None
        self.slo_url: str | None = None
        self.sp_slo_urls: dict[str, str] = {}
        self.logout_status = SAML_STATUS_SUCCESS
        self.logout_requests: list[dict[str, Any]] = []
        self.logout_responses: list[dict[str, Any]] = []
        self._pending: dict[str, dict[str, Any]] = {}
        self._sps: set[str] = set()
        self._server = self._build_server()

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Delete the key directory."""
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _build_server(self) -> Server:
        known = "".join(sp_metadata(entity, AWS_ACS) for entity in _KNOWN_SPS)
        conf = IdPConfig().load(
            {
                "entityid": self.entity_id,
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [
                                ("https://idp.example.test/sso/redirect", BINDING_HTTP_REDIRECT),
                                ("https://idp.example.test/sso/post", BINDING_HTTP_POST),
                            ]
                        },
                        "policy": {
                            "default": {
                                "lifetime": {"minutes": 5},
                                "attribute_restrictions": None,
                                "name_form": _URI_FORMAT,
                            }
                        },
                        "name_id_format": [saml.NAMEID_FORMAT_PERSISTENT, saml.NAMEID_FORMAT_TRANSIENT],
                    }
                },
                "key_file": str(self.keys[0].key_file),
                "cert_file": str(self.keys[0].cert_file),
                "metadata": {
                    "inline": [
                        f'<md:EntitiesDescriptor xmlns:md="{md.NAMESPACE}">{known}</md:EntitiesDescriptor>'
                    ]
                },
                # A backend that needs no xmlsec1 program; replaced by _InProcessSigner below.
                "crypto_backend": "XMLSecurity",
            }
        )
        server = Server(config=conf)
        server.sec.crypto = _InProcessSigner(self)
        return server

    # -- metadata -------------------------------------------------------------------------------

    def add_signing_key(
        self, *, publish: bool = True, valid_days: int = 365, not_before_days: int = -1, kind: str = "RSA"
    ) -> int:
        """Generate another signing key, RSA 2048 or ``kind="EC"`` (P-256), published in the metadata
        unless told not to; return its index. pysaml2 signs with RSA only: sign with an EC key through
        :meth:`sign_element` (``sign_alg=ECDSA_SHA256``)."""
        self.keys.append(
            make_key(
                self._dir,
                f"k{len(self.keys)}",
                valid_days=valid_days,
                not_before_days=not_before_days,
                kind=kind,
            )
        )
        index = len(self.keys) - 1
        if publish:
            self.published.append(index)
        return index

    def metadata_xml(self) -> bytes:
        """The IdP's metadata (pysaml2's ``entity_descriptor``), listing every published signing key."""
        descriptor = entity_descriptor(self._server.config)
        sso = descriptor.idpsso_descriptor
        sso = sso[0] if isinstance(sso, list) else sso
        sso.key_descriptor = [
            md.KeyDescriptor(
                use="signing",
                key_info=xmldsig.KeyInfo(
                    x509_data=[xmldsig.X509Data(x509_certificate=xmldsig.X509Certificate(text=k.cert_b64))]
                ),
            )
            for k in (self.keys[i] for i in self.published)
        ]
        if self.sso_url is not None:
            sso.single_sign_on_service = [
                md.SingleSignOnService(binding=BINDING_HTTP_REDIRECT, location=self.sso_url)
            ]
        if self.slo_url is not None:
            sso.single_logout_service = [
                md.SingleLogoutService(binding=BINDING_HTTP_REDIRECT, location=self.slo_url)
            ]
        return str(descriptor).encode()

    @property
    def metadata_file(self) -> Path:
        """A file holding the current metadata (rewritten on each access)."""
        path = self._dir / "metadata.xml"
        path.write_bytes(self.metadata_xml())
        return path

    @contextlib.asynccontextmanager
    async def serve(
        self, path: str = "/saml/metadata", *, tls: ssl.SSLContext | None = None
    ) -> AsyncIterator[str]:
        """Serve the metadata over HTTP on 127.0.0.1 (random port), or https with a ``tls`` server
        context (:meth:`gateway.testing.tls.TestCA.server_context`); yields its URL.

        The single sign-on endpoint ``/saml/sso`` is served too, and listed in the metadata
        (:attr:`sso_url`) until the server stops: read :attr:`metadata_file` inside the block.
        """

        async def handler(_: web.Request) -> web.Response:
            self.metadata_fetches += 1
            return web.Response(body=self.metadata_xml(), content_type="application/samlmetadata+xml")

        app = web.Application()
        app.router.add_get(path, handler)
        app.router.add_get("/saml/sso", self._sso)
        app.router.add_post("/saml/sso/login", self._sso_login)
        app.router.add_get("/saml/slo", self._slo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        port = runner.addresses[0][1]
        base = f"{'https' if tls is not None else 'http'}://127.0.0.1:{port}"
        self.sso_url = f"{base}/saml/sso"
        self.slo_url = f"{base}/saml/slo"
        try:
            yield f"{base}{path}"
        finally:
            self.sso_url = self.slo_url = None
            await runner.cleanup()

    # -- browser single sign-on (HTTP-Redirect in, HTTP-POST out) ---------------------------------

    def _signature(self, request: web.Request, parameter: str) -> bool | None:
        """Whether the message was signed and checked (with :attr:`sp_certificate`, when set), or
        ``None`` when its signature does not verify."""
        if self.sp_certificate is None:
            return False
        # The signature covers the octets as sent (bindings 3.4.4.1), so they are taken unparsed.
        raw: dict[str, str] = {}
        for part in request.rel_url.raw_query_string.split("&"):
            raw.setdefault(part.partition("=")[0], part)
        signed_part = "&".join(raw[n] for n in (parameter, "RelayState", "SigAlg") if n in raw)
        query = request.query
        if not self.verify_redirect_signature(signed_part, query.get("SigAlg"), query.get("Signature")):
            return None
        return True

    async def _sso(self, request: web.Request) -> web.Response:
        query = request.query
        if "SAMLRequest" not in query:
            return web.Response(status=400, text="SAMLRequest missing")
        signed = self._signature(request, "SAMLRequest")
        if signed is None:
            return web.Response(status=403, text="AuthnRequest signature is invalid")
        try:
            root = messages.inflate(query["SAMLRequest"])
        except ValueError:
            return web.Response(status=400, text="SAMLRequest is not a deflated AuthnRequest")
        issuer = root.find(f"{{{SAML_NS}}}Issuer")
        found = {
            "id": root.get("ID", ""),
            "acs": root.get("AssertionConsumerServiceURL", ""),
            "issuer": (issuer.text or "") if issuer is not None else "",
            "destination": root.get("Destination"),
            "relay_state": query.get("RelayState", ""),
            "signed": signed,
        }
        if root.tag != f"{{{SAMLP_NS}}}AuthnRequest" or not all(found[k] for k in ("id", "acs", "issuer")):
            return web.Response(status=400, text="not an AuthnRequest with ID, ACS URL and Issuer")
        self.authn_requests.append(found)
        token = secrets.token_urlsafe(16)
        self._pending[token] = found
        body = (
            "<form method=post action=/saml/sso/login><h1>Test SAML IdP</h1>"
            "<label for=username>Username</label> <input id=username name=username autofocus>"
            f'<input type=hidden name=pending value="{token}"> <button type=submit>Sign in</button></form>'
        )
        return web.Response(text=page(body), content_type="text/html")

    async def _sso_login(self, request: web.Request) -> web.Response:
        form: MultiDict[Any] = MultiDict(await request.post())
        pending = self._pending.pop(str(form.get("pending", "")), None)
        username = str(form.get("username", ""))
        if pending is None or not username:
            return web.Response(status=400, text="unknown sign-in or no username")
        xml = self.response(
            roles=self.user_roles.get(username, []),
            session_name=username,
            name_id=f"{username}@example.com",
            sp_entity_id=pending["issuer"],
            destination=pending["acs"],
            in_response_to=pending["id"],
        )
        statement = etree.fromstring(xml).find(f".//{{{SAML_NS}}}AuthnStatement")
        pending["session_index"] = statement.get("SessionIndex") if statement is not None else None
        return web.Response(
            text=self.post_page(xml, pending["acs"], pending["relay_state"]), content_type="text/html"
        )

    # -- single logout (HTTP-Redirect both ways) ------------------------------------------------------

    async def _slo(self, request: web.Request) -> web.Response:
        query = request.query
        parameter = "SAMLRequest" if "SAMLRequest" in query else "SAMLResponse"
        if parameter not in query:
            return web.Response(status=400, text="SAMLRequest or SAMLResponse missing")
        signed = self._signature(request, parameter)
        if signed is None:
            return web.Response(status=403, text="logout message signature is invalid")
        try:
            root = messages.inflate(query[parameter])
        except ValueError:
            return web.Response(status=400, text="not a deflated SAML message")
        issuer = root.findtext(f"{{{SAML_NS}}}Issuer") or ""
        common = {
            "id": root.get("ID", ""),
            "issuer": issuer,
            "destination": root.get("Destination"),
            "relay_state": query.get("RelayState", ""),
            "signed": signed,
        }
        if parameter == "SAMLResponse":
            code = root.find(f"{{{SAMLP_NS}}}Status/{{{SAMLP_NS}}}StatusCode")
            status = code.get("Value") if code is not None else None
            self.logout_responses.append(
                {**common, "in_response_to": root.get("InResponseTo"), "status": status}
            )
            return web.Response(text=page("<h1>Signed out at the test IdP</h1>"), content_type="text/html")
        name_id = root.find(f"{{{SAML_NS}}}NameID")
        if issuer not in self.sp_slo_urls and issuer.startswith("http://127.0.0.1:"):
            await self._learn_sp_slo_url(issuer)
        if root.tag != f"{{{SAMLP_NS}}}LogoutRequest" or name_id is None or issuer not in self.sp_slo_urls:
            return web.Response(status=400, text="not a LogoutRequest with a NameID from a known SP")
        self.logout_requests.append(
            {
                **common,
                "name_id": name_id.text,
                "name_id_format": name_id.get("Format"),
                "name_qualifier": name_id.get("NameQualifier"),
                "session_index": root.findtext(f"{{{SAMLP_NS}}}SessionIndex"),
            }
        )
        target = self.logout_response_url(
            self.sp_slo_urls[issuer],
            in_response_to=str(common["id"]),
            relay_state=str(common["relay_state"]),
            status=self.logout_status,
        )
        raise web.HTTPSeeOther(URL(target, encoded=True))

    async def _learn_sp_slo_url(self, entity_id: str) -> None:
        # As a real IdP would from the SP's registered metadata; here the entity id is its URL.
        async with aiohttp.ClientSession() as http, http.get(entity_id) as response:
            descriptor = md.entity_descriptor_from_string(await response.text()) if response.ok else None
        for sp in descriptor.spsso_descriptor if descriptor is not None else []:
            for service in sp.single_logout_service or []:
                if service.binding == BINDING_HTTP_REDIRECT:
                    self.sp_slo_urls[entity_id] = str(service.location)

    def logout_request_url(
        self,
        destination: str,
        *,
        name_id: str,
        session_index: str | None = None,
        name_id_format: str = saml.NAMEID_FORMAT_PERSISTENT,
        request_id: str | None = None,
        relay_state: str = "",
        sign: bool = True,
        sign_alg: str = RSA_SHA256,
        issue_instant: datetime.datetime | None = None,
        key: TestKey | None = None,
    ) -> tuple[str, str]:
        """An IdP-initiated LogoutRequest to ``destination`` (HTTP-Redirect URL) and its ID."""
        xml, request_id = messages.logout_request(
            issuer=self.entity_id,
            destination=destination,
            name_id=name_id,
            request_id=request_id,
            session_index=session_index,
            name_id_format=name_id_format,
            issue_instant=issue_instant,
        )
        url = messages.redirect_url(
            destination,
            "SAMLRequest",
            xml,
            relay_state=relay_state,
            key=self._signer(sign, key),
            sign_alg=sign_alg,
        )
        return url, request_id

    def logout_response_url(
        self,
        destination: str,
        *,
        in_response_to: str,
        status: str = SAML_STATUS_SUCCESS,
        relay_state: str = "",
        sign: bool = True,
        sign_alg: str = RSA_SHA256,
        issue_instant: datetime.datetime | None = None,
        key: TestKey | None = None,
    ) -> str:
        """A LogoutResponse to ``destination`` answering ``in_response_to`` (HTTP-Redirect URL)."""
        xml = messages.logout_response(
            issuer=self.entity_id,
            destination=destination,
            in_response_to=in_response_to,
            status=status,
            issue_instant=issue_instant,
        )
        return messages.redirect_url(
            destination,
            "SAMLResponse",
            xml,
            relay_state=relay_state,
            key=self._signer(sign, key),
            sign_alg=sign_alg,
        )

    def _signer(self, sign: bool, key: TestKey | None) -> TestKey | None:
        return (key or self.keys[self.active_key]) if sign else None

    @staticmethod
    def post_page(xml: bytes, acs: str, relay_state: str = "") -> str:
        """An HTML page whose form POSTs ``xml`` (base64) and ``relay_state`` to ``acs``."""
        return messages.post_page(xml, acs, relay_state)

    def verify_redirect_signature(self, signed_part: str, sig_alg: str | None, signature: str | None) -> bool:
        """Whether ``signature`` (base64) over ``signed_part`` verifies with :attr:`sp_certificate`."""
        return messages.verify_redirect_signature(self.sp_certificate, signed_part, sig_alg, signature)

    def register_sp(self, entity_id: str, acs: str) -> None:
        """Let the IdP answer the SP ``entity_id`` (pysaml2 needs its metadata), posting to ``acs``."""
        if entity_id not in self._sps:
            self._server.metadata.load(
                "inline",
                f'<md:EntitiesDescriptor xmlns:md="{md.NAMESPACE}">{sp_metadata(entity_id, acs)}'
                "</md:EntitiesDescriptor>",
            )
            self._sps.add(entity_id)

    def provider_config(self, name: str = "test-idp", **overrides: Any) -> dict[str, Any]:
        """Settings of a ``saml`` provider trusting this IdP through its metadata file."""
        return {"type": "saml", "name": name, "metadata_file": str(self.metadata_file), **overrides}

    @staticmethod
    def provider_arn(account_id: str, name: str) -> str:
        """``arn:aws:iam::ACCOUNT:saml-provider/NAME``."""
        return saml_provider_arn(account_id, name)

    # -- responses ------------------------------------------------------------------------------

    def response(
        self,
        *,
        roles: Iterable[tuple[str, str] | str] = (),
        session_name: str | None = "alice@example.com",
        attributes: Mapping[str, Sequence[str]] | None = None,
        name_id: str = "alice@example.com",
        name_id_format: str = saml.NAMEID_FORMAT_PERSISTENT,
        sp_entity_id: str = AWS_AUDIENCE,
        destination: str = AWS_ACS,
        sign_response: bool = True,
        sign_assertion: bool = False,
        sign_alg: str = RSA_SHA256,
        digest_alg: str = SHA256,
        authn_class: str = PASSWORD_CLASS,
        session_not_on_or_after: str | None = None,
        in_response_to: str | None = None,
    ) -> bytes:
        """A ``samlp:Response`` built and signed by pysaml2's IdP code, as XML bytes.

        ``roles`` are ``(role_arn, provider_arn)`` pairs (joined "role,provider") or raw strings;
        ``attributes`` adds or replaces attributes by name (URI name format).
        """
        if sp_entity_id not in _KNOWN_SPS:
            self.register_sp(sp_entity_id, destination)
        identity: dict[str, list[str]] = {}
        role_values = [r if isinstance(r, str) else f"{r[0]},{r[1]}" for r in roles]
        if role_values:
            identity[ROLE_ATTR] = role_values
        if session_name is not None:
            identity[SESSION_NAME_ATTR] = [session_name]
        identity.update({k: list(v) for k, v in (attributes or {}).items()})
        result = self._server.create_authn_response(
            identity,
            in_response_to,
            destination,
            sp_entity_id,
            name_id=saml.NameID(format=name_id_format, text=name_id),
            authn={"class_ref": authn_class, "authn_auth": self.entity_id},
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            sign_alg=sign_alg,
            digest_alg=digest_alg,
            session_not_on_or_after=session_not_on_or_after,
        )
        return str(result).encode()

    @staticmethod
    def b64(xml: bytes) -> str:
        """Base64 of ``xml``: the ``SAMLAssertion`` parameter of AssumeRoleWithSAML."""
        return base64.b64encode(xml).decode("ascii")

    # -- raw signing, for building attacks ------------------------------------------------------

    # -- raw signing, for building attacks (see :mod:`gateway.testing.saml.messages`) -------------

    @staticmethod
    def sign_template(xml: bytes, element_id: str, key_pem: bytes) -> bytes:
        """Fill in the (pysaml2-made) signature template that is a child of the element ``element_id``."""
        return messages.sign_template(xml, element_id, key_pem)

    def sign_element(
        self,
        xml: bytes,
        element_id: str,
        *,
        key: TestKey | None = None,
        sign_alg: str = RSA_SHA256,
        digest_alg: str = SHA256,
        with_cert: bool = True,
    ) -> bytes:
        """Sign the element ``element_id`` of ``xml`` (any document), replacing a signature it has,
        with ``key`` (default: the active key)."""
        return messages.sign_element(
            xml,
            element_id,
            key or self.keys[self.active_key],
            sign_alg=sign_alg,
            digest_alg=digest_alg,
            with_cert=with_cert,
        )

    @staticmethod
    def hmac_sign_element(xml: bytes, element_id: str, secret: bytes) -> bytes:
        """Sign the element ``element_id`` with HMAC-SHA256 under ``secret`` (algorithm confusion)."""
        return messages.hmac_sign_element(xml, element_id, secret)
