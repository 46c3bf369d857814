"""Virtual MFA devices: create one (its seed answered once, as Base32 text and as a QR code),
enable it for a user with two consecutive codes, resync, deactivate, delete, list, tag.

A device's serial number is its ARN, ``arn:aws:iam::ACCOUNT:mfa{path}{name}``. The database seals
the seed under the key ring as it stores it; only ``CreateVirtualMFADevice`` ever answers it, and
the audit trail never sees it. Codes are checked by :class:`gateway.iam.mfa.MfaCodes` (once each
across replicas, wrong ones throttled per device); a code that is not accepted is
``InvalidAuthenticationCode``, as on AWS.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping
from typing import Any

from gateway.db.records import MfaDeviceRecord, UserRecord, iam_arn
from gateway.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    InvalidAuthenticationCode,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    ValidationError,
)
from gateway.iam import totp
from gateway.iam.api.action import ActionContext, IamAction, Resource
from gateway.iam.api.entities import named_or_calling_user, named_user, require_user, tag_list, user_shape
from gateway.iam.api.paging import PAGING, PageRequest, page_of
from gateway.iam.api.params import Args, Param, constraint, length, name, path
from gateway.iam.api.tagging import TAG_KEYS, TAGS, TAGS_OPTIONAL, tag_handlers
from gateway.iam.api.users import USER_NAME
from gateway.iam.mfa import MfaCodeRefused
from gateway.sts.params import QueryParams

__all__ = ["ACTIONS", "MAX_DEVICES_PER_USER", "TITLE", "serial_number"]

#: The heading of this family in docs/iam-actions.md.
TITLE = "MFA devices"

#: MFA devices one user may have enabled (AWS's quota).
MAX_DEVICES_PER_USER = 8
#: CloudTrail's resource type of a virtual MFA device.
MFA_DEVICE = "AWS::IAM::MFADevice"

_SERIAL_RE = re.compile(r"^[\w+=/:,.@-]+\Z", re.ASCII)
_CODE_RE = re.compile(r"^\d{6}\Z", re.ASCII)
_STATUSES = ("Assigned", "Unassigned", "Any")


def serial_number(params: QueryParams, wire: str) -> str | None:
    """An MFA device's ``SerialNumber``: 9 to 256 of ``[\\w+=/:,.@-]`` (its ARN, for a virtual one)."""
    raw = params.get(wire)
    if raw is None:
        return None
    length(wire, raw, 9, 256)
    if not _SERIAL_RE.match(raw):
        raise constraint(wire, raw, r"satisfy regular expression pattern: [\w+=/:,.@-]+")
    return raw


def _authentication_code(params: QueryParams, wire: str) -> str | None:
    raw = params.get(wire)
    if raw is None:
        return None
    length(wire, raw, 6, 6)
    if not _CODE_RE.match(raw):
        raise constraint(wire, raw, r"satisfy regular expression pattern: [\d]+")
    return raw


def _assignment_status(params: QueryParams, wire: str) -> str | None:
    raw = params.get(wire)
    if raw is None or raw in _STATUSES:
        return raw
    raise constraint(wire, raw, "satisfy enum value set: [Assigned, Unassigned, Any]")


_SERIAL = Param("SerialNumber", serial_number, "the device's serial number (its ARN)", required=True)
# Never audited: a call refused before its codes are spent would leave two live codes in the log.
_CODES = (
    Param(
        "AuthenticationCode1",
        _authentication_code,
        "a code the device shows (6 digits)",
        required=True,
        audit=False,
    ),
    Param("AuthenticationCode2", _authentication_code, "the code it shows next", required=True, audit=False),
)
_CALLING_USER = Param("UserName", name(64), "the user's name; the calling user when omitted")


def _device_arn(ctx: ActionContext, device_path: str, device_name: str) -> str:
    return iam_arn(ctx.account_id, "mfa", device_path, device_name)


async def _created_device(ctx: ActionContext, args: Args) -> Resource:
    arn = _device_arn(ctx, args.optional("Path") or "/", args.text("VirtualMFADeviceName"))
    return Resource(arn, MFA_DEVICE)


def _qr_png(uri: str) -> bytes:
    import segno  # imported here: only CreateVirtualMFADevice with QRCodePNG draws one

    out = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(out, kind="png", scale=4, border=4)
    return out.getvalue()


