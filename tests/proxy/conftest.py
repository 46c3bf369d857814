"""A live fedgate proxying to a live moto S3 server on loopback, and a trusting OIDC issuer.

The upstream (moto's threaded server) logs every request it receives through the ``werkzeug``
logger; :class:`UpstreamLog` captures those lines so tests can prove a denied request never
reached it. STS answers on ``127.0.0.1``; the S3 upstream is matched by the host ``localhost``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from moto.server import ThreadedMotoServer

from gateway.config import GatewayConfig
from gateway.testing import OIDCTestIssuer
from tests.conftest import BackgroundLoop, config_from
from tests.conftest import serve_app as start_gateway

ACCOUNT = "123456789012"
BUCKET = "data"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/s3-app"
UPSTREAM_KEY = "upstream-key"
UPSTREAM_SECRET = "upstream-secret"


class UpstreamLog(logging.Handler):
    """Request lines the upstream server logged (``"PUT /data/key HTTP/1.1" 200 -``)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.lines.append(record.getMessage())

    def since(self, mark: int) -> list[str]:
        """Lines logged after ``mark`` (a previous ``len(lines)``)."""
        with self._lock:
            return list(self.lines[mark:])


@dataclass
class Moto:
    """moto's S3 server, with a direct client (bypassing fedgate) and its request log."""

    url: str
    log: UpstreamLog

    def client(self) -> Any:
        """boto3 S3 straight to moto, for setting up and inspecting the upstream's state."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=UPSTREAM_KEY,
            aws_secret_access_key=UPSTREAM_SECRET,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )


@dataclass
class ProxyGateway:
    """A running fedgate: STS URL, S3 URL (same port, host ``localhost``), app and audit file."""

    sts_url: str
    s3_url: str
    port: int
    app: web.Application
    audit_path: Path


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """moto's S3 server on 127.0.0.1 and a free port, its request log captured."""
    log = UpstreamLog()
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(log)
    previous = werkzeug.level
    werkzeug.setLevel(logging.INFO)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = Moto(url=f"http://{host}:{port}", log=log)
    moto.client().create_bucket(Bucket=BUCKET)
    moto.client().create_bucket(Bucket="other")
    yield moto
    server.stop()
    werkzeug.removeHandler(log)
    werkzeug.setLevel(previous)


@pytest.fixture(scope="module")
def issuer(background_loop: BackgroundLoop) -> Iterator[OIDCTestIssuer]:
    """A live OIDC issuer fedgate trusts."""
    idp = OIDCTestIssuer(
        path="/proxy", audience="sts.amazonaws.com", subject="repo:acme/app:ref:refs/heads/main"
    )
    background_loop.run(idp.__aenter__())
    yield idp
    background_loop.run(idp.__aexit__(None, None, None))


def s3_policy() -> dict[str, Any]:
    """What the s3-app role may do in the data bucket."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadWritePublic",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": f"arn:aws:s3:::{BUCKET}/public/*",
            },
            {
                "Sid": "ListPublic",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{BUCKET}",
                "Condition": {"StringLike": {"s3:prefix": "public/*"}},
            },
            {
                "Sid": "SimulateOnTheSameEndpoint",
                "Effect": "Allow",
                "Action": "iam:SimulateCustomPolicy",
                "Resource": "*",
            },
            {
                "Sid": "KeepIsKept",
                "Effect": "Deny",
                "Action": "s3:DeleteObject",
                "Resource": [
                    f"arn:aws:s3:::{BUCKET}/public/keep/*",
                    f"arn:aws:s3:::{BUCKET}/public/*/kept-*",
                ],
            },
        ],
    }


def proxy_config(issuer: OIDCTestIssuer, moto_url: str, audit_path: Path, **extra: Any) -> GatewayConfig:
    """fedgate with the s3-app role and an S3 upstream (resign) at ``moto_url`` for host localhost."""
    raw: dict[str, Any] = {
        "account_id": ACCOUNT,
        "audit": {"sink": "file", "path": str(audit_path)},
        "providers": [issuer.provider_config()],
        "roles": [
            {
                "name": "s3-app",
                "trust_policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {
                                "Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/"
                                + issuer.issuer.removeprefix("http://")
                            },
                            "Action": "sts:AssumeRoleWithWebIdentity",
                        }
                    ],
                },
                "policies": [{"name": "s3", "document": s3_policy()}],
                "tags": {"team": "storage"},
            }
        ],
        "upstreams": [moto_upstream(moto_url)],
    }
    raw.update(extra)
    return config_from(raw)


def moto_upstream(moto_url: str) -> dict[str, Any]:
    """The S3 upstream (resign) at ``moto_url`` for host ``localhost``, as configuration."""
    return {
        "name": "moto-s3",
        "match": {"hosts": ["localhost"]},
        "target": moto_url,
        "service": "s3",
        "mapping": "s3",
        "auth": "resign",
        "credentials": {
            "access_key_id": {"value": UPSTREAM_KEY},
            "secret_access_key": {"value": UPSTREAM_SECRET},
        },
    }


@contextlib.contextmanager
def serve_proxy(
    background_loop: BackgroundLoop, config: GatewayConfig, audit_path: Path
) -> Iterator[ProxyGateway]:
    """A gateway for ``config`` (a :func:`proxy_config`, auditing to ``audit_path``) on a free
    port, for the lifetime of the ``with`` block."""
    runner, port, app = background_loop.run(start_gateway(config))
    try:
        yield ProxyGateway(
            sts_url=f"http://127.0.0.1:{port}",
            s3_url=f"http://localhost:{port}",
            port=port,
            app=app,
            audit_path=audit_path,
        )
    finally:
        background_loop.run(runner.cleanup())


@pytest.fixture(scope="module")
def gateway(
    background_loop: BackgroundLoop,
    issuer: OIDCTestIssuer,
    moto: Moto,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyGateway]:
    """fedgate proxying host ``localhost`` to moto."""
    audit_path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with serve_proxy(background_loop, proxy_config(issuer, moto.url, audit_path), audit_path) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def session_credentials(gateway: ProxyGateway, issuer: OIDCTestIssuer) -> dict[str, str]:
    """Credentials for the s3-app role from AssumeRoleWithWebIdentity against fedgate."""
    return assume_role(gateway, issuer)


def assume_role(
    gateway: ProxyGateway, issuer: OIDCTestIssuer, role: str = ROLE, session_name: str = "proxy-test"
) -> dict[str, str]:
    """Credentials for ``role`` (the s3-app role) from AssumeRoleWithWebIdentity against
    ``gateway``, as boto3 client keyword arguments."""
    sts = boto3.client(
        "sts",
        endpoint_url=gateway.sts_url,
        region_name="us-east-1",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
        config=Config(retries={"max_attempts": 1}),
    )
    creds = sts.assume_role_with_web_identity(
        RoleArn=role, RoleSessionName=session_name, WebIdentityToken=issuer.mint()
    )["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def s3_client(gateway: ProxyGateway, credentials: dict[str, str], **config: Any) -> Any:
    """boto3 S3 through fedgate with ``credentials``."""
    options: dict[str, Any] = {"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 1}}
    options.update(config)
    return boto3.client(
        "s3", endpoint_url=gateway.s3_url, region_name="us-east-1", config=Config(**options), **credentials
    )


@pytest.fixture()
def s3(gateway: ProxyGateway, session_credentials: dict[str, str]) -> Any:
    """boto3 S3 through fedgate with the s3-app session's credentials."""
    return s3_client(gateway, session_credentials)
