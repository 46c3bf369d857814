"""MFA-protected roles through the SDKs' own profiles, over TCP: ``role_arn`` + ``source_profile``
(or ``credential_source``) + ``mfa_serial`` + ``external_id`` in ``~/.aws/config``, with boto3 (the
code given to botocore's prompter, as botocore asks for it), with the aws CLI (the code typed at
its prompt) and with the JS SDK's ``fromIni`` (its ``mfaCodeProvider``). The user and its virtual
MFA device are made with the stock CLI: the QR code it writes is scanned back to the seed, and two
consecutive codes enable the device.

The roles are those of :mod:`tests.flows.mfa`; each test has users of its own, so each device's
codes are its own (a device accepts each time step's code once).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.iam.denial import MARKER
from gateway.sts.mfa import INVALID_CODE
from tests.conftest import BackgroundLoop, config_from, serve_app
from tests.flows.agent_process import JS, node
from tests.flows.conftest import aws_cli
from tests.flows.mfa import (
    ACCOUNT,
    EXTERNAL_ID,
    MFA_RECENT,
    MFA_REQUIRED,
    NO_MFA,
    Authenticator,
    MfaUser,
    Replica,
    error_of,
    gateway_config,
    mfa_user,
    new_user,
    wrong,
)
from tests.iam.api.test_mfa_cli import scan_qr

NO_RETRIES = Config(retries={"max_attempts": 1})


@pytest.fixture(scope="module")
def gateway(
    background_loop: BackgroundLoop,
    redis_url: str,
    redis_run_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replica]:
    """One fedgate on 127.0.0.1: a SQLite file for IAM, the real Redis for spent codes."""
    database = f"sqlite:///{tmp_path_factory.mktemp('iam')}/iam.db"
    config = config_from(gateway_config(database, redis_url, f"{redis_run_prefix}mfa-profile:"))
    runner, port, _ = background_loop.run(serve_app(config))
    yield Replica(f"http://127.0.0.1:{port}")
    background_loop.run(runner.cleanup())


def _write_profiles(
    env: Mapping[str, str], url: str, source: tuple[str, str, str], profiles: Mapping[str, Mapping[str, str]]
) -> None:
    """``source``'s long-term key as a credentials-file profile (``(name, key id, secret)``), and
    ``profiles`` in the config file, each with fedgate as its endpoint."""
    name, key, secret = source
    Path(env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        f"[{name}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
    )
    lines: list[str] = []
    for profile, settings in profiles.items():
        lines.append(f"[profile {profile}]")
        lines += [f"{k} = {v}" for k, v in {**settings, "endpoint_url": url}.items()]
        lines.append("")
    Path(env["AWS_CONFIG_FILE"]).write_text("\n".join(lines))


def _mfa_profile(user: MfaUser, role: str = MFA_REQUIRED, **extra: str) -> dict[str, str]:
    return {
        "role_arn": role,
        "source_profile": user.name,
        "mfa_serial": user.serial,
        "external_id": EXTERNAL_ID,
        "role_session_name": f"{user.name}-profile",
    } | extra


def _source(user: MfaUser) -> tuple[str, str, str]:
    return user.name, user.key, user.secret


def _profile_session(profile: str, answer: Callable[[], str]) -> tuple[boto3.Session, list[str]]:
    """A boto3 session of ``profile`` whose MFA prompts ``answer`` answers; the prompts it saw.

    botocore's AssumeRoleProvider asks its prompter (``getpass.getpass`` by default) for the code
    of the profile's ``mfa_serial``; a program sets the prompter to answer without a terminal.
    """
    core = botocore.session.Session()
    session = boto3.Session(botocore_session=core, profile_name=profile)
    prompts: list[str] = []

    def prompter(prompt: str) -> str:
        prompts.append(prompt)
        return answer()

    core.get_component("credential_provider").get_provider("assume-role")._prompter = prompter
    return session, prompts


def _cli(env: Mapping[str, str], *args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """The aws CLI; ``code`` is typed at its MFA prompt. A session of its own has no terminal, so
    the prompt (``getpass``) reads standard input, as it would read the keyboard."""
    return subprocess.run(
        [aws_cli(), *args, "--output", "json"],
        env={**env, "PATH": "/usr/bin:/bin"},
        input="" if code is None else f"{code}\n",  # no code: a prompt would meet the end of input
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def _decoded_denial(session: boto3.Session, call: Callable[[], Any]) -> dict[str, Any]:
    """The decoded authorization message of the AccessDenied ``call`` raises."""
    with pytest.raises(ClientError) as excinfo:
        call()
    code, message = error_of(excinfo)
    assert code == "AccessDenied" and MARKER in message
    blob = message.rpartition(MARKER)[2]
    sts = session.client("sts", config=NO_RETRIES)
    decoded: dict[str, Any] = json.loads(
        sts.decode_authorization_message(EncodedMessage=blob)["DecodedMessage"]
    )
    return decoded


def _context(decoded: Mapping[str, Any]) -> dict[str, list[str]]:
    items = decoded["context"]["conditions"]["items"]
    return {item["key"]: [v["value"] for v in item["values"]["items"]] for item in items}


def test_a_cli_made_device_then_boto3s_mfa_profile(
    gateway: Replica, clean_aws_env: dict[str, str], tmp_path: Path
) -> None:
    arn, key, secret = new_user(gateway.client("iam"), "alice")
    # alice sets up her own device with the stock CLI and her long-term key.
    alice_env = {**clean_aws_env, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    qr = tmp_path / "qr.png"
    created = _ok(
        _cli(
            alice_env,
            "--endpoint-url",
            gateway.url,
            "iam",
            "create-virtual-mfa-device",
            "--virtual-mfa-device-name",
            "alice-phone",
            "--bootstrap-method",
            "QRCodePNG",
            "--outfile",
            str(qr),
        )
    )
    serial = created["VirtualMFADevice"]["SerialNumber"]
    assert serial == f"arn:aws:iam::{ACCOUNT}:mfa/alice-phone"
    (seed,) = parse_qs(urlsplit(scan_qr(qr)).query)["secret"]  # what her phone's camera reads
    app = Authenticator(seed)
    first, second = app.two_consecutive()
    _ok(
        _cli(
            alice_env,
            "--endpoint-url",
            gateway.url,
            "iam",
            "enable-mfa-device",
            "--user-name",
            "alice",
            "--serial-number",
            serial,
            "--authentication-code1",
            first,
            "--authentication-code2",
            second,
        )
    )
    alice = MfaUser("alice", arn, key, secret, serial, app)

    _write_profiles(clean_aws_env, gateway.url, _source(alice), {"mfa": _mfa_profile(alice)})
    session, prompts = _profile_session("mfa", app.code)
    credentials = session.get_credentials()
    assert credentials is not None and credentials.method == "assume-role"
    identity = session.client("sts", config=NO_RETRIES).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/mfa-required/alice-profile"
    assert prompts == [f"Enter MFA code for {serial}: "]

    # The session carries the MFA: the role may list users only with aws:MultiFactorAuthPresent.
    iam = session.client("iam", config=NO_RETRIES)
    assert "alice" in {u["UserName"] for u in iam.list_users()["Users"]}
    decoded = _decoded_denial(session, lambda: iam.get_user(UserName="alice"))
    assert decoded["context"]["action"] == "iam:GetUser"
    context = _context(decoded)
    assert context["aws:MultiFactorAuthPresent"] == ["true"]
    (age,) = context["aws:MultiFactorAuthAge"]
    assert 0 <= int(age) < 3600

    # ... and along the chain: mfa-recent trusts mfa-required's sessions whose MFA is recent.
    chained = session.client("sts", config=NO_RETRIES).assume_role(RoleArn=MFA_RECENT, RoleSessionName="next")
    assert chained["AssumedRoleUser"]["Arn"].endswith(":assumed-role/mfa-recent/next")
    assert prompts == [f"Enter MFA code for {serial}: "]  # asked once


def test_a_trust_policy_on_the_age_of_the_mfa(gateway: Replica, clean_aws_env: dict[str, str]) -> None:
    bob = mfa_user(gateway.client("iam"), "bob")
    profiles = {
        "recent": _mfa_profile(bob, MFA_RECENT),
        "recent-no-mfa": {"role_arn": MFA_RECENT, "source_profile": "bob"},
        "plain": {"role_arn": NO_MFA, "source_profile": "bob", "role_session_name": "plain"},
    }
    _write_profiles(clean_aws_env, gateway.url, _source(bob), profiles)
    session, prompts = _profile_session("recent", bob.app.code)
    identity = session.client("sts", config=NO_RETRIES).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/mfa-recent/bob-profile"
    assert len(prompts) == 1

    # Without MFA, aws:MultiFactorAuthAge is absent: NumericLessThan does not match.
    session, prompts = _profile_session("recent-no-mfa", bob.app.code)
    with pytest.raises(ClientError) as excinfo:
        session.client("sts", config=NO_RETRIES).get_caller_identity()
    assert error_of(excinfo) == (
        "AccessDenied",
        f"User: {bob.arn} is not authorized to perform: sts:AssumeRole on resource: {MFA_RECENT}",
    )
    assert prompts == []

    # A role that trusts without MFA gives a session without it: the MFA-only IAM call is denied.
    session, _ = _profile_session("plain", bob.app.code)
    iam = session.client("iam", config=NO_RETRIES)
    decoded = _decoded_denial(session, iam.list_users)
    assert decoded["allowed"] is False and decoded["context"]["action"] == "iam:ListUsers"
    context = _context(decoded)
    assert context["aws:MultiFactorAuthPresent"] == ["false"]
    assert "aws:MultiFactorAuthAge" not in context


def test_the_cli_asks_for_the_code_of_a_source_profile_or_an_environment_key(
    gateway: Replica, clean_aws_env: dict[str, str]
) -> None:
    admin = gateway.client("iam")
    carol, dave = mfa_user(admin, "carol"), mfa_user(admin, "dave")
    profiles = {
        "mfa": _mfa_profile(carol),
        "from-env": {
            "role_arn": MFA_REQUIRED,
            "credential_source": "Environment",
            "mfa_serial": dave.serial,
            "external_id": EXTERNAL_ID,
            "role_session_name": "from-env",
        },
    }
    _write_profiles(clean_aws_env, gateway.url, _source(carol), profiles)

    done = _cli(clean_aws_env, "sts", "get-caller-identity", "--profile", "mfa", code=carol.app.code())
    identity = _ok(done)
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/mfa-required/carol-profile"
    assert f"Enter MFA code for {carol.serial}:" in done.stderr
    # The CLI keeps the session in ~/.aws/cli/cache: the next command asks nothing and the session
    # still carries the MFA.
    done = _cli(clean_aws_env, "iam", "list-users", "--profile", "mfa")
    assert "carol" in {u["UserName"] for u in _ok(done)["Users"]}
    assert "Enter MFA code" not in done.stderr

    # credential_source = Environment: the source key is dave's, from the environment.
    env = {**clean_aws_env, "AWS_ACCESS_KEY_ID": dave.key, "AWS_SECRET_ACCESS_KEY": dave.secret}
    done = _cli(env, "sts", "get-caller-identity", "--profile", "from-env", code=dave.app.code())
    assert _ok(done)["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/mfa-required/from-env"
    assert f"Enter MFA code for {dave.serial}:" in done.stderr


def test_the_cli_passes_serial_number_and_token_code_to_assume_role(
    gateway: Replica, clean_aws_env: dict[str, str]
) -> None:
    frank = mfa_user(gateway.client("iam"), "frank")
    env = {**clean_aws_env, "AWS_ACCESS_KEY_ID": frank.key, "AWS_SECRET_ACCESS_KEY": frank.secret}
    command = ["--endpoint-url", gateway.url, "sts", "assume-role", "--role-arn", MFA_REQUIRED]
    command += [
        "--role-session-name",
        "by-hand",
        "--external-id",
        EXTERNAL_ID,
        "--serial-number",
        frank.serial,
    ]
    code = frank.app.code()
    assumed = _ok(_cli(env, *command, "--token-code", code))
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/mfa-required/by-hand"
    session = assumed["Credentials"]
    iam = gateway.client("iam", session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
    assert iam.list_users()["Users"]
    # The same code again, a moment later: spent.
    done = _cli(env, *command, "--token-code", code)
    assert done.returncode != 0 and INVALID_CODE in done.stderr


def _js_profile(env: Mapping[str, str], url: str, profile: str, code: str) -> dict[str, Any]:
    """``tests/js/sts-mfa-profile.mjs``: the JS SDK's ``fromIni``, ``code`` typed at its prompt."""
    done = subprocess.run(
        [node(), str(JS / "sts-mfa-profile.mjs"), url, profile],
        env={**env, "PATH": "/usr/bin:/bin"},
        input=f"{code}\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=JS,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output from node (status {done.returncode}): {done.stderr}"
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer


def test_the_js_sdks_ini_provider_asks_its_mfa_code_provider(
    gateway: Replica, clean_aws_env: dict[str, str]
) -> None:
    judy = mfa_user(gateway.client("iam"), "judy")
    _write_profiles(clean_aws_env, gateway.url, _source(judy), {"mfa": _mfa_profile(judy)})
    assert _js_profile(clean_aws_env, gateway.url, "mfa", judy.app.code()) == {
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/mfa-required/judy-profile",
        "Asked": [judy.serial],
    }


def test_the_mfa_role_refuses_without_mfa_a_wrong_code_or_a_wrong_external_id(
    gateway: Replica, clean_aws_env: dict[str, str]
) -> None:
    erin = mfa_user(gateway.client("iam"), "erin")
    profiles = {
        "no-mfa": {"role_arn": MFA_REQUIRED, "source_profile": "erin", "external_id": EXTERNAL_ID},
        "mfa": _mfa_profile(erin),
        "other-external-id": _mfa_profile(erin, external_id="ext-wrong"),
    }
    _write_profiles(clean_aws_env, gateway.url, _source(erin), profiles)
    refused = f"User: {erin.arn} is not authorized to perform: sts:AssumeRole on resource: {MFA_REQUIRED}"

    def denied(profile: str, answer: Callable[[], str]) -> tuple[str, str]:
        session, _ = _profile_session(profile, answer)
        with pytest.raises(ClientError) as excinfo:
            session.client("sts", config=NO_RETRIES).get_caller_identity()
        return error_of(excinfo)

    assert denied("no-mfa", erin.app.code) == ("AccessDenied", refused)
    right = erin.app.code()
    assert denied("mfa", lambda: wrong(right)) == ("AccessDenied", INVALID_CODE)
    # The aws CLI says the same, typed at its prompt.
    done = _cli(clean_aws_env, "sts", "get-caller-identity", "--profile", "mfa", code=wrong(right))
    assert done.returncode != 0
    assert "AccessDenied" in done.stderr and INVALID_CODE in done.stderr
    # The right code with the wrong external id: the trust policy refuses.
    assert denied("other-external-id", lambda: right) == ("AccessDenied", refused)


def test_every_mfa_parameter_error_of_assume_role(gateway: Replica, clean_aws_env: dict[str, str]) -> None:
    admin = gateway.client("iam")
    grace, heidi = mfa_user(admin, "grace"), mfa_user(admin, "heidi")
    sts = boto3.client(
        "sts",
        endpoint_url=gateway.url,
        region_name="us-east-1",
        aws_access_key_id=grace.key,
        aws_secret_access_key=grace.secret,
        # fedgate, not botocore, must refuse bad input.
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )
    base = {"RoleArn": MFA_REQUIRED, "RoleSessionName": "errors", "ExternalId": EXTERNAL_ID}
    cases: list[tuple[dict[str, str], tuple[str, str | None]]] = [
        (
            {"SerialNumber": grace.serial},
            ("AccessDenied", "MultiFactorAuthentication failed: TokenCode is required with SerialNumber."),
        ),
        ({"TokenCode": grace.app.code()}, ("ValidationError", None)),
        ({"SerialNumber": "short", "TokenCode": "123456"}, ("ValidationError", None)),
        ({"SerialNumber": f"{grace.serial} x", "TokenCode": "123456"}, ("ValidationError", None)),
        ({"SerialNumber": grace.serial, "TokenCode": "12345a"}, ("ValidationError", None)),
        # heidi's device and her current code: not grace's to use, and not spent by trying.
        ({"SerialNumber": heidi.serial, "TokenCode": heidi.app.code()}, ("AccessDenied", INVALID_CODE)),
        (
            {"SerialNumber": f"arn:aws:iam::{ACCOUNT}:mfa/nobody", "TokenCode": "123456"},
            ("AccessDenied", INVALID_CODE),
        ),
    ]
    for extra, (code, message) in cases:
        with pytest.raises(ClientError) as excinfo:
            sts.assume_role(**base, **extra)
        got = error_of(excinfo)
        assert got[0] == code and (message is None or got[1] == message), (extra, got)
    # heidi's code was not spent by grace's attempt: heidi can still use it.
    (heidis_code,) = (extra["TokenCode"] for extra, _ in cases if extra.get("SerialNumber") == heidi.serial)
    heidis = gateway.client("sts", heidi.key, heidi.secret).assume_role(
        **base, SerialNumber=heidi.serial, TokenCode=heidis_code
    )
    assert heidis["AssumedRoleUser"]["Arn"].endswith(":assumed-role/mfa-required/errors")
