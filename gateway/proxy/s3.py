"""The built-in S3 mapping: method + path + query to S3's IAM actions, resources and condition keys.

Buckets come from the path (``/bucket/key``) or, with a ``virtual_host_suffix``, from the host
(``bucket.suffix``); either way the upstream receives the path-style form of exactly the bucket and
key the policy saw. Resources are ``arn:aws:s3:::bucket`` and ``arn:aws:s3:::bucket/key``.

Fail closed: a subresource or query parameter this table does not know, two subresources at once,
and a malformed bucket name or copy source are refused with AccessDenied rather than forwarded
with a guess. Multi-object delete names its keys in the body: it maps to no check here, and
:mod:`gateway.proxy.deletes` authorizes each key.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from gateway.errors import AccessDenied, InvalidParameterValue
from gateway.proxy.mapping import Check, ContextValue, Dialect, Mapped, ProxyRequest
from gateway.sigv4 import SignatureInfo

__all__ = ["PLAIN_PARAMETERS", "S3Mapping", "bucket_arn", "object_arn", "signature_context"]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_SAFE = "/-_.~"
# A key quote() would leave as it is (it quotes everything else, bytes of non-ASCII included).
_UNQUOTED_KEY = re.compile(r"[A-Za-z0-9/\-_.~]*")

# Bucket-level subresources: (method, subresource) -> (IAM action, operation name).
_BUCKET_SUB: dict[tuple[str, str], tuple[str, str]] = {}
for _name, _get, _put, _delete in (
    ("acl", "GetBucketAcl", "PutBucketAcl", None),
    ("policy", "GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    ("policyStatus", "GetBucketPolicyStatus", None, None),
    ("tagging", "GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    ("versioning", "GetBucketVersioning", "PutBucketVersioning", None),
    ("cors", "GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    ("lifecycle", "GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    ("encryption", "GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    ("website", "GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    ("logging", "GetBucketLogging", "PutBucketLogging", None),
    ("notification", "GetBucketNotification", "PutBucketNotification", None),
    ("object-lock", "GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", None),
    (
        "publicAccessBlock",
        "GetBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
        "PutBucketPublicAccessBlock",
    ),
    (
        "ownershipControls",
        "GetBucketOwnershipControls",
        "PutBucketOwnershipControls",
        "PutBucketOwnershipControls",
    ),
    ("requestPayment", "GetBucketRequestPayment", "PutBucketRequestPayment", None),
    ("accelerate", "GetAccelerateConfiguration", "PutAccelerateConfiguration", None),
    (
        "replication",
        "GetReplicationConfiguration",
        "PutReplicationConfiguration",
        "PutReplicationConfiguration",
    ),
    ("location", "GetBucketLocation", None, None),
    ("uploads", "ListBucketMultipartUploads", None, None),
    ("versions", "ListBucketVersions", None, None),
):
    for _method, _action in (("GET", _get), ("PUT", _put), ("DELETE", _delete)):
        if _action is not None:
            _op = (
                _action
                if _method != "DELETE"
                else "Delete" + _action.removeprefix("Put").removeprefix("Delete")
            )
            _BUCKET_SUB[(_method, _name)] = (_action, _op)
_BUCKET_SUB[("GET", "uploads")] = ("ListBucketMultipartUploads", "ListMultipartUploads")
_BUCKET_SUB[("GET", "versions")] = ("ListBucketVersions", "ListObjectVersions")
_BUCKET_SUB[("POST", "delete")] = ("DeleteObject", "DeleteObjects")

_OBJECT_SUBRESOURCES = frozenset(
    (
        "acl",
        "tagging",
        "uploads",
        "uploadId",
        "attributes",
        "retention",
        "legal-hold",
        "restore",
        "select",
        "torrent",
    )
)
#: Ordinary parameters: they refine an operation but never change which one it is.
PLAIN_PARAMETERS = frozenset(
    (
        "list-type", "prefix", "delimiter", "max-keys", "marker", "continuation-token", "start-after",
        "fetch-owner", "encoding-type", "key-marker", "version-id-marker", "upload-id-marker",
        "max-uploads", "max-parts", "part-number-marker", "partNumber", "versionId", "x-id",
        "select-type", "allow-unordered", "optional-object-attributes",
    )
)  # fmt: skip
_LIST_KEYS = (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys"))
_PUT_HEADER_KEYS = (
    "x-amz-acl",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-storage-class",
    "x-amz-metadata-directive",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
)


def bucket_arn(bucket: str) -> str:
    """``arn:aws:s3:::bucket``."""
    return f"arn:aws:s3:::{bucket}"


def object_arn(bucket: str, key: str) -> str:
    """``arn:aws:s3:::bucket/key`` (the key exactly as decoded)."""
    return f"arn:aws:s3:::{bucket}/{key}"


def _check_bucket(bucket: str) -> str:
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidParameterValue("The specified bucket is not valid.")
    return bucket


def _object_path(bucket: str, key: str) -> str:
    return f"/{bucket}/{key if _UNQUOTED_KEY.fullmatch(key) else quote(key, safe=_SAFE)}"


class S3Mapping:
    """S3's REST API; see the module docstring."""

    dialect: Dialect = "s3"
    encoded_slash = True

    def __init__(self, *, virtual_host_suffix: str | None = None) -> None:
        self._suffix = f".{virtual_host_suffix}" if virtual_host_suffix else None

    def virtual_bucket(self, host: str) -> str | None:
        """The bucket a virtual-hosted ``host`` names, or ``None`` for path style."""
        if self._suffix is not None and host.endswith(self._suffix):
            return host[: -len(self._suffix)]
        return None

    def map(self, request: ProxyRequest) -> Mapped:
        segments = request.segments
        bucket: str | None
        if self._suffix is not None and request.host.endswith(self._suffix):
            bucket = _check_bucket(request.host[: -len(self._suffix)])
        elif segments and segments[0]:
            bucket, segments = _check_bucket(segments[0]), segments[1:]
        else:
            bucket = None
            if any(segments):
                raise InvalidParameterValue("The specified bucket is not valid.")
        key = "/".join(segments)
        names = [p.name for p in request.query]
        subresources = {n for n in names if n not in PLAIN_PARAMETERS and not n.startswith("response-")}
        if bucket is None:
            if request.method in ("GET", "HEAD") and not subresources:
                return Mapped("ListBuckets", (Check("s3:ListAllMyBuckets", "*"),), "/")
            raise AccessDenied("This operation is not supported through the proxy.")
        if not key:
            return self._bucket(request, bucket, subresources)
        return self._object(request, bucket, key, subresources)

    def _bucket(self, request: ProxyRequest, bucket: str, subresources: set[str]) -> Mapped:
        path = f"/{bucket}"
        method = request.method
        if len(subresources) > 1:
            raise AccessDenied("This combination of subresources is not supported through the proxy.")
        if subresources:
            (sub,) = subresources
            found = _BUCKET_SUB.get((method, sub))
            if found is None:
                raise AccessDenied("This operation is not supported through the proxy.")
            action, operation = found
            if operation == "DeleteObjects":
                # The keys are in the body: one check per key, decided by gateway.proxy.deletes.
                return Mapped(operation, (), path, delete_objects=True)
            context = _list_context(request) if sub in ("uploads", "versions") else {}
            return Mapped(operation, (Check(f"s3:{action}", bucket_arn(bucket), context),), path)
        if method in ("GET", "HEAD"):
            operation = "HeadBucket" if method == "HEAD" else (
                "ListObjectsV2" if request.param("list-type") == "2" else "ListObjects"
            )  # fmt: skip
            return Mapped(
                operation, (Check("s3:ListBucket", bucket_arn(bucket), _list_context(request)),), path
            )
        if method == "PUT":
            return Mapped(
                "CreateBucket", (Check("s3:CreateBucket", bucket_arn(bucket), _put_context(request)),), path
            )
        if method == "DELETE":
            return Mapped("DeleteBucket", (Check("s3:DeleteBucket", bucket_arn(bucket)),), path)
        raise AccessDenied("This operation is not supported through the proxy.")

    def _object(self, request: ProxyRequest, bucket: str, key: str, subresources: set[str]) -> Mapped:
        method = request.method
        path = _object_path(bucket, key)
        resource = object_arn(bucket, key)
        unknown = subresources - _OBJECT_SUBRESOURCES
        if unknown or len(subresources - {"uploadId"}) > 1:
            raise AccessDenied("This operation is not supported through the proxy.")
        version = request.param("versionId")
        context: dict[str, ContextValue] = {}
        if version is not None:
            context["s3:versionid"] = version
        versioned = "Version" if version is not None else ""
        sub = next(iter(subresources - {"uploadId"}), None)
        upload = "uploadId" in subresources

        def one(action: str, operation: str, ctx: dict[str, ContextValue] | None = None) -> Mapped:
            return Mapped(
                operation, (Check(f"s3:{action}", resource, ctx if ctx is not None else context),), path
            )

        if method in ("GET", "HEAD"):
            if sub is None and upload and method == "GET":
                return one("ListMultipartUploadParts", "ListParts")
            if upload:
                raise AccessDenied("This operation is not supported through the proxy.")
            if sub is None:
                return one(f"GetObject{versioned}", "HeadObject" if method == "HEAD" else "GetObject")
            table = {
                "acl": (f"GetObject{versioned}Acl", "GetObjectAcl"),
                "tagging": (f"GetObject{versioned}Tagging", "GetObjectTagging"),
                "attributes": (f"GetObject{versioned}Attributes", "GetObjectAttributes"),
                "retention": ("GetObjectRetention", "GetObjectRetention"),
                "legal-hold": ("GetObjectLegalHold", "GetObjectLegalHold"),
                "torrent": (f"GetObject{versioned}Torrent", "GetObjectTorrent"),
            }
            if sub in table and method == "GET":
                return one(*table[sub])
        elif method == "PUT":
            if sub is None:
                put_ctx = {**context, **_put_context(request)}
                copy = request.headers.get("x-amz-copy-source")
                if upload:
                    if request.param("partNumber") is None:
                        raise InvalidParameterValue("UploadPart requires partNumber.")
                    operation = "UploadPartCopy" if copy is not None else "UploadPart"
                else:
                    operation = "CopyObject" if copy is not None else "PutObject"
                checks = [Check("s3:PutObject", resource, put_ctx)]
                headers: tuple[tuple[str, str], ...] = ()
                if copy is not None:
                    source_check, canonical = _copy_source(copy)
                    checks.append(source_check)
                    headers = (("x-amz-copy-source", canonical),)
                return Mapped(operation, tuple(checks), path, headers)
            table = {
                "acl": (f"PutObject{versioned}Acl", "PutObjectAcl"),
                "tagging": (f"PutObject{versioned}Tagging", "PutObjectTagging"),
                "retention": ("PutObjectRetention", "PutObjectRetention"),
                "legal-hold": ("PutObjectLegalHold", "PutObjectLegalHold"),
            }
            if sub in table and not upload:
                return one(*table[sub])
        elif method == "DELETE":
            if sub is None and upload:
                return one("AbortMultipartUpload", "AbortMultipartUpload")
            if sub is None:
                return one(f"DeleteObject{versioned}", "DeleteObject")
            if sub == "tagging" and not upload:
                return one(f"DeleteObject{versioned}Tagging", "DeleteObjectTagging")
        elif method == "POST":
            if sub == "uploads" and not upload:
                return one("PutObject", "CreateMultipartUpload", {**context, **_put_context(request)})
            if sub is None and upload:
                return one("PutObject", "CompleteMultipartUpload")
            if sub == "restore" and not upload:
                return one("RestoreObject", "RestoreObject")
            if sub == "select" and not upload:
                return one("GetObject", "SelectObjectContent")
        raise AccessDenied("This operation is not supported through the proxy.")


