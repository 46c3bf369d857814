"""HTTPS from certificate and key files, re-read when they change (``listen.tls``).

The listening socket keeps one :class:`ssl.SSLContext` for its whole life; what it presents is
chosen per handshake: its ``sni_callback`` hands each new connection the context last loaded, so a
renewed certificate (cert-manager, certbot, a rotated Secret) reaches new connections without a
restart while open ones keep theirs. :class:`TlsFiles` checks the files' size and modification
time every ``reload_interval_seconds`` (and on SIGHUP); a pair that changed is loaded into a fresh
context first, so one that does not load (half written, key and certificate mismatched) changes
nothing: the old certificate stays, and one warning line says why.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import final

from gateway.errors import ConfigError
from gateway.opsconfig import TlsSettings

__all__ = ["TlsFiles"]

log = logging.getLogger(__name__)

_Stamp = tuple[tuple[int, int], tuple[int, int]]


def _context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_mtime_ns, status.st_size


@final
class TlsFiles:
    """The server's TLS context, kept in step with ``settings``' files.

    Raises :class:`ConfigError` naming the key when the files cannot be loaded at start.
    """

    def __init__(self, settings: TlsSettings) -> None:
        self._settings = settings
        try:
            self._stamps = self._read_stamps()
            self._current = _context(settings.cert_file, settings.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"listen.tls: cannot load {settings.cert_file} and {settings.key_file}: {_why(exc)}"
            ) from None
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        """The listening socket's context: it presents whatever was loaded last."""
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.load_cert_chain(settings.cert_file, settings.key_file)
        self.context.sni_callback = self._choose
        self.loads = 1
        """How many times a certificate was loaded (for tests and logs)."""

    def _read_stamps(self) -> _Stamp:
        return _stamp(self._settings.cert_file), _stamp(self._settings.key_file)

    def _choose(self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        connection.context = self._current

    def reload(self, *, force: bool = False) -> bool:
        """Load the files again if they changed (or ``force``); ``True`` when a new pair is in use."""
        try:
            stamps = self._read_stamps()
            if stamps == self._stamps and not force:
                return False
            fresh = _context(self._settings.cert_file, self._settings.key_file)
        except (OSError, ssl.SSLError) as exc:
            log.warning("TLS certificate not reloaded, the current one stays: %s", _why(exc))
            return False
        self._current, self._stamps = fresh, stamps
        self.loads += 1
        log.info("TLS certificate reloaded", extra={"cert_file": str(self._settings.cert_file)})
        return True

    async def watch(self) -> None:
        """Check the files every ``reload_interval_seconds`` until cancelled (never, when 0)."""
        interval = self._settings.reload_interval_seconds
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            self.reload()


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return type(exc).__name__ + (f": {exc.reason}" if isinstance(exc, ssl.SSLError) and exc.reason else "")
