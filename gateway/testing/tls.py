"""A certificate authority for tests: TLS servers on loopback that only its bundle trusts.

For testing anything that fetches over https from an issuer behind a private CA (``ca_file``)::

    with TestCA() as ca:
        async with OIDCTestIssuer(tls=ca.server_context()) as idp:   # https://127.0.0.1:PORT
            config = idp.provider_config(ca_file=str(ca.cert_file))

Keys are EC P-256 (fast to make) and certificates real X.509, made with ``cryptography``; the
server certificate names ``127.0.0.1``, ``::1`` and ``localhost``. It is for tests only: keys live
in a temporary directory, deleted on close.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Self, final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestCA"]

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@final
class TestCA:
    """A self-signed root CA that issues server certificates; use as a context manager.

    Attributes:
        cert_file: the CA certificate (PEM), what a ``ca_file`` setting points at.
        cert_pem: the same, as bytes.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "fedgate test CA") -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="fedgate-ca-"))
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = self._cert.public_bytes(serialization.Encoding.PEM)
        self.cert_file = self._dir / "ca.pem"
        self.cert_file.write_bytes(self.cert_pem)
        self._issued = 0

    def issue(self, hosts: tuple[str, ...] = _LOOPBACK) -> tuple[Path, Path]:
        """A server certificate for ``hosts`` (IP addresses or DNS names): ``(cert_file, key_file)``."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(hosts[0]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self._issued += 1
        cert_file = self._dir / f"server{self._issued}.pem"
        key_file = self._dir / f"server{self._issued}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(_pem_key(key))
        return cert_file, key_file

    def server_context(self, hosts: tuple[str, ...] = _LOOPBACK) -> ssl.SSLContext:
        """A server-side TLS context presenting a fresh certificate for ``hosts``, for
        ``aiohttp.web.TCPSite(ssl_context=...)``."""
        cert_file, key_file = self.issue(hosts)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        return context

    def close(self) -> None:
        """Delete the key directory."""
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
