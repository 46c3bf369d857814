"""``fedgate check-config``: it refuses what ``serve`` refuses, and reports findings (in the manner of
IAM Access Analyzer's ValidatePolicy) about what serve would accept but cannot work as written."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main
from gateway.testing.saml import SAMLTestIdP

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
GITHUB = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check(
    tmp_path: Path, raw: dict[str, Any], capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, Any]:
    path = tmp_path / "fedgate.yaml"
    path.write_text(yaml.safe_dump(raw))
    code = main(["check-config", "-c", str(path), "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def _codes(report: Any) -> set[tuple[str, str, str]]:
    return {(f["severity"], f["code"], f["path"]) for f in report["findings"]}


def _trust(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _web_identity(
    principal: Any = GITHUB, action: Any = "sts:AssumeRoleWithWebIdentity", **condition: Any
) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Principal": {"Federated": principal}, "Action": action}
    if condition:
        statement["Condition"] = condition
    return statement


def _base(**more: Any) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT,
        "providers": [
            {
                "type": "oidc",
                "issuer": "https://token.actions.githubusercontent.com",
                "audiences": ["sts.amazonaws.com"],
            }
        ],
        **more,
    }


def test_the_readme_essentials_are_refused_until_their_secrets_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's own block: an unset variable and a missing file, then a 3-byte key."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("The\nessentials:\n\n```yaml\n", 1)[1].split("```", 1)[0]
    raw = yaml.safe_load(block)
    for name in ("FEDGATE_KEY_K2", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    code, report = _check(tmp_path, raw, capsys)
    assert code == 1 and not report["ok"]
    messages = {f["path"]: f["message"] for f in report["findings"]}
    assert "FEDGATE_KEY_K2 is not set" in messages["keyring.keys[0].secret"]
    assert "cannot read secret file /run/secrets/fedgate-k1" in messages["keyring.keys[1].secret"]
    assert "DATABASE_URL is not set" in messages["database.url"]

    secret = tmp_path / "k1"
    secret.write_text("x" * 40)
    raw["keyring"]["keys"][1]["secret"] = {"file": str(secret)}
    raw["database"]["url"] = {"file": str(secret)}
    monkeypatch.setenv("FEDGATE_KEY_K2", "abc")
    code, report = _check(tmp_path, raw, capsys)
    assert code == 1
    assert [f["message"] for f in report["findings"]] == ["must be at least 32 bytes"]
    assert report["findings"][0]["path"] == "keyring.keys[0].secret"


def test_broken_trust_policies_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = _base(
        roles=[
            {"name": "typo", "trust_policy": _trust(_web_identity(action="sts:AssumeRoleWithWebIdentiy"))},
            {
                "name": "not-arn",
                "trust_policy": _trust(_web_identity(principal="token.actions.githubusercontent.com")),
            },
            {
                "name": "no-provider",
                "trust_policy": _trust(
                    _web_identity(principal=f"arn:aws:iam::{ACCOUNT}:oidc-provider/gitlab.com")
                ),
            },
            {
                "name": "other-keys",
                "trust_policy": _trust(_web_identity(StringEquals={"gitlab.com:aud": "sts.amazonaws.com"})),
            },
            {"name": "saml-action", "trust_policy": _trust(_web_identity(action="sts:AssumeRoleWithSAML"))},
            {
                "name": "fine",
                "trust_policy": _trust(
                    _web_identity(StringLike={"token.actions.githubusercontent.com:sub": "repo:acme/*"}),
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/missing"},
                        "Action": "sts:AssumeRole",
                    },
                ),
                "policies": [
                    {
                        "name": "p",
                        "document": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["s3:GetObject", "s3:Get*", "s3:ListBucket"],
                                    "Resource": "*",
                                },
                                {"Effect": "Allow", "Action": "s3:ListObjectsV2", "Resource": "*"},
                                {
                                    "Effect": "Allow",
                                    "Action": ["iam:PassRole", "sts:TagSession", "execute-api:Invoke"],
                                    "Resource": "*",
                                },
                            ],
                        },
                    }
                ],
            },
        ]
    )
    code, report = _check(tmp_path, raw, capsys)
    assert code == 1
    found = _codes(report)
    t = "trust_policy.Statement[0]"
    assert found == {
        ("error", "INVALID_ACTION", f"roles[0].{t}.Action"),
        ("error", "UNSATISFIABLE_TRUST_POLICY", "roles[0].trust_policy"),
        ("warning", "DEAD_STATEMENT", f"roles[0].{t}"),
        ("error", "INVALID_PRINCIPAL", f"roles[1].{t}.Principal.Federated"),
        ("warning", "DEAD_STATEMENT", f"roles[1].{t}"),
        ("error", "UNSATISFIABLE_TRUST_POLICY", "roles[1].trust_policy"),
        # It may name a provider created through the IAM API: a warning, and the statement lives.
        ("warning", "UNKNOWN_PROVIDER", f"roles[2].{t}.Principal.Federated"),
        ("warning", "DEAD_STATEMENT", f"roles[3].{t}"),
        ("error", "UNSATISFIABLE_TRUST_POLICY", "roles[3].trust_policy"),
        ("warning", "DEAD_STATEMENT", f"roles[4].{t}"),
        ("error", "UNSATISFIABLE_TRUST_POLICY", "roles[4].trust_policy"),
        ("warning", "UNKNOWN_ROLE", "roles[5].trust_policy.Statement[1].Principal.AWS"),
        # S3's operation ListObjectsV2 is authorized by s3:ListBucket: not an action.
        ("error", "INVALID_ACTION", "roles[5].policies[0].document.Statement[1].Action"),
    }
    typo = next(f for f in report["findings"] if f["code"] == "INVALID_ACTION")
    assert typo["message"] == (
        "sts:AssumeRoleWithWebIdentiy is not an action of sts; did you mean sts:AssumeRoleWithWebIdentity?"
    )


def test_text_output_prints_errors_and_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            _base(roles=[{"name": "r", "trust_policy": _trust(_web_identity(action="sts:AssumeRol"))}])
        )
    )
    assert main(["check-config", "-c", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert (
        "fedgate: error: roles[0].trust_policy.Statement[0].Action: sts:AssumeRol is not an action of sts"
        in out.err
    )


def test_shadowed_upstreams_are_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def upstream(name: str, **match: Any) -> dict[str, Any]:
        return {
            "name": name,
            "match": match,
            "target": "http://127.0.0.1:9",
            "service": "execute-api",
            "mapping": "api-gateway",
            "auth": "none",
            "api_id": "a",
            "stage": "s",
        }

    raw = _base(
        upstreams=[
            upstream("api", hosts=["*.example.com"], path_prefix="/api"),
            upstream("orders", hosts=["orders.example.com"], path_prefix="/api/orders"),  # covered
            upstream("deep", hosts=["*.eu.example.com"], path_prefix="/api"),  # covered
            upstream("other", hosts=["example.com"], path_prefix="/api"),  # *.example.com is not example.com
            upstream("root", hosts=["*.example.com"], path_prefix="/"),  # wider path: reached
        ]
    )
    code, report = _check(tmp_path, raw, capsys)
    assert code == 0 and report["ok"]
    assert _codes(report) == {
        ("warning", "SHADOWED_UPSTREAM", "upstreams[1]"),
        ("warning", "SHADOWED_UPSTREAM", "upstreams[2]"),
    }
    code, report = _check(tmp_path, _base(upstreams=[upstream("all")]), capsys)
    assert _codes(report) == {("warning", "UPSTREAM_TAKES_EVERYTHING", "upstreams[0].match")}


@pytest.fixture(scope="module")
def idp() -> Iterator[SAMLTestIdP]:
    with SAMLTestIdP() as test_idp:
        yield test_idp


@pytest.mark.parametrize("admitted", [True, False])
def test_saml_sign_in_whose_audience_no_role_admits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], idp: SAMLTestIdP, admitted: bool
) -> None:
    """The README's old trust policy (SAML:aud = AWS's sign-in URL) can never offer a role at /sso/."""
    public = "https://sso.example.com"
    aud = f"{public}/sso/saml/corp/acs" if admitted else "https://signin.aws.amazon.com/saml"
    raw = {
        "account_id": ACCOUNT,
        "providers": [idp.provider_config("corp")],
        "roles": [
            {
                "name": "Engineers",
                "trust_policy": _trust(
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"},
                        "Action": "sts:AssumeRoleWithSAML",
                        "Condition": {"StringEquals": {"SAML:aud": aud, "saml:sub": "x"}},
                    }
                ),
            }
        ],
        "web_login": {
            "public_url": public,
            "cookie_secret": {"value": "c" * 40},
            "saml": [
                {
                    "name": "corp",
                    "provider": "corp",
                    "signing_key": {"value": "k"},
                    "signing_certificate": {"value": "c"},
                }
            ],
        },
    }
    code, report = _check(tmp_path, raw, capsys)
    if admitted:
        assert code == 0 and report["findings"] == []
    else:
        assert code == 1
        (finding,) = report["findings"]
        assert (finding["code"], finding["path"]) == ("SIGN_IN_OFFERS_NO_ROLE", "web_login.saml[0]")
        assert f"saml:aud = {public}/sso/saml/corp/acs" in finding["message"]


def test_oidc_sign_in_whose_client_id_no_role_admits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _base(
        roles=[
            {
                "name": "r",
                "trust_policy": _trust(
                    _web_identity(
                        StringEquals={"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
                    )
                ),
            }
        ],
        web_login={
            "public_url": "https://sso.example.com",
            "cookie_secret": {"value": "c" * 40},
            "oidc": [
                {
                    "name": "gh",
                    "issuer": "https://token.actions.githubusercontent.com",
                    "client_id": "fedgate",
                    "client_secret": {"value": "s"},
                }
            ],
        },
    )
    code, report = _check(tmp_path, raw, capsys)
    assert code == 1
    assert _codes(report) == {("error", "SIGN_IN_OFFERS_NO_ROLE", "web_login.oidc[0]")}


def test_online_reaches_the_store_and_every_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    dead = _free_port()
    raw = {
        "account_id": ACCOUNT,
        "store": {"backend": "redis", "url": f"redis://127.0.0.1:{dead}/0", "operation_timeout": 0.5},
        "providers": [{"type": "oidc", "issuer": f"http://127.0.0.1:{dead}/issuer", "audiences": ["a"]}],
    }
    assert _check(tmp_path, raw, capsys)[1]["ok"]  # offline: nothing is reached
    code, report = _check(tmp_path, raw, capsys, "--online")
    assert code == 1
    assert _codes(report) == {("error", "UNREACHABLE", "store"), ("error", "UNREACHABLE", "providers[0]")}
    raw["store"]["url"] = redis_url
    code, report = _check(tmp_path, raw, capsys, "--online")
    assert _codes(report) == {("error", "UNREACHABLE", "providers[0]")}


def test_known_actions_are_current() -> None:
    """gateway/iam/known_actions.py is generated: `python -m tests.iam.make_known_actions`."""
    from tests.iam.make_known_actions import TARGET, render

    assert TARGET.read_text(encoding="utf-8") == render()
    text = TARGET.read_text()
    assert re.search(r'"AssumeRoleWithWebIdentity"', text) and '"listbucket"' in text


def test_the_readme_saml_trust_policy_admits_browser_sign_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## SAML federation (corporate SSO)", 1)[1]
    raw = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    raw["account_id"] = ACCOUNT
    raw["web_login"] = {
        "public_url": "https://sso.example.com",
        "cookie_secret": {"value": "c" * 40},
        "saml": [
            {
                "name": "okta",
                "provider": "okta",
                "signing_key": {"value": "k"},
                "signing_certificate": {"value": "c"},
            }
        ],
    }
    code, report = _check(tmp_path, raw, capsys)
    assert code == 0 and report["findings"] == []
    raw["roles"][0]["trust_policy"]["Statement"][0]["Condition"]["StringEquals"]["SAML:aud"] = (
        "https://signin.aws.amazon.com/saml"  # what the README said before: no role at /sso/
    )
    code, report = _check(tmp_path, raw, capsys)
    assert code == 1 and _codes(report) == {("error", "SIGN_IN_OFFERS_NO_ROLE", "web_login.saml[0]")}


PRODUCTION_SECRETS = (
    "FEDGATE_REDIS_URL",
    "FEDGATE_DATABASE_URL",
    "FEDGATE_KEY_K2",
    "FEDGATE_KEY_K1",
    "FEDGATE_COOKIE_SECRET",
    "FEDGATE_OIDC_CLIENT_SECRET",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
)


def test_the_production_example_is_accepted_with_its_secrets_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    example = ROOT / "config" / "production.example.yaml"
    for name in PRODUCTION_SECRETS:
        monkeypatch.delenv(name, raising=False)
    assert main(["check-config", "-c", str(example)]) == 1
    err = capsys.readouterr().err
    assert all(f"{name} is not set" in err for name in PRODUCTION_SECRETS)
    for name in PRODUCTION_SECRETS:
        monkeypatch.setenv(name, "s" * 40)
    monkeypatch.setenv("FEDGATE_DATABASE_URL", "postgresql://fedgate:pw@db.internal:5432/fedgate")
    assert main(["check-config", "-c", str(example)]) == 0
    out, err = capsys.readouterr()
    assert "production.example.yaml: OK" in out and err == ""


def test_docs_production_explains_every_line_of_the_example() -> None:
    """Every key the example sets is named in docs/production.md, and every secret it needs."""
    raw = yaml.safe_load((ROOT / "config" / "production.example.yaml").read_text())
    doc = (ROOT / "docs" / "production.md").read_text()

    def keys(value: Any, prefix: str) -> Iterator[str]:
        if isinstance(value, dict) and not set(value) & {"env", "file", "Version"}:
            for key, item in value.items():
                yield from keys(item, f"{prefix}{key}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                yield from keys(item, f"{prefix[:-1]}[].")
        else:
            yield prefix[:-1]

    missing = []
    for key in set(keys(raw, "")):
        leaf = key.rsplit(".", 1)[-1]
        if f"`{key}" not in doc and f"`{leaf}:" not in doc:
            missing.append(key)
    assert not missing, f"explain these lines in docs/production.md: {sorted(missing)}"
    assert all(f"`{name}`" in doc for name in PRODUCTION_SECRETS)
