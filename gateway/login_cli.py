"""``fedgate login`` and ``fedgate credential-process``: SSO credentials for the command line.

``fedgate login --url URL --profile P`` signs in through the gateway's browser pages:

* by default it listens on ``http://127.0.0.1:PORT/callback``, opens the browser (or prints the
  URL with ``--no-browser``) at ``URL/sso/cli/authorize`` with a state and a PKCE S256 challenge,
  and receives a one-time code there once a role is chosen, which it redeems with its verifier;
* with ``--device`` (headless machines) it prints a short code to enter at ``URL/sso/device`` in a
  browser anywhere, and polls until the person approves.

It then writes the profile: fedgate's own state in ``~/.fedgate/profiles/P.json`` (mode 0600: the
refresh token and cached credentials) and ``[profile P]`` in ``~/.aws/config`` with
``credential_process = fedgate credential-process --profile P`` and ``endpoint_url = URL`` (so
the profile's calls go to the gateway, not to AWS). AWS SDKs then run
``fedgate credential-process``, which prints the JSON they expect, renewing the credentials through
the refresh token shortly before they expire, for as long as the browser sign-in lasts.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import hmac
import http.server
import json
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlencode, urlsplit

from gateway.jsonlimits import loads as bounded_loads
from gateway.net import is_loopback_host
from gateway.privatefile import write_private

__all__ = [
    "REFRESH_MARGIN",
    "LoginFailed",
    "add_commands",
    "aws_config_path",
    "credential_process",
    "credential_process_json",
    "device_login",
    "fedgate_home",
    "loopback_login",
    "write_aws_profile",
]

#: Credentials closer than this to expiry (seconds) are renewed rather than handed out.
REFRESH_MARGIN = 300
_PROFILE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
_MAX_BODY = 64 * 1024
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class LoginFailed(Exception):
    """The sign-in or renewal failed; the message says what to do and holds no secret."""


# --- files ---------------------------------------------------------------------------------------


def fedgate_home() -> Path:
    """``$FEDGATE_HOME`` or ``~/.fedgate``."""
    return Path(os.environ.get("FEDGATE_HOME") or Path.home() / ".fedgate")


def _profile_path(profile: str) -> Path:
    if not _PROFILE_RE.match(profile):
        raise LoginFailed("profile names are 1-64 letters, digits and . _ -")
    return fedgate_home() / "profiles" / f"{profile}.json"


def _write_private(path: Path, data: dict[str, Any]) -> None:
    write_private(path, json.dumps(data))


def _read_profile(profile: str) -> dict[str, Any]:
    path = _profile_path(profile)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LoginFailed(
            f"no fedgate profile {profile!r}; run `fedgate login --profile {profile}`"
        ) from None
    if not isinstance(data, dict):
        raise LoginFailed(f"{path} is not a fedgate profile")
    return data


@contextlib.contextmanager
def _locked(profile: str) -> Iterator[None]:
    """One renewal at a time per profile (SDKs may start several credential processes at once)."""
    path = _profile_path(profile).with_suffix(".lock")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def aws_config_path() -> Path:
    """``$AWS_CONFIG_FILE`` or ``~/.aws/config``."""
    return Path(os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config")


def _fedgate_command() -> str:
    beside = Path(sys.executable).with_name("fedgate")
    return str(beside) if beside.exists() else "fedgate"


def write_aws_profile(profile: str, region: str, path: Path | None = None, *, endpoint_url: str = "") -> Path:
    """Set ``[profile P]`` in the AWS config file to run ``fedgate credential-process``.

    ``endpoint_url`` (the gateway's URL) is written as the profile's ``endpoint_url``, so the aws
    CLI and SDKs send that profile's calls to fedgate, not to AWS. Other sections (and their
    comments) are kept as they are; only this profile's block is replaced.
    """
    path = path or aws_config_path()
    header = "[default]" if profile == "default" else f"[profile {profile}]"
    block = [header, f"credential_process = {_fedgate_command()} credential-process --profile {profile}"]
    if region:
        block.append(f"region = {region}")
    if endpoint_url:
        block.append(f"endpoint_url = {endpoint_url}")
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept: list[str] = []
    skipping = False
    for line in lines:
        if line.strip().startswith("["):
            skipping = line.strip() == header
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    text = "\n".join([*kept, "", *block]).lstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- HTTP ----------------------------------------------------------------------------------------


def _post(url: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - the URL is the gateway's, checked to be http(s)
        url,
        data=urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the Request above
            status, raw = response.status, response.read(_MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(_MAX_BODY + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise LoginFailed(f"cannot reach the gateway at {url}: {getattr(exc, 'reason', exc)}") from None
    try:
        body = bounded_loads(raw[:_MAX_BODY])
    except ValueError:
        raise LoginFailed(f"the gateway answered {status} without JSON") from None
    return status, body if isinstance(body, dict) else {}


def _base(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoginFailed("--url must be the gateway's http(s) address")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        # Credentials and the refresh token would cross the network in clear.
        raise LoginFailed("--url must use https unless the gateway is on this machine (loopback)")
    return url.rstrip("/")


def _credentials(body: dict[str, Any]) -> dict[str, Any]:
    needed = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
    if not all(isinstance(body.get(k), str) for k in needed):
        raise LoginFailed("the gateway's answer has no credentials")
    return body


def _save(profile: str, url: str, body: dict[str, Any], region: str) -> dict[str, Any]:
    data = {
        "url": url,
        "region": region,
        "role_arn": body.get("RoleArn"),
        "refresh_token": body.get("refresh_token"),
        "refresh_expires_at": body.get("refresh_expires_at"),
        "credentials": {k: body[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")},
    }
    _write_private(_profile_path(profile), data)
    return data


# --- loopback login ------------------------------------------------------------------------------


class _Callback(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self.send_error(404)
            return
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if not hmac.compare_digest(query.get("state", ""), self.server.expected_state):
            self.send_error(400, "state mismatch")
            return
        self.server.code = query.get("code")
        page = (
            b'<!doctype html><html lang="en"><meta charset="utf-8"><title>fedgate login</title>'
            b"<p>Signed in. You can close this window and return to the terminal.</p></html>"
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: Any) -> None:  # the query holds the code: no logging
        return


class _CallbackServer(http.server.HTTPServer):
    expected_state = ""
    code: str | None = None


def loopback_login(
    url: str,
    profile: str,
    *,
    region: str = "us-east-1",
    open_browser: Callable[[str], object] = webbrowser.open,
    out: TextIO = sys.stderr,
    timeout: float = 300,
) -> dict[str, Any]:
    """Sign in through a browser on this machine; write and return the profile."""
    base = _base(url)
    _profile_path(profile)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    server = _CallbackServer(("127.0.0.1", 0), _Callback)
    server.expected_state = secrets.token_urlsafe(24)
    server.timeout = 0.5
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
    query = {
        "redirect_uri": redirect_uri,
        "state": server.expected_state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    target = f"{base}/sso/cli/authorize?{urlencode(query)}"
    print(f"Sign in and choose a role in your browser:\n  {target}", file=out)
    try:
        open_browser(target)
        deadline = time.monotonic() + timeout
        while server.code is None and time.monotonic() < deadline:
            server.handle_request()
    finally:
        server.server_close()
    if server.code is None:
        raise LoginFailed("no answer from the browser in time; run `fedgate login` again")
    status, body = _post(
        f"{base}/sso/cli/token",
        {
            "grant_type": "authorization_code",
            "code": server.code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
        },
    )
    if status != 200:
        raise LoginFailed(f"the gateway refused the sign-in: {body.get('error_description', status)}")
    return _finish(profile, base, _credentials(body), region, out)


def _finish(profile: str, base: str, body: dict[str, Any], region: str, out: TextIO) -> dict[str, Any]:
    data = _save(profile, base, body, region)
    config = write_aws_profile(profile, region, endpoint_url=base)
    print(
        f"Signed in as {body.get('AssumedRoleArn', body.get('RoleArn'))}; profile {profile!r} in {config}.",
        file=out,
    )
    return data


# --- device login --------------------------------------------------------------------------------


def device_login(
    url: str,
    profile: str,
    *,
    region: str = "us-east-1",
    out: TextIO = sys.stderr,
    sleep: Callable[[float], object] = time.sleep,
) -> dict[str, Any]:
    """Sign in from a machine without a browser: show a code, poll until it is approved."""
    base = _base(url)
    _profile_path(profile)
    status, start = _post(f"{base}/sso/device/authorize", {})
    if status != 200 or not isinstance(start.get("device_code"), str):
        raise LoginFailed("the gateway did not start a device sign-in")
    print(
        f"On any device, open {start['verification_uri']} and enter the code:\n\n    {start['user_code']}\n\n"
        f"(or open {start['verification_uri_complete']})",
        file=out,
    )
    interval = float(start.get("interval", 5))
    deadline = time.monotonic() + float(start.get("expires_in", 600))
    while time.monotonic() < deadline:
        sleep(interval)
        status, body = _post(
            f"{base}/sso/cli/token", {"grant_type": DEVICE_GRANT, "device_code": start["device_code"]}
        )
        if status == 200:
            return _finish(profile, base, _credentials(body), region, out)
        error = body.get("error")
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            raise LoginFailed(f"device sign-in failed: {body.get('error_description', error)}")
    raise LoginFailed("the code expired before it was approved; run `fedgate login --device` again")


# --- credential_process --------------------------------------------------------------------------


def _expires(creds: dict[str, Any]) -> float:
    return datetime.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def credential_process(profile: str, *, now: Callable[[], float] = time.time) -> dict[str, Any]:
    """The ``credential_process`` JSON for ``profile``, renewed first if it expires soon."""
    with _locked(profile):
        data = _read_profile(profile)
        creds = data.get("credentials") or {}
        if creds and _expires(creds) - now() > REFRESH_MARGIN:
            return credential_process_json(creds)
        refresh = data.get("refresh_token")
        if not refresh:
            raise LoginFailed(f"profile {profile!r} cannot renew; run `fedgate login --profile {profile}`")
        status, body = _post(
            f"{data['url']}/sso/cli/token", {"grant_type": "refresh_token", "refresh_token": refresh}
        )
        if status != 200:
            reason = body.get("error_description", status)
            raise LoginFailed(f"renewal refused ({reason}); run `fedgate login --profile {profile}`")
        body = _credentials(body)
        body.setdefault("refresh_token", refresh)
        if not body["refresh_token"]:
            body["refresh_token"] = refresh
        _save(profile, data["url"], body, data.get("region", ""))
        return credential_process_json(body)


def credential_process_json(creds: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON (version 1) ``credential_process`` prints, from a mapping of the four STS names."""
    return {
        "Version": 1,
        **{k: creds[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")},
    }


# --- argparse ------------------------------------------------------------------------------------


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Register ``login`` and ``credential-process``."""
    login = sub.add_parser(
        "login",
        help="sign in through the browser and write a named AWS profile",
        description="Sign in through the gateway's SSO pages and write PROFILE: ~/.fedgate/profiles/"
        "PROFILE.json and a credential_process entry in ~/.aws/config.",
    )
    login.add_argument(
        "--url",
        default=os.environ.get("FEDGATE_URL"),
        required="FEDGATE_URL" not in os.environ,
        help="the gateway's address (default: $FEDGATE_URL)",
    )
    login.add_argument("--profile", default="default", help="AWS profile to write (default: default)")
    login.add_argument("--region", default="us-east-1", help="region written into the profile")
    login.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    login.add_argument(
        "--device", action="store_true", help="headless: approve a code in a browser elsewhere"
    )
    login.set_defaults(handler=_login)

    process = sub.add_parser(
        "credential-process",
        help="print credentials for AWS SDKs' credential_process",
        description="Print the JSON AWS SDKs expect from credential_process, renewing the credentials "
        f"when they expire within {REFRESH_MARGIN} seconds.",
    )
    process.add_argument("--profile", default="default", help="fedgate profile (from `fedgate login`)")
    process.set_defaults(handler=_credential_process)


def _login(args: argparse.Namespace) -> int:
    try:
        if args.device:
            device_login(args.url, args.profile, region=args.region)
        else:
            opener: Callable[[str], object] = (lambda _url: None) if args.no_browser else webbrowser.open
            loopback_login(args.url, args.profile, region=args.region, open_browser=opener)
    except LoginFailed as exc:
        print(f"fedgate login: {exc}", file=sys.stderr)
        return 1
    return 0


def _credential_process(args: argparse.Namespace) -> int:
    try:
        output = credential_process(args.profile)
    except LoginFailed as exc:
        print(f"fedgate credential-process: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(output))
    return 0
