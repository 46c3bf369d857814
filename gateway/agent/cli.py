"""``fedgate agent``: serve a workload's credentials as the container endpoint, IMDSv2 and
``credential_process``.

``fedgate agent -c agent.yaml`` (or flags for one role) runs the agent until SIGINT or SIGTERM;
``fedgate agent credential-process`` prints one role's credentials for ``credential_process``
(fetched directly, or ``--from-agent`` from a running agent's cache); ``fedgate agent
check-config`` validates; ``fedgate agent config-reference`` prints docs/agent-configuration.md.
Every mistake is one line naming the key or flag and what to do (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from gateway.agent.errors import AgentError, CredentialsUnavailable, SourceError
from gateway.errors import ConfigError
from gateway.logs import configure_logging

if TYPE_CHECKING:  # the agent's models and clients are imported when an agent command runs, not to
    # build the parser (every fedgate command, `fedgate serve` included, builds it)
    from gateway.agent.config import AgentConfig, RoleSettings
    from gateway.agent.credentials import Credentials

__all__ = ["add_agent_command", "config_from_args", "reference_text"]

log = logging.getLogger("gateway.agent")

_EXAMPLE = """\
examples:
  fedgate agent -c /etc/fedgate/agent.yaml
  fedgate agent --gateway-url https://fedgate.example.com \\
      --role-arn arn:aws:iam::123456789012:role/app \\
      --token-file /var/run/secrets/tokens/fedgate \\
      --authorization-token-file /var/run/fedgate-agent/token --imds 127.0.0.1:9912

then, in the workload:
  AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:9911/roles/app
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/var/run/fedgate-agent/token
or (IMDSv2):
  AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9912/
