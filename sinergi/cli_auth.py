"""`sinergi clients …` and `sinergi keys rotate`: managing who may call the API."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from auth import clients, keys, registry
from auth.clients import Client, ClientError
from auth.external import external_principal, is_external, parse_external_issuers
from auth.scopes import OrgKind, Scope
from db.notifications import libpq_url
from db.queries import trusted_documents
from sinergi.database import in_transaction, ready_url
from sinergi.settings import Settings
from sinergi.trusted_documents import checked_operations
from sinergi.wording import counted

SEES: dict[Scope, str] = {
    Scope.ELIGIBILITY_CHECK: "eligibility decisions for businesses in its jurisdiction",
    Scope.GUARANTEES_WRITE: "the guarantees it recorded",
    Scope.TARGETS_READ: "targets and the realisations reported",
    Scope.AUDIT_READ: "the access audit trail",
    Scope.AGGREGATES_READ: "aggregate figures for any region",
}
"""What each scope but records:read and pii:read lets a client read (docs/contract.md)."""


def _sees(client: Client) -> str:
    """What the client's granted scopes let it read, not its org kind's bundle: a province
    given records:read alone sees no figures."""
    if Scope.RECORDS_READ not in client.scopes:
        records = "never records or personal data"
    elif Scope.PII_READ in client.scopes:
        records = "records in its jurisdiction with the owners' personal data"
    else:
        records = "records in its jurisdiction without personal data"
    seen = [SEES[scope] for scope in SEES if scope in client.scopes]
    return "; ".join([records, *seen]) + (" (revoked: nothing)" if client.revoked else "")


def _describe(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "org_kind": client.org_kind.value,
        "jurisdiction": client.jurisdiction,
        "scopes": sorted(scope.value for scope in client.scopes),
        "purpose": client.purpose,
        "revoked": client.revoked,
        "sees": _sees(client),
    }


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    width = max(len(key) for key in data)
    for key, value in data.items():
        shown = " ".join(value) if isinstance(value, list) else value
        print(f"{key:<{width}}  {shown}")


def _create(args: argparse.Namespace, settings: Settings) -> int:
    async def work(connection: AsyncConnection) -> int:
        client, secret = await clients.create(
            connection,
            name=args.name,
            org_kind=args.org_kind,
            jurisdiction=args.jurisdiction,
            scopes=args.scopes.split() if args.scopes is not None else None,
            purpose=args.purpose,
        )
        _print({**_describe(client), "client_secret": secret}, args.json)
        if not args.json:
            print("\nThe secret is shown only now; store it in the client's secret store.")
        return 0

    return _handled(settings, work)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(connection: AsyncConnection) -> int:
        found = [_describe(client) for client in await clients.all_clients(connection)]
        if args.json:
            print(json.dumps(found, ensure_ascii=False))
            return 0
        for client in found:
            state = "revoked" if client["revoked"] else "active"
            scopes = " ".join(client["scopes"])
            print(
                f"{client['client_id']:<24} {client['org_kind']:<9} {client['jurisdiction']:<6} "
                f"{state:<7} {client['name']}  [{scopes}]"
            )
        return 0

    return in_transaction(settings, work)


def _show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(connection: AsyncConnection) -> int:
        client = await clients.get(connection, args.client_id)
        if client is None:
            raise ClientError(f"client_id: no client {args.client_id!r}")
        _print(_describe(client), args.json)
        return 0

    return _handled(settings, work)


NOT_CONFIRMED = 3
"""`clients revoke`'s exit code when the client is revoked but some server process did not
confirm within SINERGI_REVOKE_TIMEOUT that it refuses the client: it may still accept its tokens
until it applies the revocation (stopped, overloaded, or cut off from PostgreSQL)."""


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke, then wait until every server process has forgotten the client: each applies the
    change's notification a moment after the commit, and until then would still answer for the
    client from what it holds (auth/registry.py)."""

    async def work(connection: AsyncConnection) -> int:
        if not await clients.revoke(connection, args.client_id):
            raise ClientError(f"client_id: no active client {args.client_id!r}")
        return 0

    async def confirmed(url: str) -> int:
        timeout = settings.revoke_timeout_seconds
        try:
            heard = await registry.forgotten(
                libpq_url(make_url(url)), args.client_id, timeout_seconds=timeout
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            print(
                f"sinergi: revoked {args.client_id}, but could not ask the server processes to"
                f" confirm it ({error}); they may accept its tokens until they apply it",
                file=sys.stderr,
            )
            return NOT_CONFIRMED
        if args.json:
            print(json.dumps({"client_id": args.client_id, "revoked": True, **asdict(heard)}))
        elif heard.listening == 0:
            print(f"revoked {args.client_id}: no server process is listening, so none holds it")
        elif heard.complete:
            confirmed = (
                "the one server process listening confirmed it refuses"
                if heard.listening == 1
                else f"all {heard.listening} server processes confirmed they refuse"
            )
            print(f"revoked {args.client_id}: {confirmed} its tokens")
        if heard.complete:
            return 0
        print(
            f"sinergi: revoked {args.client_id}, but only {heard.confirmed} of "
            f"{counted(heard.listening, 'server process', 'server processes')} confirmed within"
            f" {timeout} s that they refuse its tokens; the"
            " others may accept them until they apply the revocation: check or restart them",
            file=sys.stderr,
        )
        return NOT_CONFIRMED

    return _handled(settings, work, committed=confirmed)


def _rotate(args: argparse.Namespace, settings: Settings) -> int:
    async def work(connection: AsyncConnection) -> int:
        secret = await clients.rotate_secret(connection, args.client_id)
        if secret is None:
            raise ClientError(f"client_id: no active client {args.client_id!r}")
        _print({"client_id": args.client_id, "client_secret": secret}, args.json)
        return 0

    return _handled(settings, work)


def _trust(args: argparse.Namespace, settings: Settings) -> int:
    # Imported here: building the schema takes most of a second, which every other `sinergi`
    # command (a bulk import above all) would otherwise pay at start-up.
    from graphql import build_schema as build_graphql_schema

    from schema.build import sdl

    try:
        source = Path(args.file).read_text(encoding="utf-8")
        found = checked_operations(source, build_graphql_schema(sdl()), settings.query_limits)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        print(f"sinergi: {args.file}: {error}", file=sys.stderr)
        return 2

    issuers = parse_external_issuers(settings.external_issuers)

    async def work(connection: AsyncConnection) -> int:
        if is_external(issuers, args.client_id):
            # An SSO's principal is registered nowhere here: its id is checked as a token's
            # would be made, or its documents would hold nobody.
            if (reason := external_principal(issuers, args.client_id)) is not None:
                raise ClientError(f"client_id: {args.client_id!r} is no SSO principal's: {reason}")
        elif await clients.get(connection, args.client_id) is None:
            raise ClientError(f"client_id: no client {args.client_id!r}")
        rows = [(operation.sha256, operation.name, operation.document) for operation in found]
        await trusted_documents.register(connection, args.client_id, rows)
        if args.json:
            listed = [
                {"name": op.name, "sha256": op.sha256, "document": op.document} for op in found
            ]
            print(json.dumps(listed, ensure_ascii=False))
            return 0
        for operation in found:
            print(f"{operation.sha256}  {operation.name or '(anonymous)'}")
        return 0

    return _handled(settings, work)


def _rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    """Exits 2, rotating nothing, when other sessions hold the table for longer than
    keys.LOCK_WAIT_SECONDS: named, so that the operator can end them (one may be an insider's,
    holding it on purpose) and run it again."""

    async def work(connection: AsyncConnection) -> int:
        try:
            kid = await keys.rotate(connection)
        except keys.TableHeld as held:
            print(_held(held.holders), file=sys.stderr)
            return 2
        print(f"new signing key {kid}; tokens signed by the previous key stay valid until expiry")
        return 0

    return in_transaction(settings, work)


def _reset_demo(args: argparse.Namespace, settings: Settings) -> int:
    """The demo clients' published secret back, for `serve --dev`'s GraphiQL and `sinergi
    token`: only where `serve --dev` would register them (the embedded database, or one that
    serves no real organisation), so never beside clients a secret of everyone's would read."""
    from sinergi.demo_mode import named, reset_demo_clients, served_beside_the_demo

    if settings.database_url is not None:
        others = asyncio.run(served_beside_the_demo(ready_url(settings), settings))
        if others:
            print(
                f"sinergi clients reset-demo: refusing: the database serves clients besides the"
                f" demo's ({named(others)}), so it serves real organisations, beside whom a"
                " published secret would read their records. Serve the demo from a database of"
                " its own.",
                file=sys.stderr,
            )
            return 2

    async def work(connection: AsyncConnection) -> int:
        restored = await reset_demo_clients(connection)
        _print({"restored": restored}, args.json)
        return 0

    return _handled(settings, work)


def _held(holders: list[keys.Holder]) -> str:
    named = "; ".join(
        f"pid {holder.pid} (role {holder.role or '?'}, application_name"
        f" {holder.application or '(none)'!r})"
        for holder in holders
    )
    return (
        f"sinergi: nothing rotated: signing_keys was held for over {keys.LOCK_WAIT_SECONDS} s by"
        f" {named or 'a session that has ended since'}. End them (as a superuser:"
        " SELECT pg_terminate_backend(pid)) and run `sinergi keys rotate` again."
    )


def _handled(
    settings: Settings,
    work: Callable[[AsyncConnection], Awaitable[int]],
    *,
    committed: Callable[[str], Awaitable[int]] | None = None,
) -> int:
    try:
        return in_transaction(settings, work, committed=committed)
    except ClientError as error:
        print(f"sinergi: {error}", file=sys.stderr)
        return 2


def add_parsers(commands: Any) -> None:
    """Add `clients` and `keys` to the `sinergi` command's subparsers."""
    manage = commands.add_parser("clients", help="register and manage OAuth clients")
    actions = manage.add_subparsers(dest="clients_command", required=True)

    create = actions.add_parser("create", help="register a client; prints the secret once")
    create.add_argument(
        "--name", required=True, help="the organisation, e.g. 'PT Jamkrida Kalteng'"
    )
    create.add_argument("--org-kind", required=True, choices=[kind.value for kind in OrgKind])
    create.add_argument("--jurisdiction", required=True, help="ID, a province (62) or regency")
    create.add_argument("--scopes", help="space-separated; default: the org kind's bundle")
    create.add_argument("--purpose", required=True, help="declared purpose of use (UU 27/2022)")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", help="every client, active and revoked")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)

    for name, handler, text in (
        ("show", _show, "what a client is and what it can see"),
        (
            "revoke",
            _revoke,
            "revoke a client; returns once every server process confirms it refuses the"
            " client's tokens, or exits 3 naming how many did not within"
            " SINERGI_REVOKE_TIMEOUT seconds",
        ),
        ("rotate", _rotate, "issue a new secret; the old one stops working"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("client_id")
        action.add_argument("--json", action="store_true")
        action.set_defaults(handler=handler)

    reset = actions.add_parser(
        "reset-demo",
        help="give the demo clients, rotated or revoked, the published demo secret again",
        description="Give each demo client that was rotated or revoked the published demo"
        " secret again and make it active, for `serve --dev`; refused on a database that"
        " serves real organisations.",
    )
    reset.add_argument("--json", action="store_true")
    reset.set_defaults(handler=_reset_demo)

    trust = actions.add_parser(
        "trust", help="register the operations of a .graphql file as trusted for a client"
    )
    trust.add_argument("client_id")
    trust.add_argument("file", help="a .graphql file; each operation is registered on its own")
    trust.add_argument("--json", action="store_true")
    trust.set_defaults(handler=_trust)

    key_commands = commands.add_parser("keys", help="token-signing keys").add_subparsers(
        dest="keys_command", required=True
    )
    key_commands.add_parser(
        "rotate", help="sign new tokens with a new key; live tokens stay valid"
    ).set_defaults(handler=_rotate_key)