def _list_context(request: ProxyRequest) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {}
    for param, key in _LIST_KEYS:
        value = request.param(param)
        if value is not None:
            context[key] = value
    return context


def _put_context(request: ProxyRequest) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {}
    for name in _PUT_HEADER_KEYS:
        value = request.headers.get(name)
        if value is not None:
            context[f"s3:{name}"] = value
    copy = request.headers.get("x-amz-copy-source")
    if copy is not None:
        context["s3:x-amz-copy-source"] = copy
    tagging = request.headers.get("x-amz-tagging")
    if tagging is not None:
        tags = _tags(tagging)
        context["s3:RequestObjectTagKeys"] = list(tags)
        for name, value in tags.items():
            context[f"s3:RequestObjectTag/{name}"] = value
    return context


def _tags(header: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in header.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        try:
            tags[unquote(name.replace("+", " "), errors="strict")] = unquote(
                value.replace("+", " "), errors="strict"
            )
        except UnicodeDecodeError:
            raise InvalidParameterValue("The x-amz-tagging header is not valid.") from None
    if len(tags) > 50:
        raise InvalidParameterValue("Object tags cannot be greater than 50.")
    return tags


def _copy_source(header: str) -> tuple[Check, str]:
    """The GetObject check on a copy source, and the header re-encoded canonically."""
    raw, _, query = header.strip().partition("?")
    version: str | None = None
    if query:
        name, eq, value = query.partition("=")
        if name != "versionId" or not eq or "&" in value:
            raise InvalidParameterValue("The x-amz-copy-source header is not valid.")
        version = unquote(value)
    try:
        decoded = unquote(raw.removeprefix("/"), errors="strict")
    except UnicodeDecodeError:
        raise InvalidParameterValue("The x-amz-copy-source header is not valid.") from None
    bucket, slash, key = decoded.partition("/")
    parts = key.split("/")
    if (
        not slash
        or not key
        or any(p in (".", "..") for p in parts)
        or re.search(r"%[0-9A-Fa-f]{2}|[\x00-\x1f\x7f]", key)
    ):
        raise InvalidParameterValue("The x-amz-copy-source header is not valid.")
    _check_bucket(bucket)
    canonical = _object_path(bucket, key)
    action = "s3:GetObject"
    context: dict[str, ContextValue] = {}
    if version is not None:
        action = "s3:GetObjectVersion"
        context["s3:versionid"] = version
        canonical += f"?versionId={quote(version, safe='-_.~')}"
    return Check(action, object_arn(bucket, key), context), canonical


def signature_context(
    info: SignatureInfo, payload_hash: str, now: float, *, version: str = "AWS4-HMAC-SHA256"
) -> dict[str, str]:
    """S3's signature condition keys: ``s3:authType``, ``s3:signatureversion`` (``AWS`` for SigV2),
    ``s3:signatureAge``, ``s3:x-amz-content-sha256``.

    A SigV2 presigned URL says when it expires, not when it was signed, so it has no
    ``s3:signatureAge``: a condition on the age then cannot be met (rather than seeing 0).
    Deny SigV2 outright with ``s3:signatureversion`` where the age matters.
    """
    context = {
        "s3:authType": "REST-HEADER" if info.form == "header" else "REST-QUERY-STRING",
        "s3:signatureversion": version,
        "s3:x-amz-content-sha256": payload_hash,
    }
    if not (version == "AWS" and info.form == "query"):
        context["s3:signatureAge"] = str(max(0, int((now - info.amz_date.timestamp()) * 1000)))
    return context
