"""Every hook spec is documented and exercised here by a plugin registered as a third party would.

The meta-tests at the bottom fail when a hook is added without a docstring or without a test.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import AsyncIterator, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, Literal

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import BaseModel, ConfigDict

from gateway import hookimpl, hookspecs
from gateway import plugin as plugin_api
from gateway.app import create_app
from gateway.cli import main
from gateway.config import GatewayConfig, ProviderSettings, parse_config
from gateway.errors import ConfigError, PluginError
from gateway.identity import Identity, ProviderContext
from gateway.plugin_host import PluginHost
from gateway.store.memory import MemoryStore

HOOK_NAMES = sorted(name for name in dir(hookspecs) if name.startswith("fedgate_"))


class StaticSettings(ProviderSettings):
    """A provider type declared by a test plugin."""

    type: Literal["static"]
    subject: str


class StaticProvider:
    """Accepts one fixed token; enough to prove a plugin-built provider is wired in."""

    kind = "oidc"

    def __init__(self, settings: StaticSettings, context: ProviderContext) -> None:
        self.settings = settings
        self.arn = f"arn:aws:iam::{context.account_id}:oidc-provider/static.example"
        self.issuer = "https://static.example"
        self.started = False

    async def authenticate(self, token: str) -> Identity:
        raise NotImplementedError  # not called in these tests

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.started = False


class Section(BaseModel):
    """A plugin-owned configuration section."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    greeting: str


class ThirdPartyPlugin:
    """Implements every hook, the way an external package would."""

    def __init__(self) -> None:
        self.events: list[Mapping[str, Any]] = []
        self.built: list[StaticProvider] = []

    @hookimpl
    def fedgate_add_provider_types(self) -> Mapping[str, type[ProviderSettings]]:
        return {"static": StaticSettings}

    @hookimpl
    def fedgate_add_config_sections(self) -> Mapping[str, type[BaseModel]]:
        return {"greeter": Section}

    @hookimpl
    def fedgate_create_identity_provider(
        self, settings: ProviderSettings, context: ProviderContext
    ) -> StaticProvider | None:
        if isinstance(settings, StaticSettings):
            provider = StaticProvider(settings, context)
            self.built.append(provider)
            return provider
        return None

    @hookimpl
    def fedgate_api_provider_settings(
        self, kind: str, issuer: str, audiences: Sequence[str]
    ) -> ProviderSettings | None:
        if kind != "oidc" or issuer != "https://static.example":
            return None
        return StaticSettings(type="static", subject=audiences[0])

    @hookimpl
    def fedgate_add_routes(self, app: web.Application, config: GatewayConfig) -> None:
        section = config.sections.get("greeter")
        text = section.greeting if isinstance(section, Section) else "none"

        async def hello(request: web.Request) -> web.Response:
            return web.Response(text=text)

        app.router.add_get("/third-party/hello", hello)

    @hookimpl
    def fedgate_add_cli_commands(self, subparsers: argparse._SubParsersAction[Any]) -> None:
        parser = subparsers.add_parser("greet", help="say hello")
        parser.add_argument("name")
        parser.set_defaults(handler=lambda args: print(f"hello {args.name}") or 0)

    @hookimpl
    def fedgate_audit_event(self, event: Mapping[str, Any]) -> None:
        self.events.append(event)

    @hookimpl
    def fedgate_check_config(self, config: GatewayConfig) -> list[plugin_api.Finding]:
        section = config.sections.get("greeter")
        if isinstance(section, Section) and not section.greeting.strip():
            return [plugin_api.Finding("error", "EMPTY_GREETING", "greeter.greeting", "say something")]
        return []


RAW: dict[str, Any] = {
    "account_id": "123456789012",
    "audit": {"sink": "none"},
    "greeter": {"greeting": "hi from a plugin"},
    "providers": [{"type": "static", "subject": "alice"}],
}


def _host() -> tuple[PluginHost, ThirdPartyPlugin]:
    plugin = ThirdPartyPlugin()
    return PluginHost(builtins=[plugin]), plugin


def _config(host: PluginHost, raw: Mapping[str, Any] = RAW) -> GatewayConfig:
    return parse_config(raw, provider_types=host.provider_types(), sections=host.config_sections())


def test_first_party_plugins_are_entry_points() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="fedgate")}
    assert names["oidc"] == "fedgate_oidc"
    assert names["devissuer"] == "fedgate_devissuer"
    assert {"oidc", "devissuer"} <= set(PluginHost().names())


def test_plugins_can_be_disabled_by_name() -> None:
    host = PluginHost(disabled=["devissuer"])
    assert "devissuer" not in host.names()
    assert "dev_issuer" not in host.config_sections()


def test_fedgate_add_provider_types_and_fedgate_create_identity_provider() -> None:
    host, plugin = _host()
    assert host.provider_types()["static"] is StaticSettings
    config = _config(host)
    settings = config.providers[0]
    assert isinstance(settings, StaticSettings) and settings.subject == "alice"
    provider = host.create_identity_provider(settings, ProviderContext("123456789012", MemoryStore()))
    assert provider is plugin.built[0]
    assert provider.arn == "arn:aws:iam::123456789012:oidc-provider/static.example"


