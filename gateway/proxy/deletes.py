"""S3's multi-object delete (``POST /bucket?delete``): one authorization per key named in the body.

The keys are in the XML body, so the request is read whole (bounded by :data:`MAX_DELETE_BODY`),
its integrity checked (``Content-MD5`` or an ``x-amz-checksum-*``, one of which S3 requires),
parsed with a hardened parser (:mod:`gateway.xmlsafe`: no DTDs, no entities; lxml is loaded by
the first such request), and each key
authorized for ``s3:DeleteObject`` (``s3:DeleteObjectVersion`` with a ``VersionId``). Only the
allowed keys are forwarded, in a body fedgate writes itself; the denied ones are answered as S3
answers per-key failures, an ``<Error>`` with ``AccessDenied`` in the ``DeleteResult``, merged with
the upstream's answer (``Quiet`` mode is kept: the upstream then lists only its failures).
Pure: no I/O here; :mod:`gateway.proxy.handler` does the reading and forwarding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, final
from xml.sax.saxutils import escape

from gateway.errors import BadDigest, InvalidDigest, InvalidRequest, MalformedXML
from gateway.iam import permissions
from gateway.iam.caller import Caller
from gateway.iam.catalog import CatalogSnapshot
from gateway.iam.permissions import Check, ContextValue
from gateway.policy import Decision
from gateway.proxy.s3 import object_arn
from gateway.sigv4.checksums import ExpectedChecksum, expected_checksum
from gateway.xmlsafe import UnsafeXML, parse_untrusted

if TYPE_CHECKING:
    from lxml import etree

__all__ = [
    "MAX_DELETE_BODY",
    "MAX_DELETE_KEYS",
    "DeleteObjects",
    "DeletePlan",
    "DeleteTarget",
    "check_integrity",
    "denied_only",
    "forwarded_body",
    "merge_result",
    "parse_delete",
    "plan_deletes",
    "with_content_md5",
]

#: The largest DeleteObjects body read: 1000 keys of 1024 bytes, escaped, with room to spare.
MAX_DELETE_BODY: Final = 2 * 1024 * 1024
#: S3's own limit on keys per request.
MAX_DELETE_KEYS: Final = 1000
_NS: Final = "http://s3.amazonaws.com/doc/2006-03-01/"
_MALFORMED: Final = (
    "The XML you provided was not well-formed or did not validate against our published schema."
)


@dataclass(frozen=True, slots=True)
class DeleteTarget:
    """One object a DeleteObjects request names."""

    key: str
    version_id: str | None = None

    def check(self, bucket: str) -> Check:
        """The permission deleting it needs."""
        context: dict[str, ContextValue] = {}
        action = "s3:DeleteObject"
        if self.version_id is not None:
            action = "s3:DeleteObjectVersion"
            context["s3:versionid"] = self.version_id
        return Check(action, object_arn(bucket, self.key), context)


@dataclass(frozen=True, slots=True)
class DeleteObjects:
    """A parsed DeleteObjects body."""

    objects: tuple[DeleteTarget, ...]
    quiet: bool = False


def _local(element: etree._Element) -> str:
    """An element's tag without its namespace (``""`` for a comment or processing instruction)."""
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def parse_delete(body: bytes) -> DeleteObjects:
    """The objects and mode of a ``<Delete>`` document; :class:`MalformedXML` for anything else."""
    try:
        root = parse_untrusted(body)
    except UnsafeXML:
        raise MalformedXML(_MALFORMED) from None
    if _local(root) != "Delete":
        raise MalformedXML(_MALFORMED)
    objects: list[DeleteTarget] = []
    quiet = False
    for child in root:
        name = _local(child)
        if name == "Quiet":
            text = (child.text or "").strip().lower()
            if text not in ("true", "false"):
                raise MalformedXML(_MALFORMED)
            quiet = text == "true"
        elif name == "Object":
            fields: dict[str, str] = {}
            for part in child:
                part_name = _local(part)
                if part_name in fields:
                    raise MalformedXML(_MALFORMED)
                fields[part_name] = part.text or ""
            key = fields.get("Key")
            if not key:
                raise MalformedXML(_MALFORMED)
            objects.append(DeleteTarget(key, fields.get("VersionId")))
        elif name:
            raise MalformedXML(_MALFORMED)
    if not objects or len(objects) > MAX_DELETE_KEYS:
        raise MalformedXML(_MALFORMED)
    return DeleteObjects(tuple(objects), quiet)


def check_integrity(body: bytes, content_md5: str | None, checksum: ExpectedChecksum | None) -> None:
    """S3's rule: the body carries a ``Content-MD5`` or an ``x-amz-checksum-*``, and it matches."""
    if content_md5 is None and checksum is None:
        raise InvalidRequest("Missing required header for this request: Content-MD5")
    if content_md5 is not None:
        try:
            claimed = base64.b64decode(content_md5.strip(), validate=True)
        except (binascii.Error, ValueError):
            claimed = b""
        if len(claimed) != 16:
            raise InvalidDigest("The Content-MD5 you specified is not valid.")
        if not hmac.compare_digest(claimed, hashlib.md5(body).digest()):  # noqa: S324 - S3's integrity check
            raise BadDigest("The Content-MD5 you specified did not match what we received.")
    if checksum is not None:
        checksum.update(body)
        checksum.check()


