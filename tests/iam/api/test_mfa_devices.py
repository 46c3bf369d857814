"""Virtual MFA devices over the Query API with boto3: the seed answered once (never audited),
enabling with two consecutive codes, each code once, wrong codes throttled, and the device's life."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.iam import totp
from gateway.iam.mfa import MAX_FAILURES
from tests.iam.api.conftest import ACCOUNT, Api, error_of


def codes_of(base32: bytes | str, *, steps: tuple[int, ...] = (-1, 0)) -> list[str]:
    """The codes an authenticator app shows for the seed, for steps relative to now's."""
    seed = base64.b32decode(base32)
    now = totp.step_of(time.time())
    return [totp.code_at(seed, now + s) for s in steps]


def _new_device(admin: Any, name: str, **extra: Any) -> tuple[str, bytes]:
    device = admin.create_virtual_mfa_device(VirtualMFADeviceName=name, **extra)["VirtualMFADevice"]
    return device["SerialNumber"], device["Base32StringSeed"]


def test_create_enable_list_deactivate_delete(api: Api, admin: Any) -> None:
    admin.create_user(UserName="mfa-alice")
    created = admin.create_virtual_mfa_device(
        VirtualMFADeviceName="alice-phone", Path="/team/", Tags=[{"Key": "owner", "Value": "alice"}]
    )["VirtualMFADevice"]
    serial = created["SerialNumber"]
    assert serial == f"arn:aws:iam::{ACCOUNT}:mfa/team/alice-phone"
    seed = created["Base32StringSeed"]  # botocore decoded the blob: the Base32 text
    assert len(seed) == 64 and len(base64.b32decode(seed)) == totp.SEED_BYTES
    assert created["QRCodePNG"].startswith(b"\x89PNG\r\n\x1a\n")
    assert created["Tags"] == [{"Key": "owner", "Value": "alice"}]

    unassigned = admin.list_virtual_mfa_devices(AssignmentStatus="Unassigned")["VirtualMFADevices"]
    assert [d["SerialNumber"] for d in unassigned] == [serial]
    assert "Base32StringSeed" not in unassigned[0] and "QRCodePNG" not in unassigned[0]

    first, second = codes_of(seed)
    admin.enable_mfa_device(
        UserName="mfa-alice", SerialNumber=serial, AuthenticationCode1=first, AuthenticationCode2=second
    )
    (listed,) = admin.list_mfa_devices(UserName="mfa-alice")["MFADevices"]
    assert (listed["UserName"], listed["SerialNumber"]) == ("mfa-alice", serial)
    (assigned,) = admin.list_virtual_mfa_devices(AssignmentStatus="Assigned")["VirtualMFADevices"]
    assert assigned["User"]["UserName"] == "mfa-alice" and "EnableDate" in assigned
    assert admin.list_virtual_mfa_devices(AssignmentStatus="Unassigned")["VirtualMFADevices"] == []
    assert len(admin.list_virtual_mfa_devices()["VirtualMFADevices"]) == 1
    got = admin.get_mfa_device(UserName="mfa-alice", SerialNumber=serial)
    assert got["SerialNumber"] == serial and got["UserName"] == "mfa-alice"

    # Enabled: the device and its user cannot be deleted.
    with pytest.raises(ClientError) as excinfo:
        admin.delete_virtual_mfa_device(SerialNumber=serial)
    assert error_of(excinfo) == ("DeleteConflict", 409, "MFA device is still in use.")
    with pytest.raises(ClientError) as excinfo:
        admin.delete_user(UserName="mfa-alice")
    assert error_of(excinfo)[0] == "DeleteConflict"

    admin.tag_mfa_device(SerialNumber=serial, Tags=[{"Key": "model", "Value": "phone"}])
    admin.untag_mfa_device(SerialNumber=serial, TagKeys=["owner"])
    assert admin.list_mfa_device_tags(SerialNumber=serial)["Tags"] == [{"Key": "model", "Value": "phone"}]

    admin.deactivate_mfa_device(UserName="mfa-alice", SerialNumber=serial)
    assert admin.list_mfa_devices(UserName="mfa-alice")["MFADevices"] == []
    admin.delete_virtual_mfa_device(SerialNumber=serial)
    admin.delete_user(UserName="mfa-alice")
    with pytest.raises(ClientError) as excinfo:
        admin.delete_virtual_mfa_device(SerialNumber=serial)
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)

    # The seed is in the response only: never in an audit event.
    assert seed.decode() not in json.dumps(api.audit.events)
    (event,) = api.audit.named("CreateVirtualMFADevice")
    assert event["resources"] == [{"type": "AWS::IAM::MFADevice", "ARN": serial}]
    enable = api.audit.named("EnableMFADevice")[-1]
    assert first not in json.dumps(enable) and second not in json.dumps(enable)