def test_fedgate_api_provider_settings_builds_api_created_providers() -> None:
    host, plugin = _host()
    settings = host.api_provider_settings("oidc", "https://static.example", ["bob"])
    assert isinstance(settings, StaticSettings) and settings.subject == "bob"
    assert (
        host.create_identity_provider(settings, ProviderContext("123456789012", MemoryStore()))
        is plugin.built[0]
    )
    # Another issuer falls through to the first-party OIDC plugin; a kind no plugin builds is None.
    oidc = host.api_provider_settings("oidc", "https://token.example.com", ["sts.amazonaws.com"])
    assert oidc is not None and oidc.type == "oidc"
    assert host.api_provider_settings("kerberos", "https://static.example", ["bob"]) is None
    # A SAML provider (its name and metadata document) is the first-party SAML plugin's.
    saml = host.api_provider_settings("saml", name="corp", metadata="<EntityDescriptor/>")
    assert saml is not None and saml.type == "saml"


def test_fedgate_add_provider_types_conflict_is_a_plugin_error() -> None:
    class Clash:
        @hookimpl
        def fedgate_add_provider_types(self) -> Mapping[str, type[ProviderSettings]]:
            return {"oidc": StaticSettings}

    with pytest.raises(PluginError, match="provider type 'oidc' is declared by two plugins"):
        PluginHost(builtins=[Clash()]).provider_types()


def test_fedgate_add_config_sections_validates_with_paths() -> None:
    host, _ = _host()
    assert _config(host).sections["greeter"] == Section(greeting="hi from a plugin")
    with pytest.raises(ConfigError, match=r"greeter\.greeting: Input should be a valid string"):
        _config(host, {**RAW, "greeter": {"greeting": 3}})


async def test_fedgate_add_routes_and_providers_started(aiohttp_client: Any) -> None:
    host, plugin = _host()
    client: TestClient[Any, Any] = await aiohttp_client(create_app(_config(host), host=host))
    response = await client.get("/third-party/hello")
    assert response.status == 200 and await response.text() == "hi from a plugin"
    assert plugin.built and plugin.built[0].started


async def test_fedgate_audit_event_receives_every_sts_call(aiohttp_client: Any) -> None:
    host, plugin = _host()
    client: TestClient[Any, Any] = await aiohttp_client(create_app(_config(host), host=host))
    response = await client.post("/", data={"Action": "Nope", "Version": "2011-06-15"})
    assert response.status == 400
    assert [e["eventName"] for e in plugin.events] == ["Nope"]
    assert plugin.events[0]["errorCode"] == "InvalidAction"
    assert plugin.events[0]["requestID"] == response.headers["x-amzn-RequestId"]


async def test_fedgate_add_routes_cleanup_contexts_read_the_supported_app_keys(aiohttp_client: Any) -> None:
    """A plugin's cleanup context finds every key gateway.plugin.CLEANUP_APP_KEYS promises, and the
    hook's documentation names each of them."""
    seen: dict[str, bool] = {}

    class Reader:
        @hookimpl
        def fedgate_add_routes(self, app: web.Application, config: GatewayConfig) -> None:
            async def ctx(app: web.Application) -> AsyncIterator[None]:
                seen.update({str(key): key in app for key in plugin_api.CLEANUP_APP_KEYS})
                yield

            app.cleanup_ctx.append(ctx)

    host = PluginHost(builtins=[Reader()])
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(_config(host, {"account_id": "123456789012"}), host=host)
    )
    assert (await client.get("/healthz")).status == 200
    assert seen and all(seen.values()), seen
    doc = inspect.getdoc(hookspecs.fedgate_add_routes) or ""
    names = {name for name in dir(plugin_api) if isinstance(getattr(plugin_api, name), web.AppKey)}
    for key in plugin_api.CLEANUP_APP_KEYS:
        name = next(n for n in names if getattr(plugin_api, n) is key)
        assert f"``{name}``" in doc, f"fedgate_add_routes must name {name}"


def test_fedgate_add_cli_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = ThirdPartyPlugin()
    monkeypatch.setattr("gateway.cli.PluginHost", lambda disabled=(): PluginHost(builtins=[plugin]))
    assert main(["greet", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"


def test_fedgate_check_config(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin's findings reach ``fedgate check-config`` beside the core's, and fail it when errors."""
    import json

    import yaml

    plugin = ThirdPartyPlugin()
    host = PluginHost(builtins=[plugin])
    assert host.check_config(_config(host)) == []
    monkeypatch.setattr("gateway.startup.PluginHost", lambda disabled=(): PluginHost(builtins=[plugin]))
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**RAW, "greeter": {"greeting": " "}}))
    assert main(["check-config", "-c", str(path), "--format", "json"]) == 1
    (finding,) = json.loads(capsys.readouterr().out)["findings"]
    assert finding == {
        "severity": "error",
        "code": "EMPTY_GREETING",
        "path": "greeter.greeting",
        "message": "say something",
    }


def test_misspelt_hook_is_refused_at_start_up() -> None:
    class Typo:
        @hookimpl
        def fedgate_add_rotues(self) -> None:
            pass

    with pytest.raises(PluginError, match="fedgate_add_rotues"):
        PluginHost(builtins=[Typo()])


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_spec_is_documented(name: str) -> None:
    spec = getattr(hookspecs, name)
    doc = inspect.getdoc(spec) or ""
    assert len(doc) > 80, f"{name} needs a docstring saying when it is called and what it returns"
    assert "Called" in doc
    opts = getattr(spec, "fedgate_spec", {})
    if opts.get("firstresult"):
        assert "Stops at first non-None result" in doc


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_spec_has_a_test(name: str) -> None:
    tests = [n for n in globals() if n.startswith("test_") and name in n]
    assert tests, f"add a test named test_{name}... to this module"