def _object_xml(target: DeleteTarget) -> str:
    version = f"<VersionId>{escape(target.version_id)}</VersionId>" if target.version_id is not None else ""
    return f"<Object><Key>{escape(target.key)}</Key>{version}</Object>"


def forwarded_body(objects: Sequence[DeleteTarget], *, quiet: bool) -> tuple[bytes, str]:
    """The body fedgate sends upstream for the allowed ``objects``, and its ``Content-MD5``."""
    mode = "<Quiet>true</Quiet>" if quiet else ""
    text = f'<?xml version="1.0" encoding="UTF-8"?>\n<Delete xmlns="{_NS}">{mode}'
    body = (text + "".join(_object_xml(o) for o in objects) + "</Delete>").encode("utf-8")
    return body, base64.b64encode(hashlib.md5(body).digest()).decode("ascii")  # noqa: S324 - S3 requires it


def denied_only(denied: Sequence[DeleteTarget]) -> bytes:
    """The ``DeleteResult`` when no key was allowed (nothing went upstream)."""
    empty = f'<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="{_NS}"/>'.encode()
    merged = merge_result(empty, denied)
    assert merged is not None
    return merged


def merge_result(upstream: bytes, denied: Sequence[DeleteTarget], *, quiet: bool = False) -> bytes | None:
    """The upstream's ``DeleteResult`` with an ``AccessDenied`` error per denied key, or ``None``
    when the upstream's answer is not a ``DeleteResult``. In ``quiet`` mode only errors are listed,
    whatever the upstream did (moto lists deleted keys anyway)."""
    try:
        root = parse_untrusted(upstream)
    except UnsafeXML:
        return None
    if _local(root) != "DeleteResult":
        return None
    from lxml import etree  # loaded by parse_untrusted already

    namespace = etree.QName(root).namespace
    if quiet:
        for deleted in [child for child in root if _local(child) == "Deleted"]:
            root.remove(deleted)
    for target in denied:
        error = etree.SubElement(root, etree.QName(namespace, "Error") if namespace else "Error")
        for name, value in (
            ("Key", target.key),
            ("VersionId", target.version_id),
            ("Code", "AccessDenied"),
            ("Message", "Access Denied"),
        ):
            if value is not None:
                field = etree.SubElement(error, etree.QName(namespace, name) if namespace else name)
                field.text = value
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


@final
@dataclass(frozen=True, slots=True)
class DeletePlan:
    """What to do with a DeleteObjects request: answer ``result`` (no key allowed), or forward
    ``body`` (the allowed keys, with its ``content_md5``) and ``merge`` the upstream's answer.
    ``checks`` are the per-key checks (for the audit's resources), ``outcome`` the audit's
    ``decision``, ``deniedBy`` and ``deniedKeys``."""

    checks: tuple[Check, ...]
    outcome: dict[str, Any]
    result: bytes = b""
    body: bytes | None = None
    content_md5: str = ""
    merge: Callable[[bytes], bytes | None] | None = None


def plan_deletes(
    snapshot: CatalogSnapshot,
    caller: Caller,
    context: Mapping[str, ContextValue],
    bucket: str,
    body: bytes,
    headers: Mapping[str, str],
) -> DeletePlan:
    """Check the body (``headers`` by lowercase name), decide each key: what to answer or forward."""
    check_integrity(body, headers.get("content-md5"), expected_checksum(headers.items()))
    document = parse_delete(body)
    checks = tuple(target.check(bucket) for target in document.objects)
    allowed: list[DeleteTarget] = []
    denied: list[DeleteTarget] = []
    denial: Decision | None = None
    for target, check in zip(document.objects, checks, strict=True):
        decision = permissions.decide(snapshot, caller, (check,), context)
        if decision.allowed:
            allowed.append(target)
        else:
            denied.append(target)
            denial = denial or decision
    outcome: dict[str, Any] = {"decision": "allowed" if denial is None else denial.kind}
    if denial is not None:
        outcome["deniedBy"] = denial.denied_by
        outcome["deniedKeys"] = len(denied)
    if not allowed:
        return DeletePlan(checks, outcome, result=denied_only(denied))
    forwarded, md5 = forwarded_body(allowed, quiet=document.quiet)
    return DeletePlan(
        checks,
        outcome,
        body=forwarded,
        content_md5=md5,
        merge=lambda answer: merge_result(answer, denied, quiet=document.quiet),
    )


def with_content_md5(headers: tuple[tuple[str, str], ...], md5: str) -> tuple[tuple[str, str], ...]:
    """``headers`` with the client's integrity headers (which describe its body, not the one
    forwarded) replaced by the forwarded body's ``Content-MD5``."""
    kept = tuple(
        (name, value)
        for name, value in headers
        if name.lower() not in ("content-md5", "x-amz-sdk-checksum-algorithm")
        and not name.lower().startswith("x-amz-checksum-")
    )
    return (*kept, ("Content-MD5", md5))
