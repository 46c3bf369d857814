"""``fedgate iam``: the bootstrap administrator and the export of API-managed state.

``fedgate iam create-admin`` gives a fresh install its first administrator: it creates (or reuses)
an IAM user in the database with an ``AdministratorAccess`` inline policy and a new access key, and
prints the key once (id and secret: the secret is sealed under the key ring and never shown
again). With that key, ``aws iam create-user`` and everything else on the IAM API is authorized.

``fedgate iam export`` writes the database's users, groups, roles and managed policies in the
configuration file's format, so a team can move them into git (what the format cannot carry, such
as access keys, is listed on standard error).

Both need ``database.url`` (a file or server the gateway shares) and, for ``create-admin``, a
configured ``keyring`` (a key ring made up per process would take the sealed secret with it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from gateway.config import GatewayConfig
from gateway.credentials.keyring import KeyRing
from gateway.db import IamDatabase
from gateway.db_cli import MEMORY_DATABASE_HINT, NoSharedDatabase, run_with_database

__all__ = ["ADMIN_POLICY", "ADMIN_POLICY_NAME", "add_iam_commands"]

ADMIN_POLICY_NAME = "AdministratorAccess"
#: The administrator's inline policy: every action on every resource.
ADMIN_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
_MAX_KEYS = 2


class _Refused(Exception):
    """A mistake the command explains in one line (exit 2)."""


def add_iam_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fedgate iam create-admin`` and ``fedgate iam export``."""
    from gateway.cliopts import add_config_argument

    iam = sub.add_parser(
        "iam",
        help="bootstrap an administrator, export API-managed IAM state",
        description="Work on the IAM database named by database.url: create the first administrator's "
        "access key, or export what the IAM API created in the configuration's format.",
    )
    commands = iam.add_subparsers(dest="iam_command", required=True, metavar="COMMAND")
    admin = commands.add_parser(
        "create-admin",
        help="create an administrator user and print a new access key once",
        description="Create (or reuse) an IAM user in the database with an AdministratorAccess inline "
        "policy and a new long-term access key, and print the key's id and secret once. Gateways "
        "using the database accept it within their watcher's bound.",
    )
    add_config_argument(admin)
    admin.add_argument("--user", default="admin", metavar="NAME", help="the user's name (default admin)")
    admin.add_argument(
        "--reuse",
        action="store_true",
        help="make an existing user the administrator (refused without it: whoever created that user, "
        "and every key it already has, would become administrator too)",
    )
    admin.set_defaults(handler=_create_admin)
    export = commands.add_parser(
        "export",
        help="write the database's IAM entities as configuration YAML",
        description="Write the users, groups, roles and managed policies created through the IAM API "
        "in the configuration file's format (standard output, or -o FILE); what the format cannot "
        "hold (access keys, roles' boundaries) is listed on standard error.",
    )
    add_config_argument(export)
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    export.set_defaults(handler=_export)


def _fail(message: str) -> int:
    print(f"fedgate: {message}", file=sys.stderr)
    return 2


def _create_admin(args: argparse.Namespace) -> int:
    from gateway.credentials import new_secret_access_key
    from gateway.startup import load

    config, _ = load(args.config)
    name: str = args.user
    if config.keyring is None:
        return _fail(
            "iam create-admin needs a configured keyring (the secret is sealed under it; without one "
            "each process makes up its own): add keyring: to the configuration"
        )
    if any(u.name.lower() == name.lower() for u in config.users):
        return _fail(
            f"user {name} is declared in {args.config} (its keys come from there): choose another --user"
        )
    secret = new_secret_access_key()

    reuse: bool = args.reuse

    async def create(db: IamDatabase) -> tuple[str, str, bool, list[str]]:
        async with db.write() as tx:
            user = await tx.users.get(name)
            created = user is None
            if user is None:
                user = await tx.users.create(name)
            elif not reuse:
                # Someone allowed to create users could have made this one, with a key of their own,
                # waiting for an operator to bootstrap that name.
                raise _Refused(
                    f"user {user.arn} already exists: choose another --user, or pass --reuse to make it "
                    "the administrator together with every access key it already has"
                )
            existing = await tx.access_keys.for_user(user.id)
            if len(existing) >= _MAX_KEYS:
                raise _Refused(
                    f"user {name} already has {_MAX_KEYS} access keys: delete one first "
                    f"(aws iam delete-access-key --user-name {name} --access-key-id ...)"
                )
            await tx.inline_policies.put("user", user.id, ADMIN_POLICY_NAME, json.dumps(ADMIN_POLICY))
            key = await tx.access_keys.create(user.id, secret)
        return user.arn, key.id, created, [k.id for k in existing]

    try:
        arn, key_id, created, earlier = run_with_database(config, create, keyring=_keyring(config))
    except NoSharedDatabase:
        return _fail(f"iam create-admin needs a database shared with the gateway: {MEMORY_DATABASE_HINT}")
    except _Refused as exc:
        return _fail(str(exc))
    print(f"{'Created' if created else 'Reused'} user {arn} with the {ADMIN_POLICY_NAME} inline policy.")
    if earlier:
        print(f"Its earlier access keys are administrator keys now too: {', '.join(earlier)}")
    print("New access key (the secret is shown only this once):")
    print(f"AccessKeyId: {key_id}")
    print(f"SecretAccessKey: {secret}")
    return 0


def _keyring(config: GatewayConfig) -> KeyRing:
    return KeyRing.from_settings(config.keyring)


def _export(args: argparse.Namespace) -> int:
    from gateway.arns import policy_arn
    from gateway.iam.export import export_document
    from gateway.iam.records import records_from_database
    from gateway.startup import load

    config, _ = load(args.config)

    async def read(db: IamDatabase) -> Any:
        return await db.load()

    try:
        stored = run_with_database(config, read)
    except NoSharedDatabase:
        return _fail(f"iam export needs a database shared with the gateway: {MEMORY_DATABASE_HINT}")
    records = records_from_database(stored, config.account_id)
    config_policies = {policy_arn(config.account_id, p.path, p.name): p.name for p in config.policies}
    exported = export_document(records, config_policies)
    header = (
        f"# IAM entities created through fedgate's IAM API (account {config.account_id}, database "
        f"revision {stored.revision}), exported by `fedgate iam export`.\n"
        "# Merge these sections into the configuration file: entities it declares are read-only "
        "through the API.\n"
    )
    text = header + yaml.safe_dump(exported.document, sort_keys=False, allow_unicode=True)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            return _fail(f"-o {args.output}: cannot write: {exc.strerror}")
    else:
        sys.stdout.write(text)
    for line in exported.omitted:
        print(f"fedgate: not exported: {line}", file=sys.stderr)
    return 0
