"""The configuration file's users, groups and identity providers through the IAM API, with boto3
and the aws CLI over TCP: read and listed beside the database's (one ordering, across pages and
path prefixes), their groups, members, inline and attached policies, access keys and boundary, an
OIDC provider's client ids and a SAML provider's metadata shown; every change refused
(``UnmodifiableEntity``) and their names taken (``EntityAlreadyExists``)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway import keys
from gateway.testing import OIDCTestIssuer
from gateway.testing.saml import SAMLTestIdP
from tests.conftest import BackgroundLoop, config_from, eventually, serve_app
from tests.flows.conftest import aws_cli
from tests.iam.api.conftest import ACCOUNT, error_of

V = "2012-10-17"
ADMIN_KEY = "AKIACONFIGADMIN00001"
ADMIN_SECRET = "config-admin-secret-" + "s" * 20


def _allow(*actions: str) -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}


class Live:
    """The gateway, the admin's ``iam`` client, and a way to wait for the catalog."""

    def __init__(self, loop: BackgroundLoop, app: Any, port: int) -> None:
        self.loop, self.app, self.url = loop, app, f"http://127.0.0.1:{port}"
        self.iam = boto3.client(
            "iam",
            endpoint_url=self.url,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
            aws_access_key_id=ADMIN_KEY,
            aws_secret_access_key=ADMIN_SECRET,
        )

    def converged(self) -> None:
        """Wait until this replica's catalog holds what the database does."""

        async def caught_up() -> None:
            revision = await self.app[keys.DATABASE].database.revision()
            await eventually(lambda: self.app[keys.CATALOG].snapshot.revision >= revision, what="catalog")

        self.loop.run(caught_up())


@pytest.fixture(scope="module")
def idp() -> Iterator[SAMLTestIdP]:
    with SAMLTestIdP() as test_idp:
        yield test_idp


@pytest.fixture(scope="module")
def live(
    background_loop: BackgroundLoop,
    tmp_path_factory: pytest.TempPathFactory,
    iam_issuer: OIDCTestIssuer,
    idp: SAMLTestIdP,
) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("config-entities")
    config = config_from(
        {
            "account_id": ACCOUNT,
            "audit": {"sink": "none"},
            "providers": [
                iam_issuer.provider_config(audiences=["sts.amazonaws.com", "other-client"]),
                idp.provider_config(name="corp"),
            ],
            "database": {"url": f"sqlite:///{tmp}/iam.db"},
            "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": "k" * 32}}]},
            "policies": [
                {"name": "s3-read", "document": _allow("s3:Get*")},
                {"name": "bound", "path": "/b/", "document": _allow("s3:*", "iam:*")},
            ],
            "groups": [
                {
                    "name": "ops",
                    "path": "/ops/",
                    "managed_policies": ["s3-read"],
                    "policies": [{"name": "g-inline", "document": _allow("sqs:*")}],
                },
                {"name": "auditors"},
            ],
            "users": [
                {
                    "name": "admin",
                    "path": "/ops/",
                    "groups": ["ops"],
                    "policies": [{"name": "all", "document": _allow("*")}],
                    "access_keys": [{"id": ADMIN_KEY, "secret": {"value": ADMIN_SECRET}}],
                    "tags": {"team": "ops"},
                },
                {
                    "name": "carol",
                    "groups": ["auditors", "ops"],
                    "managed_policies": ["s3-read"],
                    "permissions_boundary": "bound",
                },
            ],
        }
    )
    runner, port, app = background_loop.run(serve_app(config))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield Live(background_loop, app, port)
    background_loop.run(runner.cleanup())


@pytest.fixture(scope="module")
def database_entities(live: Live) -> Iterator[None]:
    """Users and groups created through the API, interleaved by name with the configuration's."""
    iam = live.iam
    for name, path in (("bob", "/"), ("Dave", "/"), ("eve", "/ops/"), ("zed", "/")):
        iam.create_user(UserName=name, Path=path)
    iam.create_group(GroupName="devs")
    iam.create_group(GroupName="Pilots", Path="/ops/")
    iam.add_user_to_group(GroupName="devs", UserName="bob")
    live.converged()
    yield
    iam.remove_user_from_group(GroupName="devs", UserName="bob")
    for group in ("devs", "Pilots"):
        iam.delete_group(GroupName=group)
    for name in ("bob", "Dave", "eve", "zed"):
        iam.delete_user(UserName=name)


