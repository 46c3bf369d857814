"""The fedgate command line, and the README's quickstart run exactly as a newcomer would."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import main

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["check-config"],
        ["config-reference"],
        ["plugins"],
        ["dev-token"],
        ["simulate"],
        ["login"],
        ["credential-process"],
        ["revoke-sessions"],
        ["healthcheck"],
        ["db"],
        ["db", "upgrade"],
        ["db", "current"],
    ],
)
def test_help_for_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fedgate")
    if command:
        assert len(out.splitlines()) > 4  # a description and the options, not just usage


def test_check_config_accepts_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-c", str(ROOT / "config" / "demo.yaml")]) == 0
    assert "OK (account 123456789012, 1 provider(s), 2 role(s)" in capsys.readouterr().out


def test_check_config_names_every_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "account_id: '123456789012'\n"
        "roles:\n"
        "  - name: ok\n"
        "    trust_policy: {Version: '2012-10-17', Statement: [{Effect: Allow, Principal: '*', "
        "Action: 'sts:AssumeRoleWithWebIdentity'}]}\n"
        "  - name: bad\n"
        "    max_session_duration: 99999\n"
        "    trust_policy: {Version: '2012-10-17', Statement: [{Effect: Perhaps, Principal: '*', "
        "Action: 'sts:AssumeRoleWithWebIdentity'}]}\n"
    )
    assert main(["check-config", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert "roles[1].max_session_duration:" in err
    assert "roles[1].trust_policy.Statement[0].Effect:" in err


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check-config", "-c", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: cannot read" in capsys.readouterr().err


def test_plugins_lists_first_party_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    version = importlib.metadata.version("fedgate")
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines == [[name, "fedgate", version] for name in ["devissuer", "oidc", "saml", "web"]]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"fedgate {importlib.metadata.version('fedgate')}\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, int]]:
    """`fedgate serve` on config/demo.yaml (moved to a free port), in its own directory."""
    port = _free_port()
    config = tmp_path / "demo.yaml"
    config.write_text((ROOT / "config" / "demo.yaml").read_text().replace("8080", str(port)))
    process = _serve_demo(config, port)
    try:
        yield process, config, port
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _serve_demo(config: Path, port: int) -> subprocess.Popen[str]:
    """`fedgate serve -c config`, once it answers /healthz on ``port``."""
    process = subprocess.Popen(
        [str(BIN / "fedgate"), "serve", "-c", str(config)],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"fedgate did not start: {process.communicate()[1]}") from None
            time.sleep(0.1)


def demo_header_commands() -> list[str]:
    """The commands demo.yaml's header shows (``#   COMMAND   # comment`` lines)."""
    header = (ROOT / "config" / "demo.yaml").read_text().split("\n\n", 1)[0]
    found = re.findall(r"^#   (\S.*?)\s+# ", header, re.MULTILINE)
    return [c.strip() for c in found]


def test_demo_header_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """Each command in demo.yaml's header works (dev-token runs in the quickstart test)."""
    commands = demo_header_commands()
    assert commands == [
        "make serve",
        "fedgate dev-token -c config/demo.yaml --sub alice",
        "fedgate check-config -c config/demo.yaml",
    ]
    assert "CONFIG ?= config/demo.yaml" in (ROOT / "Makefile").read_text()
    assert main([*commands[2].split()[1:3], str(ROOT / "config" / "demo.yaml")]) == 0
    assert "demo.yaml: OK" in capsys.readouterr().out
    for named in re.findall(
        r"(config/[\w.-]+\.yaml|docs/[\w.-]+\.md)", (ROOT / "config" / "demo.yaml").read_text()
    ):
        assert (ROOT / named).exists(), named


def _aws(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "aws"), *args], env=env, capture_output=True, text=True, timeout=60)