def test_codes_must_be_consecutive_current_and_unused(api: Api, admin: Any) -> None:
    admin.create_user(UserName="mfa-bob")
    serial, seed = _new_device(admin, "bob-phone")
    earlier, current, later = codes_of(seed, steps=(-1, 0, 1))

    def enable(one: str, two: str) -> None:
        admin.enable_mfa_device(
            UserName="mfa-bob", SerialNumber=serial, AuthenticationCode1=one, AuthenticationCode2=two
        )

    for one, two in ((current, earlier), (earlier, later), (current, current)):
        with pytest.raises(ClientError) as excinfo:
            enable(one, two)
        assert error_of(excinfo) == (
            "InvalidAuthenticationCode",
            403,
            "Authentication code for device is not valid.",
        )
    assert admin.list_mfa_devices(UserName="mfa-bob")["MFADevices"] == []  # nothing changed
    # A refused call spent no code: the audit trail must not show these live codes either.
    refused = json.dumps(api.audit.named("EnableMFADevice"))
    assert all(code not in refused for code in (earlier, current, later))
    enable(earlier, current)
    # Resync spends codes too: the pair just used is refused, the next pair is accepted.
    with pytest.raises(ClientError) as excinfo:
        admin.resync_mfa_device(
            UserName="mfa-bob", SerialNumber=serial, AuthenticationCode1=earlier, AuthenticationCode2=current
        )
    assert error_of(excinfo)[0] == "InvalidAuthenticationCode"
    with pytest.raises(ClientError) as excinfo:
        admin.enable_mfa_device(
            UserName="mfa-bob", SerialNumber=serial, AuthenticationCode1=current, AuthenticationCode2=later
        )
    assert error_of(excinfo) == ("EntityAlreadyExists", 409, "MFA device is already in use.")


def test_wrong_codes_throttle_the_device(admin: Any) -> None:
    admin.create_user(UserName="mfa-carol")
    serial, seed = _new_device(admin, "carol-phone")
    first, second = codes_of(seed)
    wrong = f"{(int(second) + 1) % 1_000_000:06d}"
    for _ in range(MAX_FAILURES):
        with pytest.raises(ClientError) as excinfo:
            admin.enable_mfa_device(
                UserName="mfa-carol",
                SerialNumber=serial,
                AuthenticationCode1=first,
                AuthenticationCode2=wrong,
            )
        assert error_of(excinfo)[2] == "Authentication code for device is not valid."
    with pytest.raises(ClientError) as excinfo:
        admin.enable_mfa_device(
            UserName="mfa-carol", SerialNumber=serial, AuthenticationCode1=first, AuthenticationCode2=second
        )
    code, status, message = error_of(excinfo)
    assert (code, status) == ("InvalidAuthenticationCode", 403) and "Too many invalid codes" in message


@pytest.mark.parametrize(
    ("call", "kwargs", "message"),
    [
        ("create_virtual_mfa_device", {"VirtualMFADeviceName": "bad name"}, "virtualMFADeviceName"),
        (
            "enable_mfa_device",
            {
                "UserName": "u",
                "SerialNumber": "arn:aws:iam::1:mfa/x",
                "AuthenticationCode1": "12345a",
                "AuthenticationCode2": "123456",
            },
            "authenticationCode1",
        ),
        ("list_virtual_mfa_devices", {"AssignmentStatus": "Some"}, "assignmentStatus"),
        ("delete_virtual_mfa_device", {"SerialNumber": "no spaces here"}, "serialNumber"),
    ],
)
def test_bad_parameters(admin: Any, call: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        getattr(admin, call)(**kwargs)
    code, status, text = error_of(excinfo)
    assert (code, status) == ("ValidationError", 400) and f"'{message}'" in text


def test_a_device_name_once_and_unknown_devices(admin: Any) -> None:
    serial, _ = _new_device(admin, "twice")
    with pytest.raises(ClientError) as excinfo:
        _new_device(admin, "twice")
    assert error_of(excinfo)[:2] == ("EntityAlreadyExists", 409)
    admin.create_user(UserName="mfa-dave")
    with pytest.raises(ClientError) as excinfo:
        admin.enable_mfa_device(
            UserName="mfa-dave",
            SerialNumber=f"{serial}-gone",
            AuthenticationCode1="123456",
            AuthenticationCode2="654321",
        )
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as excinfo:
        admin.deactivate_mfa_device(UserName="mfa-dave", SerialNumber=serial)  # not hers
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)
    admin.delete_virtual_mfa_device(SerialNumber=serial)


def test_a_reader_cannot_create_or_enable(api: Api) -> None:
    reader = api.client("reader")
    with pytest.raises(ClientError) as excinfo:
        reader.create_virtual_mfa_device(VirtualMFADeviceName="nope")
    code, _, message = error_of(excinfo)
    assert (
        code == "AccessDenied"
        and f"iam:CreateVirtualMFADevice on resource: arn:aws:iam::{ACCOUNT}:mfa/nope" in message
    )
    assert reader.list_virtual_mfa_devices()["IsTruncated"] is False