def _pages(iam: Any, operation: str, key: str, field: str, **params: Any) -> list[list[str]]:
    """Every page of ``operation`` at ``MaxItems=2``, following ``Marker`` by hand."""
    pages, marker = [], None
    while True:
        answer = iam.__getattribute__(operation)(
            MaxItems=2, **({"Marker": marker} if marker else {}), **params
        )
        pages.append([item[field] for item in answer[key]])
        if not answer["IsTruncated"]:
            assert "Marker" not in answer
            return pages
        marker = answer["Marker"]


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return error_of(excinfo)[0]


def test_get_user_answers_a_configuration_user(live: Live) -> None:
    carol = live.iam.get_user(UserName="Carol")["User"]  # names are found in any case
    assert carol["UserName"] == "carol" and carol["Path"] == "/"
    assert carol["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/carol"
    assert carol["UserId"].startswith("AIDA") and len(carol["UserId"]) == 21
    assert carol["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "Policy",
        "PermissionsBoundaryArn": f"arn:aws:iam::{ACCOUNT}:policy/b/bound",
    }
    assert carol["CreateDate"].year == 1970  # the configuration has no creation date
    me = live.iam.get_user()["User"]  # the calling user: the YAML's admin, signing with its key
    assert me["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/ops/admin"
    assert me["Tags"] == [{"Key": "team", "Value": "ops"}]
    assert live.iam.list_user_tags(UserName="admin")["Tags"] == [{"Key": "team", "Value": "ops"}]
    with pytest.raises(ClientError) as excinfo:
        live.iam.get_user(UserName="nobody-here")
    assert error_of(excinfo)[:2] == ("NoSuchEntity", 404)


@pytest.mark.usefixtures("database_entities")
def test_users_of_both_sources_are_paged_in_one_ordering(live: Live) -> None:
    pages = _pages(live.iam, "list_users", "Users", "UserName")
    assert pages == [["admin", "bob"], ["carol", "Dave"], ["eve", "zed"]]
    assert _pages(live.iam, "list_users", "Users", "UserName", PathPrefix="/ops/") == [["admin", "eve"]]
    paginated = live.iam.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 3})
    assert [u["UserName"] for page in paginated for u in page["Users"]] == [
        "admin",
        "bob",
        "carol",
        "Dave",
        "eve",
        "zed",
    ]
    listed = {u["UserName"]: u for u in live.iam.list_users()["Users"]}
    assert listed["carol"]["UserId"] == live.iam.get_user(UserName="carol")["User"]["UserId"]
    assert "PermissionsBoundary" not in listed["carol"]  # ListUsers shows less than GetUser


