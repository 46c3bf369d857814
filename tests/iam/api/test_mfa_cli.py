"""The MFA journey with the aws CLI: a QR code written with --outfile scans to the otpauth URI an
authenticator app reads, and the codes it computes enable the device."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import png
import zxingcpp

from gateway.iam import totp
from tests.flows.conftest import aws_cli
from tests.iam.api.conftest import ACCOUNT, Api
from tests.iam.api.test_aws_cli import _env
from tests.iam.api.test_mfa_devices import codes_of


def scan_qr(path: Path) -> str:
    """The text of the QR code in the PNG at ``path``, as a phone's camera would read it."""
    width, height, rows, _ = png.Reader(bytes=path.read_bytes()).asRGB8()
    pixels = b"".join(bytes(row) for row in rows)
    (found,) = zxingcpp.read_barcodes(memoryview(pixels).cast("B", shape=[height, width, 3]))
    return str(found.text)


def test_qr_code_outfile_then_enable_with_the_cli(api: Api, admin: Any, tmp_path: Path) -> None:
    env = _env(api, tmp_path)

    def iam(*args: str) -> Any:
        command = [aws_cli(), "--endpoint-url", api.url, "--output", "json", "iam", *args]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    admin.create_user(UserName="cli-mfa")
    qr = tmp_path / "qr.png"
    created = iam(
        "create-virtual-mfa-device",
        "--virtual-mfa-device-name",
        "cli-phone",
        "--bootstrap-method",
        "QRCodePNG",
        "--outfile",
        str(qr),
    )["VirtualMFADevice"]
    serial = created["SerialNumber"]
    assert serial == f"arn:aws:iam::{ACCOUNT}:mfa/cli-phone"
    assert set(created) == {"SerialNumber"}  # the CLI moved the seed into the file
    assert qr.stat().st_mode & 0o777 == 0o600

    uri = urlsplit(scan_qr(qr))
    assert (uri.scheme, uri.netloc, uri.path) == ("otpauth", "totp", f"/cli-phone@{ACCOUNT}")
    (secret,) = parse_qs(uri.query)["secret"]
    assert len(base64.b32decode(secret)) == totp.SEED_BYTES

    first, second = codes_of(secret)
    iam(
        "enable-mfa-device",
        "--user-name",
        "cli-mfa",
        "--serial-number",
        serial,
        "--authentication-code1",
        first,
        "--authentication-code2",
        second,
    )
    (device,) = admin.list_mfa_devices(UserName="cli-mfa")["MFADevices"]
    assert device["SerialNumber"] == serial
    admin.deactivate_mfa_device(UserName="cli-mfa", SerialNumber=serial)
    admin.delete_virtual_mfa_device(SerialNumber=serial)
    admin.delete_user(UserName="cli-mfa")
