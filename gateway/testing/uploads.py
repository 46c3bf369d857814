"""Configurations shared by a benchmark and the test that holds its figure (one home for each)."""

from __future__ import annotations

from typing import Any

__all__ = ["upload_sink_config"]


def upload_sink_config(
    secret: str, target: str, *, host: str, account: str = "123456789012"
) -> dict[str, Any]:
    """One S3 upstream (``target``, taking requests for ``host``) in ``resign`` mode, and one role,
    ``uploader``, that may put objects in the bucket ``rss``: the configuration of
    ``bench/proxy_rss_bench.py`` and of the resting-memory test, which must measure the same server."""
    return {
        "account_id": account,
        "log_level": "WARNING",
        "store": {"backend": "memory"},
        "audit": {"sink": "none"},
        "keyring": {"active": "rss", "keys": [{"id": "rss", "secret": {"value": secret}}]},
        "roles": [
            {
                "name": "uploader",
                "trust_policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": "x"},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                        }
                    ],
                },
                "policies": [
                    {
                        "name": "put",
                        "document": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "s3:PutObject",
                                    "Resource": "arn:aws:s3:::rss/*",
                                }
                            ],
                        },
                    }
                ],
            }
        ],
        "upstreams": [
            {
                "name": "sink",
                "match": {"hosts": [host]},
                "target": target,
                "service": "s3",
                "mapping": "s3",
                "auth": "resign",
                "credentials": {"access_key_id": {"value": "AK"}, "secret_access_key": {"value": "SK"}},
            }
        ],
    }