"""

# Flag destination -> (key path in the configuration, flag): a bad value names the flag.
_TOP_FLAGS: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType(
    {
        "gateway_url": (("gateway", "url"), "--gateway-url"),
        "ca_file": (("gateway", "ca_file"), "--ca-file"),
        "authorization_token_file": (("authorization_token_file",), "--authorization-token-file"),
        "renew_before": (("refresh", "renew_before"), "--renew-before"),
        "log_level": (("log_level",), "--log-level"),
    }
)
_ROLE_FLAGS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "role_name": ("name", "--role-name"),
        "role_arn": ("role_arn", "--role-arn"),
        "session_name": ("session_name", "--session-name"),
        "duration": ("duration_seconds", "--duration"),
    }
)


def _add_options(parser: argparse.ArgumentParser, *, nested: bool) -> None:
    # Sub-actions repeat the options with no defaults of their own, so a value given before the
    # action name (fedgate agent -c F credential-process) is not reset by the action's parser.
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if nested else value

    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=default(os.environ.get("FEDGATE_AGENT_CONFIG")),
        help="agent configuration (YAML); defaults to $FEDGATE_AGENT_CONFIG",
    )
    gateway = parser.add_argument_group("the gateway (override the file)")
    gateway.add_argument("--gateway-url", metavar="URL", default=default(None), help="its STS endpoint")
    gateway.add_argument("--ca-file", metavar="PEM", default=default(None), help="CAs to trust for https")
    serving = parser.add_argument_group("serving (override the file)")
    serving.add_argument(
        "--listen", metavar="HOST:PORT", default=default(None), help="container endpoint (127.0.0.1:9911)"
    )
    serving.add_argument(
        "--authorization-token-file",
        metavar="PATH",
        default=default(None),
        help="where to write the token SDKs must send (mode 0600)",
    )
    serving.add_argument(
        "--renew-before",
        type=float,
        metavar="SECONDS",
        default=default(None),
        help="renew this long before expiry",
    )
    serving.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default=default(None))
    role = parser.add_argument_group("one role, instead of roles in the file")
    role.add_argument("--role-arn", metavar="ARN", default=default(None), help="the gateway's role to assume")
    role.add_argument(
        "--token-file", metavar="PATH", default=default(None), help="OIDC token file, re-read at each renewal"
    )
    role.add_argument("--role-name", metavar="NAME", default=default(None), help="served at /roles/NAME")
    role.add_argument("--session-name", metavar="NAME", default=default(None), help="RoleSessionName")
    role.add_argument(
        "--duration", type=int, metavar="SECONDS", default=default(None), help="session length (900-43200)"
    )
    role.add_argument(
        "--imds", metavar="HOST:PORT", default=default(None), help="also serve the role as IMDSv2 here"
    )


def add_agent_command(sub: argparse._SubParsersAction[Any]) -> None:
    """Register ``fedgate agent`` and its actions."""
    agent = sub.add_parser(
        "agent",
        help="serve credentials to workloads that cannot call STS (container endpoint, IMDSv2)",
        description=textwrap.fill(
            "Get a workload's credentials from a fedgate gateway (AssumeRoleWithWebIdentity with a "
            "token file re-read at each renewal), keep them fresh, and serve them as the container "
            "credentials endpoint and IMDSv2 on loopback, so any AWS SDK finds them with one "
            "environment variable. Runs until SIGINT or SIGTERM.",
            width=78,
        ),
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # Abbreviations would make an action's --role ambiguous with --role-arn at this level.
        allow_abbrev=False,
    )
    _add_options(agent, nested=False)
    agent.set_defaults(handler=_run)
    actions = agent.add_subparsers(dest="agent_action", metavar="[ACTION]")

    process = actions.add_parser(
        "credential-process",
        allow_abbrev=False,
        help="print one role's credentials for credential_process",
        description="Print one role's credentials as credential_process JSON (version 1): fetched "
        "from the gateway now with the role's source, or with --from-agent from a running agent.",
    )
    _add_options(process, nested=True)
    process.add_argument("--role", metavar="NAME", help="the role (needed when several are configured)")
    process.add_argument(
        "--from-agent",
        action="store_true",
        help="ask the running agent (its listen address and token file) instead of the gateway",
    )
    process.set_defaults(handler=_credential_process)

    check = actions.add_parser(
        "check-config",
        help="validate the agent configuration and exit",
        description="Validate the configuration (file and flags): exit 0 with a summary, or 2 with "
        "one line per problem, each naming its key or flag.",
    )
    _add_options(check, nested=True)
    check.set_defaults(handler=_check_config)

    reference = actions.add_parser(
        "config-reference",
        help="print the agent configuration reference (Markdown)",
        description="Print every agent configuration key with its type, default and description "
        "(this is docs/agent-configuration.md).",
    )
    reference.set_defaults(handler=_config_reference)


# --- configuration from the file and flags -------------------------------------------------------


def _host_port(value: str, flag: str) -> dict[str, Any]:
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", value)
    if match is None:
        raise ConfigError(f"{flag}: give HOST:PORT, e.g. 127.0.0.1:9911 ([::1]:9911 for IPv6)")
    host = match.group(1) or match.group(3)
    port = match.group(2) or match.group(4)
    return {"host": host, "port": int(port)}


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.setdefault(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a mapping")
    return value


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    """The configuration the file (if any) and the flags describe; raises :class:`ConfigError`."""
    from gateway.agent.config import load_agent_config, parse_agent_config

    path = getattr(args, "config", None)
    raw: dict[str, Any] = load_agent_config(Path(path)) if path else {}
    flags: dict[str, str] = {}
    for dest, (keys, flag) in _TOP_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            target = raw if len(keys) == 1 else _section(raw, keys[0])
            target[keys[-1]] = value
            flags[".".join(keys)] = flag
    listen = getattr(args, "listen", None)
    if listen is not None:
        raw["listen"] = _host_port(listen, "--listen")
        flags.update({"listen.host": "--listen", "listen.port": "--listen"})

    role_values = {dest: getattr(args, dest, None) for dest in [*_ROLE_FLAGS, "token_file", "imds"]}
    if any(v is not None for v in role_values.values()):
        if raw.get("roles"):
            raise ConfigError(
                f"--role-arn, --token-file: {path} already lists roles; describe roles in one place"
            )
        if role_values["role_arn"] is None or role_values["token_file"] is None:
            raise ConfigError("--role-arn and --token-file: give both to describe a role")
        role: dict[str, Any] = {"source": {"type": "web_identity", "token_file": role_values["token_file"]}}
        flags["roles[0].source.token_file"] = "--token-file"
        for dest, (key, flag) in _ROLE_FLAGS.items():
            if role_values[dest] is not None:
                role[key] = role_values[dest]
                flags[f"roles[0].{key}"] = flag
        role.setdefault(
            "name", re.sub(r"[^A-Za-z0-9_.-]", "-", str(role["role_arn"]).rsplit("/", 1)[-1])[:64]
        )
        if role_values["imds"] is not None:
            role["imds"] = _host_port(role_values["imds"], "--imds")
            flags.update({"roles[0].imds.host": "--imds", "roles[0].imds.port": "--imds"})
        raw["roles"] = [role]
    elif not path:
        raise ConfigError(
            "no configuration: give -c FILE (or $FEDGATE_AGENT_CONFIG), or describe one role with "
            "--gateway-url, --role-arn, --token-file and --authorization-token-file"
        )
    return parse_agent_config(raw, flags=flags)


def _fail(action: str, exc: Exception, status: int) -> int:
    for line in str(exc).splitlines() or [type(exc).__name__]:
        print(f"fedgate {action}: {line}", file=sys.stderr)
    return status


# --- actions -------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        if config.authorization_token_file is None:
            raise ConfigError(
                "authorization_token_file: required to serve (or --authorization-token-file): the "
                "agent writes there the token SDKs must send"
            )
    except ConfigError as exc:
        return _fail("agent", exc, 2)
    configure_logging(config.log_level)
    try:
        asyncio.run(_serve(config))
    except AgentError as exc:
        return _fail("agent", exc, 1)
    return 0


async def _serve(config: AgentConfig) -> None:
    from gateway.agent.runtime import Agent  # aiohttp: imported only by the commands that use it

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Agent(config):
        await stop.wait()
    log.info("fedgate agent stopped")


def _pick_role(config: AgentConfig, name: str | None) -> RoleSettings:
    if name is None:
        if len(config.roles) > 1:
            names = ", ".join(r.name for r in config.roles)
            raise ConfigError(f"--role: the configuration serves several roles ({names}); name one")
        return config.roles[0]
    try:
        return config.role(name)
    except KeyError:
        names = ", ".join(r.name for r in config.roles)
        raise ConfigError(f"--role: no role named {name!r} (configured: {names})") from None


def _credential_process(args: argparse.Namespace) -> int:
    from gateway.agent.credentials import process_document

    try:
        config = config_from_args(args)
        role = _pick_role(config, args.role)
        if args.from_agent and (config.authorization_token_file is None or config.listen.port == 0):
            raise ConfigError(
                "--from-agent: the configuration must give the agent's authorization_token_file and a "
                "fixed listen.port"
            )
    except ConfigError as exc:
        return _fail("agent credential-process", exc, 2)
    try:
        creds = _from_agent(config, role) if args.from_agent else asyncio.run(_fetch_once(config, role))
    except AgentError as exc:
        return _fail("agent credential-process", exc, 1)
    print(json.dumps(process_document(creds)))
    return 0


async def _fetch_once(config: AgentConfig, role: RoleSettings) -> Credentials:
    from gateway.agent.runtime import build_source
    from gateway.agent.sts_client import StsClient

    try:
        session = StsClient.open_session(config.gateway)
    except ConfigError as exc:
        raise SourceError(f"gateway.{exc}") from None
    async with session:
        return await build_source(role, StsClient(config.gateway, session)).fetch()


def _from_agent(config: AgentConfig, role: RoleSettings) -> Credentials:
    """The role's credentials from the running agent's container endpoint."""
    from gateway.agent.credentials import Credentials

    assert config.authorization_token_file is not None
    host = config.listen.host
    url = f"http://{f'[{host}]' if ':' in host else host}:{config.listen.port}{role.served_path()}"
    try:
        token = config.authorization_token_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(
            f"cannot read the agent's token file {config.authorization_token_file}: {exc.strerror} "
            "(is the agent running?)"
        ) from None
    request = urllib.request.Request(url, headers={"Authorization": token})
    try:
        # S310: the URL is the agent's own status endpoint, built from its configuration.
        with urllib.request.urlopen(request, timeout=config.gateway.timeout_seconds + 2) as response:  # noqa: S310
            body = response.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        raise CredentialsUnavailable(
            _agent_message(exc.read(64 * 1024)) or f"the agent answered {exc.code}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"cannot reach the agent at {url}: {reason} (is it running?)") from None
    except ValueError:  # http.client refuses a header value with a line break
        raise SourceError(
            f"{config.authorization_token_file} does not hold an agent's token (is this the right file?)"
        ) from None
    try:
        document = json.loads(body)
        return Credentials(
            access_key_id=str(document["AccessKeyId"]),
            secret_access_key=str(document["SecretAccessKey"]),
            session_token=str(document["Token"]),
            expiration=datetime.fromisoformat(str(document["Expiration"]).replace("Z", "+00:00")),
        )
    except (ValueError, KeyError, TypeError):
        raise SourceError(f"the agent at {url} did not answer with credentials") from None


def _agent_message(body: bytes) -> str | None:
    try:
        message = json.loads(body).get("Message")
    except (ValueError, AttributeError):
        return None
    return message if isinstance(message, str) else None


def _check_config(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        return _fail("agent check-config", exc, 2)
    roles = "; ".join(
        f"{r.name} at {r.served_path()}" + (f" and IMDSv2 {r.imds.host}:{r.imds.port}" if r.imds else "")
        for r in config.roles
    )
    where = getattr(args, "config", None) or "flags"
    print(f"{where}: OK (gateway {config.gateway.url}; {len(config.roles)} role(s): {roles})")
    return 0


def reference_text() -> str:
    """docs/agent-configuration.md: every key of the agent's configuration."""
    from gateway.agent.config import AgentConfig
    from gateway.configdoc import render_model

    header = (
        "# Agent configuration reference\n\n"
        "`fedgate agent -c FILE` reads one YAML file (flags override it; `fedgate agent check-config`\n"
        "validates both). Unknown keys are errors. This file is generated from the configuration\n"
        "models by `fedgate agent config-reference`; do not edit it by hand.\n"
    )
    return render_model(AgentConfig, header)


def _config_reference(args: argparse.Namespace) -> int:
    sys.stdout.write(reference_text())
    return 0
