"""The IdP's SAML metadata: parsed with pysaml2's models, loaded from a file, a URL or the settings
themselves (``metadata_document``, a provider created through the IAM API), kept fresh.

Only this is taken from the metadata: the IdP's ``entityID``, its signing certificates
(``KeyDescriptor`` with ``use="signing"`` or no ``use``) of the ``IDPSSODescriptor``, and its
HTTP-Redirect single sign-on and single logout endpoints (for SP-initiated browser sign-in). Several
certificates are normal during a key rollover; a response verifies if any of them signed it.

The document is refused unread when larger than :data:`MAX_METADATA_BYTES` or when it carries a
DTD. When ``metadata_signing_certificate`` is configured the document must be signed with it and
only the signed bytes are parsed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, final

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from saml2 import BINDING_HTTP_REDIRECT, md

from fedgate_saml.config import SAMLProviderSettings
from fedgate_saml.xmlsig import TrustedCert, has_dtd, verify_metadata_signature
from gateway.errors import IDPCommunicationError
from gateway.plugin import client_tls

__all__ = ["MAX_METADATA_BYTES", "IdPMetadata", "MetadataError", "MetadataSource", "parse_metadata"]

#: Largest metadata document read; a federation aggregate should be filtered before it gets here.
MAX_METADATA_BYTES: Final = 5 << 20
_MIN_RSA_BITS: Final = 2048

log = logging.getLogger(__name__)


class MetadataError(ValueError):
    """The metadata document is unusable; the message says why (it never quotes the document)."""


@dataclass(frozen=True, slots=True)
class IdPMetadata:
    """What fedgate trusts about one IdP."""

    entity_id: str
    certs: tuple[TrustedCert, ...]
    sso_redirect: str | None = None
    """``SingleSignOnService`` location for the HTTP-Redirect binding, if the IdP has one."""
    slo_redirect: str | None = None
    """``SingleLogoutService`` location for the HTTP-Redirect binding, if the IdP has one."""


def parse_metadata(document: bytes, *, entity_id: str | None, signer: x509.Certificate | None) -> IdPMetadata:
    """Parse an ``EntityDescriptor`` or ``EntitiesDescriptor``; raise :class:`MetadataError`."""
    if len(document) > MAX_METADATA_BYTES:
        raise MetadataError("metadata document is too large")
    if has_dtd(document):
        raise MetadataError("metadata document contains a DTD or entity declarations")
    if signer is not None:
        try:
            document = verify_metadata_signature(document, signer)
        except ValueError as exc:
            raise MetadataError(f"metadata signature is invalid: {exc}") from None
    try:
        text = document.decode("utf-8")
        descriptors = _entity_descriptors(text)
    except (UnicodeDecodeError, SyntaxError, ValueError, AttributeError, RecursionError) as exc:
        raise MetadataError(f"metadata is not a SAML metadata document ({type(exc).__name__})") from None
    idps = [d for d in descriptors if d.idpsso_descriptor]
    if entity_id is not None:
        idps = [d for d in idps if d.entity_id == entity_id]
    if not idps:
        raise MetadataError("metadata describes no matching identity provider (IDPSSODescriptor)")
    if len(idps) > 1:
        raise MetadataError("metadata describes several identity providers; set entity_id")
    descriptor = idps[0]
    certs: list[TrustedCert] = []
    for sso in descriptor.idpsso_descriptor:
        for key_descriptor in sso.key_descriptor or []:
            if key_descriptor.use not in (None, "signing"):
                continue
            key_info = key_descriptor.key_info
            for data in (key_info.x509_data if key_info is not None else None) or []:
                if data.x509_certificate is not None and data.x509_certificate.text:
                    cert = _load_cert(data.x509_certificate.text)
                    if cert is not None and all(c.der != cert.der for c in certs):
                        certs.append(cert)
    if not certs:
        raise MetadataError("metadata lists no usable signing certificate (RSA >= 2048 bits or EC)")
    return IdPMetadata(
        entity_id=str(descriptor.entity_id),
        certs=tuple(certs),
        sso_redirect=_redirect_location(descriptor, "single_sign_on_service"),
        slo_redirect=_redirect_location(descriptor, "single_logout_service"),
    )


def _redirect_location(descriptor: Any, service: str) -> str | None:
    # Only absolute http(s) URLs: the browser is sent there, so nothing else may come from metadata.
    for sso in descriptor.idpsso_descriptor:
        for endpoint in getattr(sso, service, None) or []:
            location = str(endpoint.location or "")
            if endpoint.binding == BINDING_HTTP_REDIRECT and location.startswith(("https://", "http://")):
                return location
    return None


def _entity_descriptors(text: str) -> list[Any]:
    # pysaml2's generated models (parsed with defusedxml); each returns None for another root element.
    entity = md.entity_descriptor_from_string(text)
    if entity is not None:
        return [entity]
    entities = md.entities_descriptor_from_string(text)
    if entities is None:
        raise ValueError("neither an EntityDescriptor nor an EntitiesDescriptor")
    found: list[Any] = list(entities.entity_descriptor or [])
    pending = list(entities.entities_descriptor or [])
    while pending:  # nested groups
        group = pending.pop()
        found.extend(group.entity_descriptor or [])
        pending.extend(group.entities_descriptor or [])
    return found


def _load_cert(text: str) -> TrustedCert | None:
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
    except (binascii.Error, ValueError):
        log.warning("skipping an unreadable certificate in SAML metadata")
        return None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= _MIN_RSA_BITS:
        return TrustedCert.of(cert)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return TrustedCert.of(cert)
    log.warning("skipping a weak or unsupported signing key in SAML metadata")
    return None


@final
class MetadataSource:
    """The current metadata of one provider, reloaded every ``metadata_refresh_seconds``.

    A reload that fails keeps the last good metadata and logs a warning. ``monotonic`` is
    injectable so tests can trigger a refresh without waiting.
    """

    def __init__(
        self,
        settings: SAMLProviderSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        report: Callable[[bool], None] = lambda ok: None,
    ) -> None:
        self._settings = settings
        self._report = report
        self._monotonic = monotonic
        self._current: IdPMetadata | None = None
        self._loaded_at = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._signer: x509.Certificate | None = None
        self._tls = client_tls(settings.ca_file)
        if settings.metadata_signing_certificate is not None:
            try:
                pem = settings.metadata_signing_certificate.read_bytes()
                self._signer = x509.load_pem_x509_certificate(pem)
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read metadata_signing_certificate: {exc}") from None
        self.loads = 0
        """Successful (re)loads, for metrics and tests."""
        self.document = b""
        """The document the metadata in force was read from (empty until the first load)."""

    async def start(self) -> None:
        """Load the metadata once (a failure is retried on first use) and start the refresh task."""
        if self._settings.metadata_url is not None and self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._tls) if self._tls is not None else None,
                timeout=aiohttp.ClientTimeout(total=self._settings.http_timeout),
                auto_decompress=False,
                headers={"Accept-Encoding": "identity"},
            )
        with contextlib.suppress(IDPCommunicationError):  # already logged; authenticate() retries
            await self.reload()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def close(self) -> None:
        """Stop refreshing and close the HTTP session."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def cached(self) -> IdPMetadata | None:
        """The metadata in force, without loading it; ``None`` before the first successful load."""
        return self._current

    async def current(self) -> IdPMetadata:
        """The metadata in force; loaded now if there is none, reloaded if overdue."""
        stale = self._monotonic() - self._loaded_at >= self._settings.metadata_refresh_seconds
        if self._current is None or stale:
            try:
                await self.reload()
            except IDPCommunicationError:
                if self._current is None:
                    raise
        assert self._current is not None
        return self._current

    async def reload(self) -> IdPMetadata:
        """Fetch and parse the metadata now; raise :class:`IDPCommunicationError` on failure."""
        async with self._lock:
            try:
                document = await self._read()
                metadata = parse_metadata(document, entity_id=self._settings.entity_id, signer=self._signer)
            except MetadataError as exc:
                self._report(False)
                log.warning("SAML provider %s: %s", self._settings.name, exc)
                raise IDPCommunicationError(f"the SAML provider's metadata is unusable: {exc}") from None
            except IDPCommunicationError:
                self._report(False)
                raise
            self._report(True)
            if self._current is not None and metadata != self._current:
                log.info(
                    "SAML provider %s: metadata changed (%d certificates)",
                    self._settings.name,
                    len(metadata.certs),
                )
            self._current, self._loaded_at = metadata, self._monotonic()
            self.document = document
            self.loads += 1
            return metadata

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.metadata_refresh_seconds)
            with contextlib.suppress(IDPCommunicationError):
                await self.reload()

    async def _read(self) -> bytes:
        settings = self._settings
        if settings.metadata_document is not None:
            return settings.metadata_document.encode("utf-8", "surrogatepass")
        if settings.metadata_file is not None:
            try:
                return await asyncio.to_thread(_read_file, settings)
            except OSError as exc:
                log.warning(
                    "SAML provider %s: cannot read %s: %s",
                    settings.name,
                    settings.metadata_file,
                    exc.strerror,
                )
                raise IDPCommunicationError("the SAML provider's metadata file cannot be read") from None
        assert settings.metadata_url is not None
        if self._session is None:
            raise RuntimeError("SAMLProvider.start() was not called")
        body = bytearray()
        try:
            # Redirects are not followed: one could downgrade to http or leave the IdP's host.
            async with self._session.get(settings.metadata_url, allow_redirects=False) as resp:
                encoding = resp.headers.get("Content-Encoding", "identity").lower()
                if resp.status != 200 or encoding != "identity":
                    log.warning(
                        "SAML provider %s: metadata fetch got HTTP %s (%s)",
                        settings.name,
                        resp.status,
                        encoding,
                    )
                    raise IDPCommunicationError("the SAML provider's metadata URL did not answer usefully")
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > MAX_METADATA_BYTES:
                        raise IDPCommunicationError("the SAML provider's metadata document is too large")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("SAML provider %s: metadata fetch failed: %s", settings.name, type(exc).__name__)
            raise IDPCommunicationError("could not reach the SAML provider's metadata URL") from exc
        return bytes(body)


def _read_file(settings: SAMLProviderSettings) -> bytes:
    assert settings.metadata_file is not None
    with settings.metadata_file.open("rb") as fh:
        data = fh.read(MAX_METADATA_BYTES + 1)
    return data
