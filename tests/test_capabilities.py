"""Provider kinds are open and abilities are capabilities: tested for, not implied by a class or kind.

A third-party provider of its own kind (here ``ldap``) plugs in without claiming ``oidc`` or
``saml``: STS's federation APIs do not route tokens to it, its identities assume roles as web
identities through the one trust decision, and features look for capabilities, not classes.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp.test_utils import TestClient

from fedgate_oidc import OIDCProvider, OIDCProviderSettings
from fedgate_saml import SAMLProvider, SAMLProviderSettings
from gateway import hookimpl, keys
from gateway.app import create_app
from gateway.capabilities import SAMLServiceProviderCapable
from gateway.config import ProviderSettings, parse_config
from gateway.errors import AccessDenied
from gateway.identity import Identity, IdentityProvider, ProviderContext, ProviderKind
from gateway.plugin_host import PluginHost
from gateway.store import MemoryStore
from gateway.testing.saml import SAMLTestIdP

ACCOUNT = "123456789012"
LDAP_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/ldap.example"


class LdapSettings(ProviderSettings):
    type: Literal["ldap"]


class LdapProvider:
    """A provider of a kind the core has never heard of."""

    def __init__(self, context: ProviderContext) -> None:
        self.arn = LDAP_ARN
        self.issuer = "ldap://ldap.example"

    @property
    def kind(self) -> ProviderKind:
        return "ldap"

    async def authenticate(self, token: str) -> Identity:
        return Identity(
            provider_arn=self.arn,
            provider_id="ldap.example",
            kind="ldap",
            subject=token,
            audience="fedgate",
            issuer=self.issuer,
        )

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class LdapPlugin:
    @hookimpl
    def fedgate_add_provider_types(self) -> dict[str, type[ProviderSettings]]:
        return {"ldap": LdapSettings}

    @hookimpl
    def fedgate_create_identity_provider(
        self, settings: ProviderSettings, context: ProviderContext
    ) -> IdentityProvider | None:
        return LdapProvider(context) if isinstance(settings, LdapSettings) else None


def _trust(action: str) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Principal": {"Federated": LDAP_ARN}, "Action": action}
    return {"Version": "2012-10-17", "Statement": [statement]}


async def test_a_third_party_kind_needs_no_oidc_or_saml_claim(aiohttp_client: Any) -> None:
    host = PluginHost(builtins=[LdapPlugin()])
    raw = {
        "account_id": ACCOUNT,
        "audit": {"sink": "none"},
        "providers": [{"type": "ldap"}],
        "roles": [
            {"name": "web", "trust_policy": _trust("sts:AssumeRoleWithWebIdentity")},
            {"name": "saml", "trust_policy": _trust("sts:AssumeRoleWithSAML")},
        ],
    }
    config = parse_config(raw, provider_types=host.provider_types(), sections=host.config_sections())
    client: TestClient = await aiohttp_client(create_app(config, host=host))
    app = client.app
    (provider,) = app[keys.PROVIDERS]
    assert provider.kind == "ldap" and isinstance(provider, IdentityProvider)
    assert not isinstance(provider, SAMLServiceProviderCapable)

    # The federation APIs route only oidc and saml providers: an ldap token finds none.
    token = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJsZGFwOi8vbGRhcC5leGFtcGxlIn0.c2ln"
    response = await client.post(
        "/",
        data={
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/web",
            "RoleSessionName": "alice",
            "WebIdentityToken": token,
        },
    )
    assert response.status == 400 and "No OpenIDConnect provider found" in await response.text()

    # Its plugin's own sign-in mints through STS; the trust decision reads it as a web identity.
    identity = await provider.authenticate("alice")
    sts = app[keys.STS]
    record = _record(sts.now())
    assumed = sts.assume_for_login(identity, f"arn:aws:iam::{ACCOUNT}:role/web", "alice", 900, record)
    assert assumed.assumed_role_arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/web/alice"
    try:
        sts.assume_for_login(identity, f"arn:aws:iam::{ACCOUNT}:role/saml", "alice", 900, _record(sts.now()))
    except AccessDenied as exc:
        assert exc.message == "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    else:
        raise AssertionError("a role trusting only AssumeRoleWithSAML must refuse a web identity")


def _record(now: float) -> Any:
    from gateway.calls import CallRecord
    from gateway.context import Transport

    return CallRecord(
        "req", Transport(source_ip="127.0.0.1", secure=False, user_agent=None, referer=None, now=now)
    )


async def test_the_saml_plugin_offers_the_service_provider_capability_and_oidc_does_not() -> None:
    context = ProviderContext(account_id=ACCOUNT, store=MemoryStore())
    with SAMLTestIdP() as idp:
        saml = SAMLProvider(SAMLProviderSettings.model_validate(idp.provider_config(name="corp")), context)
        assert isinstance(saml, SAMLServiceProviderCapable)
    oidc = OIDCProvider(
        OIDCProviderSettings.model_validate(
            {"type": "oidc", "issuer": "https://idp.example", "audiences": ["a"]}
        ),
        context,
    )
    assert not isinstance(oidc, SAMLServiceProviderCapable)