async def _create(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    device_name, device_path = args.text("VirtualMFADeviceName"), args.optional("Path") or "/"
    serial = _device_arn(ctx, device_path, device_name)
    seed = totp.new_seed()
    device = await ctx.tx.mfa_devices.create(
        serial, name=device_name, path=device_path, seed=seed, tags=args.mapping("Tags")
    )
    # Assigned to no one yet: the URI names the account, as AWS's does.
    uri = totp.otpauth_uri(device_name, ctx.account_id, seed)
    out: dict[str, Any] = {
        "SerialNumber": device.serial,
        # Both are blobs on the wire (base64), as botocore and the aws CLI's --outfile expect.
        "Base32StringSeed": base64.b64encode(totp.base32_seed(seed).encode("ascii")).decode("ascii"),
        "QRCodePNG": base64.b64encode(_qr_png(uri)).decode("ascii"),
    }
    if device.tags:
        out["Tags"] = tag_list(device.tags)
    return {"VirtualMFADevice": out}


async def _device(ctx: ActionContext, serial: str) -> MfaDeviceRecord:
    device = await ctx.tx.mfa_devices.get(serial)
    if device is None:
        raise NoSuchEntity(f"VirtualMFADevice with serial {serial} doesn't exist.")
    return device


async def _users_device(ctx: ActionContext, user: UserRecord, serial: str) -> MfaDeviceRecord:
    device = await ctx.tx.mfa_devices.get(serial)
    if device is None or device.user_id != user.id:
        raise NoSuchEntity(f"MFA Device with serial number {serial} does not exist for user {user.name}.")
    return device


async def _checked(ctx: ActionContext, device: MfaDeviceRecord, args: Args) -> None:
    try:
        await ctx.mfa_codes().accept_consecutive(
            device, args.text("AuthenticationCode1"), args.text("AuthenticationCode2"), now=ctx.record.now
        )
    except MfaCodeRefused as refused:
        if refused.throttled:
            raise InvalidAuthenticationCode(refused.message) from None
        raise InvalidAuthenticationCode("Authentication code for device is not valid.") from None


async def _enable(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    user = await ctx.tx.users.require(args.text("UserName"))
    serial = args.text("SerialNumber")
    device = await _device(ctx, serial)
    if device.user_id is not None:
        raise EntityAlreadyExists("MFA device is already in use.")
    if len(await ctx.tx.mfa_devices.for_user(user.id)) >= MAX_DEVICES_PER_USER:
        raise LimitExceeded(f"Cannot exceed quota for MFADevicesPerUser: {MAX_DEVICES_PER_USER}")
    await _checked(ctx, device, args)
    await ctx.tx.mfa_devices.enable(serial, user.id, ctx.tx.mfa_devices.now())
    return {}


async def _resync(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    user = await ctx.tx.users.require(args.text("UserName"))
    await _checked(ctx, await _users_device(ctx, user, args.text("SerialNumber")), args)
    return {}


async def _deactivate(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    user = await ctx.tx.users.require(ctx.user_name(args))
    device = await _users_device(ctx, user, args.text("SerialNumber"))
    await ctx.tx.mfa_devices.deactivate(device.serial)
    return {}


async def _named_device(ctx: ActionContext, args: Args) -> Resource:
    return Resource(args.text("SerialNumber"), MFA_DEVICE)


async def _delete(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    device = await _device(ctx, args.text("SerialNumber"))
    if device.user_id is not None:
        raise DeleteConflict("MFA device is still in use.")
    await ctx.tx.mfa_devices.delete(device.serial)
    return {}


async def _all_devices(ctx: ActionContext, args: Args) -> Resource:
    return Resource("*")


async def _list_virtual(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    status = args.optional("AssignmentStatus") or "Any"
    devices = [
        d
        for d in await ctx.tx.mfa_devices.all()
        if status == "Any" or (d.user_id is not None) == (status == "Assigned")
    ]
    page = page_of(devices, PageRequest.of(args), lambda d: d.serial)
    users = {d.user_id: await ctx.tx.users.get_by_id(d.user_id) for d in page.items if d.user_id is not None}

    def shape(device: MfaDeviceRecord) -> dict[str, Any]:
        out: dict[str, Any] = {"SerialNumber": device.serial}
        user = users.get(device.user_id) if device.user_id is not None else None
        if user is not None:
            out["User"] = user_shape(user, full=False)
        if device.enabled_at is not None:
            out["EnableDate"] = device.enabled_at
        if device.tags:
            out["Tags"] = tag_list(device.tags)
        return out

    return page.fields("VirtualMFADevices", shape)


def _assigned_shape(user: UserRecord, device: MfaDeviceRecord) -> dict[str, Any]:
    return {"UserName": user.name, "SerialNumber": device.serial, "EnableDate": device.enabled_at}


async def _list(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    user = await require_user(ctx, ctx.user_name(args))
    devices = await ctx.tx.mfa_devices.for_user(user.id)
    page = page_of(devices, PageRequest.of(args), lambda d: d.serial)
    return page.fields("MFADevices", lambda d: _assigned_shape(user, d))


async def _get(ctx: ActionContext, args: Args) -> Mapping[str, Any]:
    user = await require_user(ctx, ctx.user_name(args))
    device = await _users_device(ctx, user, args.text("SerialNumber"))
    return _assigned_shape(user, device)


_tag, _untag, _list_tags = tag_handlers(
    lambda ctx, args: _device(ctx, args.text("SerialNumber")),
    lambda ctx: ctx.tx.mfa_devices,
    lambda device: device.serial,
)


_DEVICE_NAME = Param(
    "VirtualMFADeviceName", name(226), "the device's name (1-226 of `[\\w+=,.@-]`)", required=True
)

ACTIONS = (
    IamAction(
        "CreateVirtualMFADevice",
        "Create a virtual MFA device: answers its serial number and, this once, its seed as "
        "`Base32StringSeed` and as a QR code (`QRCodePNG`, `otpauth://totp/NAME@ACCOUNT?secret=...`).",
        (_DEVICE_NAME, Param("Path", path, "`/` (the default) or `/a/b/`"), TAGS_OPTIONAL),
        _created_device,
        "the new device's ARN (`mfa{Path}{VirtualMFADeviceName}`)",
        _create,
        writes=True,
        creates=True,
        errors=(EntityAlreadyExists, InvalidInput, ValidationError),
    ),
    IamAction(
        "EnableMFADevice",
        "Assign a virtual MFA device to a user, proved by two consecutive codes; each code is "
        "accepted once, and a device refuses codes for 5 minutes after 5 wrong ones.",
        (USER_NAME, _SERIAL, *_CODES),
        named_user,
        "the user's ARN",
        _enable,
        writes=True,
        errors=(EntityAlreadyExists, InvalidAuthenticationCode, LimitExceeded, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "ResyncMFADevice",
        "Check that a user's device and fedgate agree, with two consecutive codes (fedgate accepts a "
        "code one 30-second step early or late; codes are spent as by EnableMFADevice).",
        (USER_NAME, _SERIAL, *_CODES),
        named_user,
        "the user's ARN",
        _resync,
        writes=True,
        errors=(InvalidAuthenticationCode, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "DeactivateMFADevice",
        "Unassign an MFA device from its user; the device stays until deleted.",
        (_CALLING_USER, _SERIAL),
        named_or_calling_user,
        "the user's ARN",
        _deactivate,
        writes=True,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "DeleteVirtualMFADevice",
        "Delete a virtual MFA device that no user has enabled.",
        (_SERIAL,),
        _named_device,
        "the device's ARN",
        _delete,
        writes=True,
        errors=(DeleteConflict, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "ListVirtualMFADevices",
        "Virtual MFA devices (`AssignmentStatus` `Assigned`, `Unassigned` or `Any`, the default), "
        "with their users, by serial number, paged; never a seed.",
        (Param("AssignmentStatus", _assignment_status, "`Assigned`, `Unassigned` or `Any`"), *PAGING),
        _all_devices,
        "`*`",
        _list_virtual,
        errors=(ValidationError,),
    ),
    IamAction(
        "ListMFADevices",
        "The MFA devices a user has enabled, paged.",
        (_CALLING_USER, *PAGING),
        named_or_calling_user,
        "the user's ARN",
        _list,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "GetMFADevice",
        "One of a user's MFA devices: its serial number and when it was enabled.",
        (_SERIAL, _CALLING_USER),
        named_or_calling_user,
        "the user's ARN",
        _get,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "TagMFADevice",
        "Add tags to a virtual MFA device, or overwrite the values of keys it has.",
        (_SERIAL, TAGS),
        _named_device,
        "the device's ARN",
        _tag,
        writes=True,
        errors=(InvalidInput, LimitExceeded, NoSuchEntity, ValidationError),
    ),
    IamAction(
        "UntagMFADevice",
        "Remove tags from a virtual MFA device by key.",
        (_SERIAL, TAG_KEYS),
        _named_device,
        "the device's ARN",
        _untag,
        writes=True,
        errors=(NoSuchEntity, ValidationError),
    ),
    IamAction(
        "ListMFADeviceTags",
        "A virtual MFA device's tags, by key, paged.",
        (_SERIAL, *PAGING),
        _named_device,
        "the device's ARN",
        _list_tags,
        errors=(NoSuchEntity, ValidationError),
    ),
)
