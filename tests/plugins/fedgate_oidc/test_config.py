"""The OIDC plugin's settings, and its registration through the ``fedgate`` entry point."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pydantic
import pytest

import fedgate_oidc
from fedgate_oidc import OIDCProvider, OIDCProviderSettings
from gateway.config import GatewayConfig, ProviderSettings, parse_config
from gateway.errors import ConfigError
from gateway.identity import IdentityProvider, ProviderContext
from gateway.plugin_host import PluginHost
from gateway.store.memory import MemoryStore

ACCOUNT = "123456789012"
GITHUB = "https://token.actions.githubusercontent.com"


def parse(**provider: Any) -> GatewayConfig:
    entry = {"type": "oidc", "issuer": GITHUB, "audiences": ["sts.amazonaws.com"], **provider}
    return parse_config(
        {"account_id": ACCOUNT, "providers": [entry]},
        provider_types=PluginHost().provider_types(),
        sections={},
    )


def config_error(**provider: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse(**provider)
    return str(info.value)


def test_defaults() -> None:
    (settings,) = parse().providers
    assert isinstance(settings, OIDCProviderSettings)
    assert settings.algorithms == ["RS256"]
    assert settings.jwks_url is None
    assert (settings.jwks_cache_seconds, settings.jwks_refetch_min_interval) == (3600, 60)
    assert (settings.http_timeout, settings.max_token_bytes) == (5, 16384)
    assert settings.require_claims == [] and settings.share_jwks is False


@pytest.mark.parametrize("alg", ["HS256", "HS512", "none", "None", "RSA-OAEP", "ES256K", "rs256"])
def test_symmetric_none_and_unknown_algorithms_are_refused(alg: str) -> None:
    message = config_error(algorithms=["RS256", alg])
    assert message.startswith("providers[0].algorithms: ")
    assert repr(alg) in message


@pytest.mark.parametrize(
    "issuer",
    [
        "http://issuer.example.com",
        "http://10.0.0.1",
        "ftp://issuer.example.com",
        "issuer.example.com",
        "https://",
    ],
)
def test_issuer_must_be_https(issuer: str) -> None:
    assert config_error(issuer=issuer).startswith("providers[0].issuer: ")


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:8080", "http://localhost:9000/realms/x", "http://[::1]:80"]
)
def test_loopback_http_issuer_is_allowed_for_development(issuer: str) -> None:
    (settings,) = parse(issuer=issuer).providers
    assert isinstance(settings, OIDCProviderSettings) and settings.issuer == issuer


def test_http_jwks_url_needs_a_loopback_issuer() -> None:
    assert config_error(jwks_url="http://127.0.0.1/jwks").startswith("providers[0].jwks_url: ")
    (settings,) = parse(issuer="http://127.0.0.1:1", jwks_url="http://127.0.0.1:1/jwks").providers
    assert isinstance(settings, OIDCProviderSettings) and settings.jwks_url == "http://127.0.0.1:1/jwks"


@pytest.mark.parametrize(
    ("provider", "path"),
    [
        ({"audience": "x"}, "providers[0].audience: "),
        ({"audiences": []}, "providers[0].audiences: "),
        ({"audiences": [""]}, "providers[0].audiences: "),
        ({"algorithms": []}, "providers[0].algorithms: "),
        ({"jwks_cache_seconds": 0}, "providers[0].jwks_cache_seconds: "),
        ({"jwks_refetch_min_interval": -1}, "providers[0].jwks_refetch_min_interval: "),
        ({"http_timeout": 0}, "providers[0].http_timeout: "),
        ({"max_token_bytes": 10}, "providers[0].max_token_bytes: "),
        ({"require_claims": [""]}, "providers[0].require_claims: "),
        ({"issuer": "https://user:pw@issuer.example.com"}, "providers[0].issuer: "),
    ],
)
def test_invalid_values_name_their_path(provider: dict[str, Any], path: str) -> None:
    assert path in config_error(**provider)


def test_settings_are_frozen_and_documented() -> None:
    (settings,) = parse().providers
    assert isinstance(settings, OIDCProviderSettings)
    with pytest.raises(pydantic.ValidationError):
        settings.issuer = "https://other.example"
    for name, field in OIDCProviderSettings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert name in (fedgate_oidc.__doc__ or ""), f"{name} is not documented in the plugin docstring"


def test_plugin_is_registered_through_the_entry_point() -> None:
    host = PluginHost()
    assert "oidc" in host.names()
    assert host.provider_types()["oidc"] is OIDCProviderSettings


def test_disabled_plugin_declares_no_type() -> None:
    assert "oidc" not in PluginHost(disabled=["oidc"]).provider_types()


async def test_host_builds_an_oidc_provider() -> None:
    (settings,) = parse(issuer="https://issuer.example.com/tenant/").providers
    provider = PluginHost().create_identity_provider(
        settings, ProviderContext(account_id=ACCOUNT, store=MemoryStore())
    )
    assert isinstance(provider, OIDCProvider) and isinstance(provider, IdentityProvider)
    assert provider.arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/issuer.example.com/tenant"
    assert provider.provider_id == "issuer.example.com/tenant"
    await provider.start()
    await provider.close()


def test_hook_ignores_other_provider_types() -> None:
    class SAMLSettings(ProviderSettings):
        pass

    context = ProviderContext(account_id=ACCOUNT, store=MemoryStore())
    other = SAMLSettings(type="saml")
    assert fedgate_oidc.fedgate_create_identity_provider(settings=other, context=context) is None
    assert fedgate_oidc.fedgate_add_provider_types() == {"oidc": OIDCProviderSettings}


def test_testing_helpers_import_without_pytest() -> None:
    # gateway.testing is published for plugin authors and bench/, which may not have pytest.
    code = "import sys; sys.modules['pytest'] = None; import gateway.testing; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
