"""`fedgate login` refuses to send credentials over plain http to another machine."""

from __future__ import annotations

import pytest

from gateway.login_cli import LoginFailed, _base


@pytest.mark.parametrize("url", ["https://sso.example.com/", "http://127.0.0.1:8080", "http://localhost:9"])
def test_https_or_loopback_is_accepted(url: str) -> None:
    assert _base(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://sso.example.com", "http://10.0.0.5:8080", "ftp://127.0.0.1", "sso"])
def test_clear_text_to_another_machine_is_refused(url: str) -> None:
    with pytest.raises(LoginFailed):
        _base(url)