@pytest.mark.usefixtures("database_entities")
def test_groups_of_both_sources_with_their_members(live: Live) -> None:
    assert _pages(live.iam, "list_groups", "Groups", "GroupName") == [["auditors", "devs"], ["ops", "Pilots"]]
    assert [g["GroupName"] for g in live.iam.list_groups(PathPrefix="/ops/")["Groups"]] == ["ops", "Pilots"]
    ops = live.iam.get_group(GroupName="ops")
    assert ops["Group"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:group/ops/ops"
    assert ops["Group"]["GroupId"].startswith("AGPA")
    assert [u["UserName"] for u in ops["Users"]] == ["admin", "carol"] and not ops["IsTruncated"]
    first = live.iam.get_group(GroupName="ops", MaxItems=1)
    assert [u["UserName"] for u in first["Users"]] == ["admin"] and first["IsTruncated"]
    rest = live.iam.get_group(GroupName="ops", Marker=first["Marker"])
    assert [u["UserName"] for u in rest["Users"]] == ["carol"]
    assert [u["UserName"] for u in live.iam.get_group(GroupName="devs")["Users"]] == ["bob"]
    groups = live.iam.list_groups_for_user(UserName="carol")["Groups"]
    assert [g["GroupName"] for g in groups] == ["auditors", "ops"]
    assert [g["GroupName"] for g in live.iam.list_groups_for_user(UserName="bob")["Groups"]] == ["devs"]


def test_policies_keys_and_uses_of_configuration_entities(live: Live) -> None:
    iam = live.iam
    s3_read = f"arn:aws:iam::{ACCOUNT}:policy/s3-read"
    assert iam.list_attached_user_policies(UserName="carol")["AttachedPolicies"] == [
        {"PolicyName": "s3-read", "PolicyArn": s3_read}
    ]
    assert iam.list_attached_group_policies(GroupName="ops")["AttachedPolicies"][0]["PolicyArn"] == s3_read
    assert iam.list_user_policies(UserName="admin")["PolicyNames"] == ["all"]
    got = iam.get_user_policy(UserName="admin", PolicyName="all")
    assert got["PolicyDocument"] == _allow("*")
    assert iam.list_group_policies(GroupName="ops")["PolicyNames"] == ["g-inline"]
    got = iam.get_group_policy(GroupName="ops", PolicyName="g-inline")
    assert got["PolicyDocument"] == _allow("sqs:*")
    with pytest.raises(ClientError) as excinfo:
        iam.get_group_policy(GroupName="ops", PolicyName="absent")
    assert _code(excinfo) == "NoSuchEntity"
    keys_ = iam.list_access_keys(UserName="admin")["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"], k["UserName"]) for k in keys_] == [(ADMIN_KEY, "Active", "admin")]
    assert iam.list_access_keys(UserName="carol")["AccessKeyMetadata"] == []
    assert iam.list_mfa_devices(UserName="carol")["MFADevices"] == []
    entities = iam.list_entities_for_policy(PolicyArn=s3_read)
    assert [g["GroupName"] for g in entities["PolicyGroups"]] == ["ops"]
    assert [u["UserName"] for u in entities["PolicyUsers"]] == ["carol"]
    assert iam.get_policy(PolicyArn=s3_read)["Policy"]["AttachmentCount"] == 2
    bound = f"arn:aws:iam::{ACCOUNT}:policy/b/bound"
    assert iam.get_policy(PolicyArn=bound)["Policy"]["PermissionsBoundaryUsageCount"] == 1
    bounded = iam.list_entities_for_policy(PolicyArn=bound, PolicyUsageFilter="PermissionsBoundary")
    assert [u["UserName"] for u in bounded["PolicyUsers"]] == ["carol"]
    details = iam.get_account_authorization_details(Filter=["User", "Group"])
    users = {u["UserName"]: u for u in details["UserDetailList"]}
    assert users["carol"]["GroupList"] == ["auditors", "ops"]
    assert users["carol"]["AttachedManagedPolicies"] == [{"PolicyName": "s3-read", "PolicyArn": s3_read}]
    assert [p["PolicyName"] for p in users["admin"]["UserPolicyList"]] == ["all"]
    groups = {g["GroupName"]: g for g in details["GroupDetailList"]}
    assert [p["PolicyName"] for p in groups["ops"]["GroupPolicyList"]] == ["g-inline"]


@pytest.mark.usefixtures("database_entities")
def test_configuration_users_and_groups_refuse_every_change(live: Live) -> None:
    iam = live.iam
    document = json.dumps(_allow("s3:*"))
    s3_read = f"arn:aws:iam::{ACCOUNT}:policy/s3-read"
    refused: list[Callable[[], Any]] = [
        lambda: iam.delete_user(UserName="carol"),
        lambda: iam.update_user(UserName="carol", NewPath="/moved/"),
        lambda: iam.tag_user(UserName="carol", Tags=[{"Key": "k", "Value": "v"}]),
        lambda: iam.put_user_policy(UserName="carol", PolicyName="more", PolicyDocument=document),
        lambda: iam.attach_user_policy(UserName="carol", PolicyArn=s3_read),
        lambda: iam.create_access_key(UserName="carol"),
        lambda: iam.delete_group(GroupName="ops"),
        lambda: iam.put_group_policy(GroupName="ops", PolicyName="more", PolicyDocument=document),
        lambda: iam.detach_group_policy(GroupName="ops", PolicyArn=s3_read),
        lambda: iam.add_user_to_group(GroupName="ops", UserName="bob"),
        lambda: iam.add_user_to_group(GroupName="devs", UserName="carol"),  # carol's groups are the YAML's
        lambda: iam.remove_user_from_group(GroupName="auditors", UserName="carol"),
    ]
    for call in refused:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo)[:2] == ("UnmodifiableEntity", 400)
    taken: list[Callable[[], Any]] = [
        lambda: iam.create_user(UserName="Carol"),
        lambda: iam.create_group(GroupName="OPS"),
    ]
    for create in taken:
        with pytest.raises(ClientError) as excinfo:
            create()
        assert error_of(excinfo)[:2] == ("EntityAlreadyExists", 409)
    # Nothing changed.
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="carol")["Groups"]] == [
        "auditors",
        "ops",
    ]
    assert [u["UserName"] for u in iam.get_group(GroupName="devs")["Users"]] == ["bob"]
    assert iam.list_user_policies(UserName="carol")["PolicyNames"] == []


