"""MFA in STS: ``SerialNumber`` and ``TokenCode`` checked against the calling user's own device.

``AssumeRole`` and ``GetSessionToken`` take an MFA device's serial number and a code it shows;
:class:`CallerMfa` checks that the device is one the calling IAM user has enabled and that the code
is accepted by :class:`~gateway.iam.mfa.MfaCodes` (once each across replicas, wrong codes throttled
per device). Whatever fails is ``AccessDenied`` in AWS's words, never saying whether the device
exists or whose it is; a role session has no MFA device. Fails closed: a store or database that
cannot answer raises ``ServiceUnavailable``.
"""

from __future__ import annotations

import re
from typing import final

from gateway.db.database import IamDatabase
from gateway.errors import AccessDenied, ValidationError
from gateway.iam.caller import Caller
from gateway.iam.mfa import MfaCodeRefused, MfaCodes

__all__ = ["INVALID_CODE", "CallerMfa", "check_mfa_parameters"]

#: AWS's message for a code STS does not accept.
INVALID_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."

_SERIAL_RE = re.compile(r"^[\w+=/:,.@-]{9,256}\Z", re.ASCII)
_CODE_RE = re.compile(r"^\d{6}\Z", re.ASCII)


def check_mfa_parameters(serial_number: str | None, token_code: str | None) -> None:
    """``ValidationError`` for a malformed ``SerialNumber`` or ``TokenCode`` (6 digits)."""
    if serial_number is not None and not _SERIAL_RE.match(serial_number):
        raise ValidationError(
            "1 validation error detected: Value at 'serialNumber' failed to satisfy constraint: Member "
            "must satisfy regular expression pattern: [\\w+=/:,.@-]* and have length between 9 and 256"
        )
    if token_code is not None and not _CODE_RE.match(token_code):
        raise ValidationError(
            "1 validation error detected: Value at 'tokenCode' failed to satisfy constraint: Member "
            "must satisfy regular expression pattern: [\\d]* and have length 6"
        )


@final
class CallerMfa:
    """Checks a signed caller's MFA code (see the module docstring). One per application."""

    def __init__(self, database: IamDatabase, codes: MfaCodes) -> None:
        self._database = database
        self._codes = codes

    def __repr__(self) -> str:
        return f"CallerMfa(codes={self._codes!r})"

    async def verify(self, caller: Caller, serial_number: str, token_code: str | None, now: float) -> float:
        """Accept ``token_code`` of the caller's device ``serial_number`` at ``now``; return the time
        of the MFA (``now``). Raises ``AccessDenied`` when it is not accepted."""
        check_mfa_parameters(serial_number, token_code)
        if token_code is None:
            raise AccessDenied("MultiFactorAuthentication failed: TokenCode is required with SerialNumber.")
        if caller.session is not None or caller.user_name is None:
            raise AccessDenied(INVALID_CODE)  # only IAM users have MFA devices
        async with self._database.read() as tx:
            device = await tx.mfa_devices.get(serial_number)
        if device is None or device.user_id != caller.user_id:
            raise AccessDenied(INVALID_CODE)
        try:
            await self._codes.accept(device, token_code, now=now)
        except MfaCodeRefused as refused:
            raise AccessDenied(
                f"MultiFactorAuthentication failed: {refused.message}" if refused.throttled else INVALID_CODE
            ) from None
        return now
