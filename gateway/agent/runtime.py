"""One ``fedgate agent`` process: its roles, their renewal loops and its listeners, started and stopped.

:class:`Agent` is an async context manager. Entering it writes the authorization token file,
opens the HTTP session to the gateway, starts one :class:`~gateway.agent.keeper.RoleKeeper` loop per
role and binds the container endpoint and every IMDS listener; leaving it undoes all of that in
reverse (the token file is removed if it still holds this agent's token).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from pathlib import Path
from types import TracebackType
from typing import Self, final

import aiohttp
from aiohttp import web

from gateway.agent.config import AccessKeySourceSettings, AgentConfig, RoleSettings
from gateway.agent.errors import StartError
from gateway.agent.imds import ImdsTokens
from gateway.agent.keeper import RefreshPolicy, RoleKeeper
from gateway.agent.server import container_answer, container_app, imds_answer, imds_app
from gateway.agent.sources import AccessKeySource, CredentialSource, WebIdentityTokenFile
from gateway.agent.sts_client import StsClient
from gateway.config import ListenSettings
from gateway.errors import ConfigError
from gateway.privatefile import write_private
from gateway.web.server import ErrorAnswer, GatewayRunner

__all__ = ["Agent", "build_source"]

log = logging.getLogger("gateway.agent")


def build_source(role: RoleSettings, sts: StsClient) -> CredentialSource:
    """The credential source ``role`` describes.

    Raises :class:`~gateway.agent.errors.StartError` when an access key's secret cannot be read:
    a role without its secret cannot be served, so the agent does not start.
    """
    source = role.source
    if isinstance(source, AccessKeySourceSettings):
        try:
            secret = source.secret_access_key.resolve()
        except ValueError as exc:
            raise StartError(f"role {role.name}: source.secret_access_key: {exc}") from None
        return AccessKeySource(
            access_key_id=source.access_key_id,
            secret_access_key=secret,
            role_arn=role.role_arn,
            session_name=role.session(),
            duration_seconds=role.duration_seconds,
            sts=sts,
            external_id=source.external_id,
        )
    return WebIdentityTokenFile(
        path=source.token_file,
        role_arn=role.role_arn,
        session_name=role.session(),
        duration_seconds=role.duration_seconds,
        sts=sts,
    )


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@final
class Agent:
    """Everything one agent process runs, as an async context manager."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.keepers: dict[str, RoleKeeper] = {}
        self.container_url = ""
        self.imds_urls: dict[str, str] = {}
        self._token = secrets.token_urlsafe(32)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._runners: list[web.AppRunner] = []

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()

    async def _start(self) -> None:
        config = self.config
        token_file = config.authorization_token_file
        if token_file is None:
            raise StartError(
                "authorization_token_file (--authorization-token-file) is required to serve: the agent "
                "writes there the token SDKs must send"
            )
        try:
            write_private(token_file, self._token)
        except OSError as exc:
            raise StartError(
                f"cannot write the authorization token file {token_file}: {exc.strerror or exc}"
            ) from None
        try:
            self._session = StsClient.open_session(config.gateway)
        except ConfigError as exc:  # the CA file stopped loading since the configuration was read
            raise StartError(f"gateway.{exc}") from None

        sts = StsClient(config.gateway, self._session)
        policy = RefreshPolicy.from_settings(config.refresh)
        by_path: dict[str, RoleKeeper] = {}
        for role in config.roles:
            keeper = RoleKeeper(
                name=role.name, role_arn=role.role_arn, source=build_source(role, sts), policy=policy
            )
            self.keepers[role.name] = keeper
            by_path[role.served_path()] = keeper
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(k.run(), name=f"fedgate-agent-{k.name}") for k in self.keepers.values()
        ]
        wait = config.gateway.timeout_seconds + 1
        app = container_app(by_path, token=self._token, token_file=str(token_file), first_fetch_wait=wait)
        self.container_url = await self._serve(app, container_answer, config.listen.host, config.listen.port)
        tokens = ImdsTokens()
        for role in config.roles:
            if role.imds is None:
                continue
            imds = imds_app(
                self.keepers[role.name], role_name=role.imds_role_name(), tokens=tokens, first_fetch_wait=wait
            )
            self.imds_urls[role.name] = await self._serve(imds, imds_answer, role.imds.host, role.imds.port)
        log.info(
            f"fedgate agent serving {len(config.roles)} role(s): container credentials at "
            + ", ".join(f"{self.container_url}{r.served_path()}" for r in config.roles)
            + "".join(f"; IMDSv2 for {name} at {url}" for name, url in self.imds_urls.items()),
            extra={
                "container_endpoint": self.container_url,
                "paths": {r.name: r.served_path() for r in config.roles},
                "imds_endpoints": self.imds_urls,
                "authorization_token_file": str(token_file),
                "gateway": config.gateway.url,
            },
        )

    async def _serve(self, app: web.Application, answer: ErrorAnswer, host: str, port: int) -> str:
        # fedgate's server seam: its header limits and timeouts, and low-level errors answered
        # without quoting (or logging) the request's bytes. Requests carry no body here.
        runner = GatewayRunner(app, listen=ListenSettings(), answer=answer, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise StartError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
        bound = runner.addresses[0]
        return _url(host, int(bound[1]))

    async def _stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.config.authorization_token_file is not None:
            self._remove_token_file(self.config.authorization_token_file)

    def _remove_token_file(self, path: Path) -> None:
        # Only our own token: another agent may have taken the file over since.
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if path.read_text(encoding="utf-8") == self._token:
                path.unlink()