def test_a_database_user_the_configuration_shadows_is_listed_once(live: Live) -> None:
    """A database user created before the YAML declared its name (written behind the API's back,
    as an older version of the file would have let it): the YAML's user is the one listed."""

    async def create() -> None:
        async with live.app[keys.DATABASE].database.write() as tx:
            await tx.users.create("CAROL", path="/shadow/")

    live.loop.run(create())
    live.converged()
    try:
        names = [n for page in _pages(live.iam, "list_users", "Users", "UserName") for n in page]
        assert names.count("carol") == 1 and "CAROL" not in names
        assert live.iam.get_user(UserName="CAROL")["User"]["Path"] == "/"
        assert live.iam.list_users(PathPrefix="/shadow/")["Users"] == []
    finally:

        async def delete() -> None:
            async with live.app[keys.DATABASE].database.write() as tx:
                await tx.users.delete("CAROL")

        live.loop.run(delete())


def test_the_aws_cli_lists_and_reads_configuration_entities(
    live: Live, clean_aws_env: dict[str, str]
) -> None:
    env = {
        **clean_aws_env,
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": ADMIN_KEY,
        "AWS_SECRET_ACCESS_KEY": ADMIN_SECRET,
    }

    def iam(*args: str) -> subprocess.CompletedProcess[str]:
        command = [aws_cli(), "--endpoint-url", live.url, "--output", "json", "iam", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    listed = iam("list-users", "--path-prefix", "/ops/")
    assert listed.returncode == 0, listed.stderr
    assert "admin" in [u["UserName"] for u in json.loads(listed.stdout)["Users"]]
    group = iam("get-group", "--group-name", "ops")
    assert group.returncode == 0, group.stderr
    assert [u["UserName"] for u in json.loads(group.stdout)["Users"]] == ["admin", "carol"]
    refused = iam("delete-group", "--group-name", "ops")
    assert refused.returncode == 255
    assert "An error occurred (UnmodifiableEntity) when calling the DeleteGroup operation" in refused.stderr


def test_configuration_providers_are_listed_read_and_read_only(
    live: Live, iam_issuer: OIDCTestIssuer, idp: SAMLTestIdP
) -> None:
    iam = live.iam
    url = iam_issuer.issuer.removeprefix("http://")
    oidc_arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{url}"
    saml_arn = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
    api_oidc = iam.create_open_id_connect_provider(
        Url="https://token.example.com/ci", ClientIDList=["sts.amazonaws.com"]
    )["OpenIDConnectProviderArn"]
    api_saml = iam.create_saml_provider(Name="api-idp", SAMLMetadataDocument=idp.metadata_xml().decode())[
        "SAMLProviderArn"
    ]
    try:
        listed = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
        assert sorted(listed) == sorted([oidc_arn, api_oidc])
        got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=oidc_arn)
        assert got["Url"] == url and got["ClientIDList"] == ["sts.amazonaws.com", "other-client"]
        assert got["ThumbprintList"] == [] and got["CreateDate"].year == 1970
        sampled = {p["Arn"]: p for p in iam.list_saml_providers()["SAMLProviderList"]}
        assert sorted(sampled) == sorted([saml_arn, api_saml])
        document = iam.get_saml_provider(SAMLProviderArn=saml_arn)["SAMLMetadataDocument"]
        assert idp.entity_id in document and "X509Certificate" in document
        refused: list[Callable[[], Any]] = [
            lambda: iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=oidc_arn),
            lambda: iam.add_client_id_to_open_id_connect_provider(
                OpenIDConnectProviderArn=oidc_arn, ClientID="more"
            ),
            lambda: iam.tag_open_id_connect_provider(
                OpenIDConnectProviderArn=oidc_arn, Tags=[{"Key": "k", "Value": "v"}]
            ),
            lambda: iam.delete_saml_provider(SAMLProviderArn=saml_arn),
            lambda: iam.update_saml_provider(SAMLProviderArn=saml_arn, SAMLMetadataDocument=document),
        ]
        for call in refused:
            with pytest.raises(ClientError) as excinfo:
                call()
            assert error_of(excinfo)[:2] == ("UnmodifiableEntity", 400)
        taken: list[Callable[[], Any]] = [
            lambda: iam.create_open_id_connect_provider(
                Url=f"https://{url}", ClientIDList=["sts.amazonaws.com"]
            ),
            lambda: iam.create_saml_provider(Name="corp", SAMLMetadataDocument=document),
        ]
        for create in taken:
            with pytest.raises(ClientError) as excinfo:
                create()
            assert error_of(excinfo)[:2] == ("EntityAlreadyExists", 409)
        assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=oidc_arn)["ClientIDList"] == [
            "sts.amazonaws.com",
            "other-client",
        ]
    finally:
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=api_oidc)
        iam.delete_saml_provider(SAMLProviderArn=api_saml)
