"""The request facts every front door shares: the trusted-proxy chain behind ``aws:SourceIp``."""

from __future__ import annotations

from gateway.context import TrustedProxies


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    trusted = TrustedProxies(["10.0.0.0/8"])
    assert trusted.client_ip("203.0.113.5", "1.2.3.4") == "203.0.113.5"
    assert trusted.client_ip("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.9") == "198.51.100.7"
    assert trusted.client_ip("10.0.0.2", "not-an-ip") == "10.0.0.2"
    assert TrustedProxies([]).client_ip("10.0.0.2", "1.2.3.4") == "10.0.0.2"