def test_the_demo_upstream_is_not_reachable_around_the_proxy(
    demo: tuple[subprocess.Popen[str], Path, int],
) -> None:
    """The object API the demo proxies to answers only what the proxy forwards with its identity
    token: sent to it directly, unsigned, a read and a write are refused and nothing is written."""
    _, _, port = demo
    base = f"http://127.0.0.1:{port}/dev-upstream/s3/demo-bucket"
    for method, data in (("GET", None), ("PUT", b"written around the proxy")):
        request = urllib.request.Request(f"{base}/around.txt", data=data, method=method)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        with refused.value as answer:  # an HTTPError holds the connection until closed
            assert answer.code == 403
            assert b"<Code>AccessDenied</Code>" in answer.read()
    forged = urllib.request.Request(f"{base}/hello.txt", headers={"X-Fedgate-Identity": "e30.e30.sig"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)
    with refused.value as answer:
        assert answer.code == 403


@pytest.mark.timeout(240)  # a dozen aws CLI runs, each a fresh Python process
def test_demo_sessions_outlive_a_restart(
    demo: tuple[subprocess.Popen[str], Path, int], tmp_path: Path
) -> None:
    """The demo's session key is made once, in .fedgate/ beside the configuration: a session the
    aws CLI cached before a restart is still accepted after it."""
    import boto3

    process, config, port = demo
    url = f"http://127.0.0.1:{port}"
    token = subprocess.run(
        [str(BIN / "fedgate"), "dev-token", "-c", str(config), "--sub", "alice"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    anonymous = boto3.client(
        "sts", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    creds = anonymous.assume_role_with_web_identity(
        RoleArn="arn:aws:iam::123456789012:role/demo-reader", RoleSessionName="alice", WebIdentityToken=token
    )["Credentials"]
    key_file = tmp_path / ".fedgate" / "session-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 0
    process = _serve_demo(config, port)
    try:
        again = boto3.client(
            "sts",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        assert (
            again.get_caller_identity()["Arn"] == "arn:aws:sts::123456789012:assumed-role/demo-reader/alice"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


@pytest.mark.timeout(240)  # a dozen aws CLI runs, each a fresh Python process
def test_readme_quickstart(demo: tuple[subprocess.Popen[str], Path, int], tmp_path: Path) -> None:
    """The README's lines: dev-token, the aws CLI exchange, the SDK chain, a refusal, a clean stop."""
    process, config, port = demo
    url = f"http://127.0.0.1:{port}"
    token = tmp_path / "token"
    # demo.yaml's own dev-token line, run from another directory: the key file is the one beside
    # the configuration that the gateway serves, not a new one in the working directory.
    (line,) = [c for c in demo_header_commands() if c.startswith("fedgate dev-token")]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    argv = line.replace("config/demo.yaml", str(config)).split()
    minted = subprocess.run(
        [str(BIN / "fedgate"), *argv[1:], "-o", str(token)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert minted.returncode == 0, minted.stderr
    assert not (elsewhere / ".fedgate").exists()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    exchange = _aws(
        env,
        "sts",
        "assume-role-with-web-identity",
        "--endpoint-url",
        url,
        "--region",
        "us-east-1",
        "--role-arn",
        "arn:aws:iam::123456789012:role/demo-reader",
        "--role-session-name",
        "alice",
        "--web-identity-token",
        f"file://{token}",
        "--output",
        "json",
    )
    assert exchange.returncode == 0, exchange.stderr
    result = json.loads(exchange.stdout)
    assert result["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert result["AssumedRoleUser"]["Arn"] == "arn:aws:sts::123456789012:assumed-role/demo-reader/alice"

    chain = dict(
        env,
        AWS_ENDPOINT_URL_STS=url,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ROLE_ARN="arn:aws:iam::123456789012:role/demo-reader",
        AWS_WEB_IDENTITY_TOKEN_FILE=str(token),
        AWS_ROLE_SESSION_NAME="alice",
    )
    who = _aws(chain, "sts", "get-caller-identity", "--output", "json")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["Arn"] == "arn:aws:sts::123456789012:assumed-role/demo-reader/alice"

    refused = _aws(
        env,
        "sts",
        "assume-role-with-web-identity",
        "--endpoint-url",
        url,
        "--region",
        "us-east-1",
        "--role-arn",
        "arn:aws:iam::123456789012:role/demo-admin",
        "--role-session-name",
        "alice",
        "--web-identity-token",
        f"file://{token}",
    )
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr

    # Revoking demo-reader's sessions: the credentials from the first exchange stop working (the
    # gateway reads the database the command wrote, within its poll interval); new sessions work.
    creds = result["Credentials"]
    static = dict(
        env,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
        AWS_SESSION_TOKEN=creds["SessionToken"],
    )
    assert _aws(static, "sts", "get-caller-identity", "--endpoint-url", url).returncode == 0

    # The demo upstream behind the proxy: demo-reader reads and lists, and may not write.
    s3 = ("--endpoint-url", url)
    read = _aws(static, "s3", "cp", "s3://demo-bucket/hello.txt", "-", *s3)
    assert read.returncode == 0 and read.stdout == "Hello from the fedgate demo upstream!\n", read.stderr
    listed = _aws(static, "s3", "ls", "s3://demo-bucket/", *s3)
    assert listed.returncode == 0 and "hello.txt" in listed.stdout, listed.stderr
    (tmp_path / "note.txt").write_text("from alice")
    written = _aws(static, "s3", "cp", str(tmp_path / "note.txt"), "s3://demo-bucket/note.txt", *s3)
    assert written.returncode != 0 and "AccessDenied" in written.stderr
    # demo-admin (the subject admin) may write, and the object is there to read back.
    admin_token = tmp_path / "admin-token"
    subprocess.run(
        [str(BIN / "fedgate"), "dev-token", "-c", str(config), "--sub", "admin", "-o", str(admin_token)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    admin = dict(
        env,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_STS=url,
        AWS_ROLE_ARN="arn:aws:iam::123456789012:role/demo-admin",
        AWS_WEB_IDENTITY_TOKEN_FILE=str(admin_token),
        AWS_ROLE_SESSION_NAME="admin",
    )
    written = _aws(admin, "s3", "cp", str(tmp_path / "note.txt"), "s3://demo-bucket/note.txt", *s3)
    assert written.returncode == 0, written.stderr
    read = _aws(static, "s3", "cp", "s3://demo-bucket/note.txt", "-", *s3)
    assert read.returncode == 0 and read.stdout == "from alice", read.stderr
    revoked = subprocess.run(
        [str(BIN / "fedgate"), "revoke-sessions", "-c", str(config), "--role", "demo-reader"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert revoked.returncode == 0, revoked.stderr
    deadline = time.monotonic() + 30
    while (
        "InvalidClientTokenId"
        not in (after := _aws(static, "sts", "get-caller-identity", "--endpoint-url", url)).stderr
    ):
        assert time.monotonic() < deadline, after
    shutil.rmtree(tmp_path / ".aws" / "cli" / "cache")  # the CLI cached the revoked web-identity session
    fresh = _aws(chain, "sts", "get-caller-identity")
    assert fresh.returncode == 0, fresh.stderr  # a session issued after the cutoff

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["eventName"] for e in events].count("AssumeRoleWithWebIdentity") == 5
    assert any(e.get("errorCode") == "AccessDenied" for e in events)
    logs = [json.loads(line) for line in err.splitlines()]
    assert any(entry["message"] == "fedgate stopped" for entry in logs)
    secret = result["Credentials"]["SecretAccessKey"]
    assert secret not in out and secret not in err and token.read_text() not in out + err


def test_disable_plugins_from_the_environment_reaches_the_gateway(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDGATE_DISABLE_PLUGINS", "saml")
    assert main(["check-config", "-c", str(ROOT / "config" / "demo.yaml")]) == 0
    out = capsys.readouterr().out
    assert "plugins: devissuer, oidc, web)" in out
    # A disabled plugin's section is an unknown key: the demo's web_login needs the web plugin.
    monkeypatch.setenv("FEDGATE_DISABLE_PLUGINS", "web, saml")
    assert main(["check-config", "-c", str(ROOT / "config" / "demo.yaml")]) == 1
    assert "web_login" in capsys.readouterr().err


def test_revoke_sessions_through_the_shared_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command writes the cutoff into the database a gateway reads; names and ARNs both work."""
    import asyncio

    from gateway.config import DatabaseSettings
    from gateway.credentials import CredentialService, IssuedCredentials, KeyRing
    from gateway.db import start_database
    from gateway.errors import InvalidClientTokenId

    database = tmp_path / "state" / "iam.db"
    config = tmp_path / "c.yaml"
    config.write_text(
        "account_id: '123456789012'\n"
        f"database: {{url: 'sqlite:///{database}'}}\n"
        "roles:\n"
        "  - name: app\n"
        "    trust_policy: {Version: '2012-10-17', Statement: [{Effect: Allow, Principal: '*', "
        "Action: 'sts:AssumeRoleWithWebIdentity'}]}\n"
    )
    ring = KeyRing({"k": b"k" * 32}, "k")

    async def validate(issued: IssuedCredentials | None = None) -> IssuedCredentials:
        runtime = await start_database(
            DatabaseSettings(url=f"sqlite:///{database}"), account_id="123456789012", keyring=ring
        )
        service = CredentialService(ring, runtime.revocations)
        try:
            issued = issued or service.issue(
                role_arn="arn:aws:iam::123456789012:role/app", session_name="s", duration_seconds=900
            )
            await service.validate(issued.access_key_id, issued.session_token, now=issued.claims.issued_at)
            return issued
        finally:
            await runtime.close()

    issued = asyncio.run(validate())  # valid before
    time.sleep(0.01)  # the cutoff ("now") must fall after the session was issued
    assert main(["revoke-sessions", "-c", str(config), "--role", "app"]) == 0
    with pytest.raises(InvalidClientTokenId):
        asyncio.run(validate(issued))
    assert "arn:aws:iam::123456789012:role/app: sessions issued before" in capsys.readouterr().out
    assert main(["revoke-sessions", "-c", str(config), "--role", "arn:aws:iam::123456789012:role/app"]) == 0
    assert main(["revoke-sessions", "-c", str(config), "--role", "nope"]) == 2
    assert main(["revoke-sessions", "-c", str(config), "--role", "app", "--before", "yesterday"]) == 2


def test_revoke_sessions_of_a_user_revokes_what_its_keys_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--user``: the sessions a declared or database user asked for, found by name."""
    import asyncio

    from gateway.config import DatabaseSettings
    from gateway.credentials import CredentialService, IssuedCredentials, KeyRing
    from gateway.db import IamDatabase, start_database
    from gateway.errors import InvalidClientTokenId

    database = tmp_path / "iam.db"
    config = tmp_path / "c.yaml"
    config.write_text(
        "account_id: '123456789012'\n"
        f"database: {{url: 'sqlite:///{database}'}}\n"
        "users:\n"
        "  - {name: Declared, path: /ops/}\n"
    )
    ring = KeyRing({"k": b"k" * 32}, "k")
    settings = DatabaseSettings(url=f"sqlite:///{database}")

    async def make_user() -> str:
        db = IamDatabase.from_settings(settings, account_id="123456789012", keyring=ring)
        try:
            await db.start()
            async with db.write() as tx:
                user = await tx.users.create("dbuser")
            return user.id
        finally:
            await db.close()

    user_id = asyncio.run(make_user())

    async def validate(user_arn: str, issued: IssuedCredentials | None = None) -> IssuedCredentials:
        runtime = await start_database(settings, account_id="123456789012", keyring=ring)
        service = CredentialService(ring, runtime.revocations)
        try:
            issued = issued or service.issue_user_session(
                principal="user",
                user_arn=user_arn,
                user_id=user_id,
                source_key_id="AKIAEXAMPLEEXAMPLE12",
                name=user_arn.rsplit("/", 1)[1],
                duration_seconds=900,
                now=time.time(),
            )
            await service.validate(issued.access_key_id, issued.session_token, now=issued.claims.issued_at)
            return issued
        finally:
            await runtime.close()

    for name, arn in (
        ("dbuser", "arn:aws:iam::123456789012:user/dbuser"),
        ("declared", "arn:aws:iam::123456789012:user/ops/Declared"),  # names ignore case
    ):
        issued = asyncio.run(validate(arn))
        time.sleep(0.01)  # the cutoff ("now") must fall after the session was issued
        assert main(["revoke-sessions", "-c", str(config), "--user", name]) == 0
        with pytest.raises(InvalidClientTokenId):
            asyncio.run(validate(arn, issued))
        assert f"{arn}: sessions issued before" in capsys.readouterr().out
    assert main(["revoke-sessions", "-c", str(config), "--user", "nobody"]) == 2
    with pytest.raises(SystemExit) as exited:  # one or the other, as argparse says
        main(["revoke-sessions", "-c", str(config), "--user", "dbuser", "--role", "x"])
    assert exited.value.code == 2


def test_commands_that_need_a_shared_database_say_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "account_id: '123456789012'\n"
        "roles: [{name: app, trust_policy: {Version: '2012-10-17', Statement: [{Effect: Allow, "
        "Principal: '*', Action: 'sts:AssumeRoleWithWebIdentity'}]}}]\n"
    )
    for command in (
        ["revoke-sessions", "-c", str(config), "--role", "app"],
        ["db", "upgrade", "-c", str(config)],
        ["db", "current", "-c", str(config)],
        ["serve", "-c", str(config), "--workers", "2"],
    ):
        capsys.readouterr()
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "set database.url" in err, (command, err)


def test_db_upgrade_and_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.db.migrate import head_revision

    config = tmp_path / "c.yaml"
    config.write_text(f"account_id: '123456789012'\ndatabase: {{url: 'sqlite:///{tmp_path}/iam.db'}}\n")
    head = head_revision()
    assert main(["db", "current", "-c", str(config)]) == 1
    assert f"this fedgate needs {head}: run `fedgate db upgrade`" in capsys.readouterr().out
    assert main(["db", "upgrade", "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"database schema upgraded from empty to {head}"
    assert main(["db", "upgrade", "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"database schema at {head}: already current"
    assert main(["db", "current", "-c", str(config)]) == 0
    assert capsys.readouterr().out.strip() == f"database schema at {head}: current"


def test_an_unreachable_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "account_id: '123456789012'\n"
        f"database: {{url: 'postgresql://fedgate:s3cret-pw@127.0.0.1:{_free_port()}/iam', "
        "connect_timeout_seconds: 2}\n"
    )
    assert main(["db", "current", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "the IAM database is unreachable" in err
    assert "check database.url" in err and "s3cret-pw" not in err


def test_make_serve_installs_only_what_running_needs() -> None:
    """`make serve` installs fedgate without extras; `make test` keeps installing the test extras."""
    dry = subprocess.run(
        ["make", "-n", "-B", "serve", "VENV=/nonexistent-venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    installs = [
        line for line in dry.stdout.splitlines() if "pip install" in line and "--upgrade pip" not in line
    ]
    assert installs == ["/nonexistent-venv/bin/python -m pip install --quiet -e ."], dry.stdout
    assert "npm" not in dry.stdout
    test = subprocess.run(
        ["make", "-n", "-B", "install"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "-e '.[test]'" in test.stdout


def test_demo_browser_sign_in_through_the_development_issuer(
    demo: tuple[subprocess.Popen[str], Path, int],
) -> None:
    """/sso/ works against the demo alone: the development issuer's form, code flow with PKCE."""
    import asyncio
    from urllib.parse import parse_qs, urlsplit

    import aiohttp

    _, _, port = demo
    url = f"http://127.0.0.1:{port}"

    async def journey() -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{url}/sso/login/dev", allow_redirects=False) as response:
                assert response.status == 303, await response.text()
                authorize = response.headers["Location"]
            query = parse_qs(urlsplit(authorize).query)
            assert authorize.startswith(f"{url}/dev-issuer/authorize?")
            assert query["code_challenge_method"] == ["S256"] and query["client_id"] == ["demo"]
            async with http.get(authorize) as response:
                form = await response.text()
                assert response.status == 200 and 'name="username"' in form
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
            async with http.post(
                authorize, data={**fields, "username": "alice"}, allow_redirects=False
            ) as response:
                assert response.status == 302
                callback = response.headers["Location"]
            assert callback.startswith(f"{url}/sso/callback/dev?code=")
            async with http.get(callback) as response:
                page = await response.text()
                assert response.status == 200 and str(response.url).endswith("/sso/roles"), page[:500]
            assert "demo-reader" in page and "demo-admin" not in page  # admin trusts only sub admin
            # The code was spent; and the issuer refuses what a real one would.
            code = parse_qs(urlsplit(callback).query)["code"][0]
            token = {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": "demo",
                "redirect_uri": fields["redirect_uri"],
                "code_verifier": "x" * 43,
            }
            async with http.post(f"{url}/dev-issuer/token", data=token) as response:
                assert response.status == 400 and (await response.json())["error"] == "invalid_grant"
            bad = {**fields, "redirect_uri": "https://attacker.example/cb"}
            async with http.get(f"{url}/dev-issuer/authorize", params=bad) as response:
                assert response.status == 400 and "loopback" in await response.text()
            no_pkce = {k: v for k, v in fields.items() if not k.startswith("code_challenge")}
            async with http.get(f"{url}/dev-issuer/authorize", params=no_pkce) as response:
                assert response.status == 400 and "PKCE" in await response.text()

    asyncio.run(journey())
