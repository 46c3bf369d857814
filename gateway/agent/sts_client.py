"""A minimal STS Query client for the agent: one POST per renewal, the XML answer parsed strictly.

:func:`parse_credentials_response` is pure (no I/O) and treats the answer as untrusted: a size
limit before parsing, no DTD or entities, every field checked, and an STS ``ErrorResponse`` turned
into a :class:`~gateway.agent.errors.GatewayRefused` whose message carries its code. The gateway's
messages never contain secrets; they are still shortened and stripped of control characters before
they reach a log line.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from datetime import UTC, datetime
from importlib.metadata import version
from typing import final
from urllib.parse import urlencode, urlsplit

import aiohttp
from lxml import etree

from gateway.agent.config import GatewaySettings
from gateway.agent.credentials import Credentials
from gateway.agent.errors import GatewayRefused, GatewayUnreachable
from gateway.net import client_tls
from gateway.sigv4 import HttpRequest
from gateway.sigv4.sign import sign
from gateway.sts.xml import NAMESPACE

__all__ = ["MAX_RESPONSE_BYTES", "StsClient", "parse_credentials_response"]

MAX_RESPONSE_BYTES = 64 * 1024
_FORM = "application/x-www-form-urlencoded; charset=utf-8"
_NS = {"sts": NAMESPACE}
_ACCESS_KEY_RE = re.compile(r"^[A-Z0-9]{16,128}\Z")
_SECRET_RE = re.compile(r"^[\x21-\x7e]{16,256}\Z")
_TOKEN_RE = re.compile(r"^[\x21-\x7e]{16,8192}\Z")
_ARN_RE = re.compile(r"^arn:[\x21-\x7e]{1,2048}\Z")


def _clean(text: str | None, limit: int = 300) -> str:
    """``text`` with control characters removed and cut to ``limit``: it ends up in logs."""
    cleaned = "".join(c for c in (text or "") if c.isprintable())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def _parse_xml(body: bytes) -> etree._Element | None:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        return None
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, encoding="utf-8"
    )
    try:
        return etree.fromstring(body, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None


def _expiration(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("Expiration is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError("Expiration has no time zone")
    return moment


def parse_credentials_response(action: str, status: int, body: bytes) -> Credentials:
    """The credentials in an STS ``{action}Response``, or the error an ``ErrorResponse`` names.

    Raises :class:`GatewayRefused` for an STS error document and :class:`GatewayUnreachable` for
    anything that is not a well-formed STS answer.
    """
    if len(body) > MAX_RESPONSE_BYTES:
        raise GatewayUnreachable(
            f"the gateway's answer to {action} is larger than {MAX_RESPONSE_BYTES} bytes"
        )
    root = _parse_xml(body)
    if root is None:
        raise GatewayUnreachable(f"the gateway answered {action} with HTTP {status} and no STS document")
    if root.tag == f"{{{NAMESPACE}}}ErrorResponse" or root.tag == "ErrorResponse":
        code = _clean(root.findtext(".//{*}Error/{*}Code"), 64) or "UnknownError"
        message = _clean(root.findtext(".//{*}Error/{*}Message"))
        raise GatewayRefused(f"the gateway refused {action} ({code}): {message}".rstrip(": "))
    if status != 200 or root.tag != f"{{{NAMESPACE}}}{action}Response":
        raise GatewayUnreachable(f"the gateway answered {action} with HTTP {status} and no credentials")
    result = root.find(f"sts:{action}Result", _NS)
    creds = result.find("sts:Credentials", _NS) if result is not None else None
    if result is None or creds is None:
        raise GatewayUnreachable(f"the gateway's answer to {action} holds no Credentials")
    fields = {
        name: (creds.findtext(f"sts:{name}", namespaces=_NS) or "").strip()
        for name in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
    }
    arn = (result.findtext("sts:AssumedRoleUser/sts:Arn", namespaces=_NS) or "").strip()
    try:
        if not _ACCESS_KEY_RE.match(fields["AccessKeyId"]):
            raise ValueError("AccessKeyId is malformed")
        if not _SECRET_RE.match(fields["SecretAccessKey"]):
            raise ValueError("SecretAccessKey is malformed")
        if not _TOKEN_RE.match(fields["SessionToken"]):
            raise ValueError("SessionToken is malformed")
        if arn and not _ARN_RE.match(arn):
            raise ValueError("AssumedRoleUser.Arn is malformed")
        expiration = _expiration(fields["Expiration"])
    except ValueError as exc:
        raise GatewayUnreachable(f"the gateway's answer to {action} is unusable: {exc}") from None
    return Credentials(
        access_key_id=fields["AccessKeyId"],
        secret_access_key=fields["SecretAccessKey"],
        session_token=fields["SessionToken"],
        expiration=expiration,
        arn=arn or None,
    )


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError | ssl.SSLError):
        return f"TLS failed ({_clean(str(exc), 200)})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _clean(exc.os_error.strerror or str(exc.os_error), 200) or "connection failed"
    return _clean(str(exc), 200) or type(exc).__name__


@final
class StsClient:
    """Calls the gateway's STS endpoint over one shared :class:`aiohttp.ClientSession`."""

    def __init__(self, settings: GatewaySettings, session: aiohttp.ClientSession) -> None:
        self._url = settings.url
        self._region = settings.region
        self._timeout = settings.timeout_seconds
        self._session = session

    @staticmethod
    def open_session(settings: GatewaySettings) -> aiohttp.ClientSession:
        """The HTTP session for ``settings`` (its CA file, timeout; no proxy from the environment).

        Raises :class:`~gateway.errors.ConfigError` when the CA file stopped loading since validation.
        """
        context = client_tls(settings.ca_file)
        return aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds),
            connector=aiohttp.TCPConnector(ssl=context if context is not None else True),
            # Decompression would let a small answer expand past the size limit in one step.
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={
                "Accept-Encoding": "identity",
                "User-Agent": f"fedgate-agent/{version('fedgate')}",
            },
        )

    async def assume_role_with_web_identity(
        self, *, role_arn: str, session_name: str, token: str, duration_seconds: int
    ) -> Credentials:
        """AssumeRoleWithWebIdentity (unsigned: the token is the proof)."""
        return await self._call(
            "AssumeRoleWithWebIdentity",
            {
                "RoleArn": role_arn,
                "RoleSessionName": session_name,
                "WebIdentityToken": token,
                "DurationSeconds": str(duration_seconds),
            },
        )

    async def assume_role(
        self,
        *,
        role_arn: str,
        session_name: str,
        duration_seconds: int,
        access_key_id: str,
        secret_access_key: str,
        external_id: str | None = None,
    ) -> Credentials:
        """AssumeRole, signed with SigV4 (service ``sts``) by a long-term access key."""
        params = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": str(duration_seconds),
        }
        if external_id is not None:
            params["ExternalId"] = external_id
        return await self._call("AssumeRole", params, signer=(access_key_id, secret_access_key))

    def _signed_headers(self, body: str, access_key_id: str, secret_access_key: str) -> dict[str, str]:
        """The headers of a SigV4-signed POST of ``body`` to the gateway's URL, signed now."""
        url = urlsplit(self._url)
        request = HttpRequest(
            method="POST",
            raw_path=url.path or "/",
            raw_query="",
            headers=(("Host", url.netloc), ("Content-Type", _FORM)),
            payload_sha256=hashlib.sha256(body.encode()).hexdigest(),
        )
        signed = sign(
            request,
            access_key_id=access_key_id,
            secret_key=secret_access_key,
            region=self._region,
            service="sts",
            now=datetime.now(UTC),
        )
        # aiohttp sets Host itself from the URL (the value signed above).
        return {name: value for name, value in signed.headers if name.lower() != "host"}

    async def _call(
        self, action: str, params: dict[str, str], *, signer: tuple[str, str] | None = None
    ) -> Credentials:
        body = urlencode({"Action": action, "Version": "2011-06-15", **params})
        headers = {"Content-Type": _FORM}
        if signer is not None:
            headers = self._signed_headers(body, *signer)
        try:
            async with self._session.post(
                self._url,
                data=body,
                headers=headers,
                allow_redirects=False,  # a redirect would carry the token somewhere else
            ) as response:
                status = response.status
                raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise GatewayUnreachable(
                f"cannot reach the gateway at {self._url}: {_describe(exc, self._timeout)}"
            ) from None
        return parse_credentials_response(action, status, raw)
