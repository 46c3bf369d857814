"""OIDC providers over the Query API with boto3: create, get, list, client ids, thumbprints, tags,
delete, and the errors of bad URLs, ARNs and quotas."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.iam.api.conftest import ACCOUNT, Api
from tests.iam.api.unchecked import unchecked_client

THUMB = "a" * 40


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_create_get_list_update_delete(admin: Any) -> None:
    made = admin.create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com",
        ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=[THUMB],
        Tags=[{"Key": "ci", "Value": "github"}],
    )
    arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    assert made["OpenIDConnectProviderArn"] == arn and made["Tags"] == [{"Key": "ci", "Value": "github"}]
    got = admin.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["Url"] == "token.actions.githubusercontent.com"
    assert got["ClientIDList"] == ["sts.amazonaws.com"] and got["ThumbprintList"] == [THUMB]
    assert "CreateDate" in got
    assert {"Arn": arn} in admin.list_open_id_connect_providers()["OpenIDConnectProviderList"]

    admin.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="other")
    admin.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="other")
    assert admin.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"] == [
        "sts.amazonaws.com",
        "other",
    ]
    admin.remove_client_id_from_open_id_connect_provider(
        OpenIDConnectProviderArn=arn, ClientID="sts.amazonaws.com"
    )
    admin.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="never-there")
    assert admin.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"] == ["other"]
    admin.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=["b" * 40])
    assert admin.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ThumbprintList"] == ["b" * 40]

    admin.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[{"Key": "env", "Value": "prod"}])
    admin.untag_open_id_connect_provider(OpenIDConnectProviderArn=arn, TagKeys=["CI"])
    assert admin.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=arn)["Tags"] == [
        {"Key": "env", "Value": "prod"}
    ]
    with pytest.raises(ClientError) as excinfo:
        admin.create_open_id_connect_provider(
            Url="https://token.actions.githubusercontent.com/", ClientIDList=["x"]
        )
    assert _code(excinfo) == ("EntityAlreadyExists", 409)

    admin.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    with pytest.raises(ClientError) as excinfo:
        admin.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert _code(excinfo) == ("NoSuchEntity", 404)
    with pytest.raises(ClientError) as excinfo:
        admin.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert _code(excinfo) == ("NoSuchEntity", 404)


def test_a_path_is_part_of_the_provider(admin: Any) -> None:
    arn = admin.create_open_id_connect_provider(
        Url="https://idp.example.com/realms/acme", ClientIDList=["app"]
    )["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example.com/realms/acme"
    assert (
        admin.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["Url"]
        == "idp.example.com/realms/acme"
    )
    admin.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)


def test_errors(api: Api, admin: Any) -> None:
    unchecked = unchecked_client(api)
    for url in ("http://plain.example.com", "https://q.example.com/?a=b", "https://", "ftp://x.example.com"):
        with pytest.raises(ClientError) as excinfo:
            admin.create_open_id_connect_provider(Url=url, ClientIDList=["a"])
        assert _code(excinfo) == ("InvalidInput", 400), url
    for thumbprints in (["z" * 40], ["a" * 39], ["a" * 40] * 6):
        with pytest.raises(ClientError) as excinfo:
            unchecked.create_open_id_connect_provider(
                Url="https://t.example.com", ClientIDList=["a"], ThumbprintList=thumbprints
            )
        assert _code(excinfo) == ("ValidationError", 400), thumbprints
    with pytest.raises(ClientError) as excinfo:
        unchecked.create_open_id_connect_provider(Url="https://t.example.com", ClientIDList=["a"] * 101)
    assert _code(excinfo) == ("ValidationError", 400)
    for provider_arn, code in (
        ("arn:aws:iam::123456789012:role/not-a-provider", "InvalidInput"),
        ("arn:aws:iam::999999999999:oidc-provider/t.example.com", "NoSuchEntity"),
        (f"arn:aws:iam::{ACCOUNT}:oidc-provider/none.example.com", "NoSuchEntity"),
    ):
        with pytest.raises(ClientError) as excinfo:
            admin.get_open_id_connect_provider(OpenIDConnectProviderArn=provider_arn)
        assert _code(excinfo)[0] == code, provider_arn
    assert all(
        "t.example.com" not in p["Arn"]
        for p in admin.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    )


def test_client_id_quota(admin: Any) -> None:
    arn = admin.create_open_id_connect_provider(
        Url="https://many.example.com", ClientIDList=[f"c{n}" for n in range(100)]
    )["OpenIDConnectProviderArn"]
    with pytest.raises(ClientError) as excinfo:
        admin.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="one-more")
    assert _code(excinfo) == ("LimitExceeded", 409)
    assert len(admin.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"]) == 100
    admin.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)


def test_unauthorized_callers_change_nothing(api: Api, admin: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        api.client("reader").create_open_id_connect_provider(
            Url="https://sneaky.example.com", ClientIDList=["a"]
        )
    assert _code(excinfo) == ("AccessDenied", 403)
    assert all(
        "sneaky" not in p["Arn"] for p in admin.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    )
