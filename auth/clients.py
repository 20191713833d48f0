"""Registered OAuth clients. Secrets are shown once and stored only as salted scrypt hashes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, false, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.scopes import DEFAULT_SCOPES, READ_BEHIND_WRITE, OrgKind, Scope, unreadable_writes
from db.models import OAUTH_CLIENTS
from db.queries import regions
from domain.identifiers import dotted_region_code, is_region_code
from domain.text import INVISIBLE, UNSTORABLE, printable, storable

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MAX_CLIENT_ID_LENGTH = 64
"""The longest id a registered client can have (`oauth_clients.client_id` is varchar(64)):
a longer one names nobody, so the token endpoint refuses it unread. An external issuer's
principals (`iss#azp`, auth.external) never authenticate there."""
DEMO_SECRET = "sinergi-demo-secret"  # noqa: S105 (published: development only)
"""The demo clients' secret (sinergi.demo_mode), published in the README: whoever presents it
could be anyone, so outside development the token endpoint refuses it (AuthService)."""


def refused_secret(dev: bool) -> str | None:
    """The secret no client is issued a token with, whichever holds it (AuthService): the
    published demo secret, unless `dev` (`serve --dev`, which alone serves the demo clients:
    SINERGI_ENV=development turns GraphiQL on, not this refusal off)."""
    return None if dev else DEMO_SECRET


class ClientError(ValueError):
    """A client cannot be registered or changed as asked; the message names the field."""


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    org_kind: OrgKind
    jurisdiction: str
    scopes: frozenset[Scope]
    purpose: str
    revoked: bool


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def secret_matches(secret: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(
        secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate, bytes.fromhex(digest))


def allowed_scopes(org_kind: OrgKind) -> frozenset[Scope]:
    bundle = DEFAULT_SCOPES[org_kind]
    return bundle | ({Scope.PII_READ} if Scope.RECORDS_READ in bundle else frozenset())


def granted_scopes(org_kind: OrgKind, requested: Iterable[str] | None) -> frozenset[Scope]:
    """The bundle of the org kind, or less but not nothing; pii:read may be added on top of a
    records bundle.

    Anything else outside the bundle is refused: an org kind's bundle is the contract's
    statement of what that kind of organisation may ever do. So is a write without the read
    it needs (auth.scopes.READ_BEHIND_WRITE): what it writes answers with the record.
    """
    if requested is None:
        return DEFAULT_SCOPES[org_kind]
    try:
        scopes = frozenset(Scope(item) for item in requested)
    except ValueError as error:
        raise ClientError(f"scopes: unknown scope ({error})") from None
    if not scopes:  # a client no token of which could do anything: a slip, not a request
        raise ClientError("scopes: none given (leave them out for the org kind's bundle)")
    allowed = allowed_scopes(org_kind)
    if not scopes <= allowed:
        extra = " ".join(sorted(scope.value for scope in scopes - allowed))
        raise ClientError(f"scopes: {extra} not allowed for org kind {org_kind.value}")
    if blind := sorted(unreadable_writes(scopes)):
        needs = ", ".join(
            f"{write.value} needs {READ_BEHIND_WRITE[write].value}" for write in blind
        )
        raise ClientError(f"scopes: {needs} as well (a write answers with the record it wrote)")
    return scopes


JURISDICTION_LEVELS: dict[OrgKind, frozenset[str]] = {
    OrgKind.MINISTRY: frozenset({"national"}),
    OrgKind.CUSTODIAN: frozenset({"national"}),
    OrgKind.PROVINCE: frozenset({"province"}),
    OrgKind.REGENCY: frozenset({"regency", "city"}),
    OrgKind.BUMD: frozenset({"province", "regency", "city"}),
}
"""The levels of region (domain.identifiers.RegionLevel) each org kind's jurisdiction may be:
asked of a client registered here and of an external issuer's token alike."""


async def jurisdiction_refusal(
    org_kind: OrgKind, jurisdiction: str, level_of: Callable[[str], Awaitable[str | None]]
) -> str | None:
    """Why `jurisdiction` cannot be the jurisdiction of a principal of `org_kind`, or None when
    it can: the one rule for a client registered here and for an external issuer's token.
    `level_of` gives an existing region's level, None for a code no region has, since a code of
    the right shape may name nothing (62.99 is shaped as a regency's): each caller looks it up
    where it holds the regions, the regions table at registration, the serving process's
    RegionDirectory for a token, rather than a statement per request."""
    expected = JURISDICTION_LEVELS[org_kind]
    if expected == {"national"}:
        return None if jurisdiction == "ID" else f"a {org_kind.value} is national (ID)"
    if is_region_code(jurisdiction) and await level_of(jurisdiction) in expected:
        return None
    meant = dotted_region_code(jurisdiction)
    hint = (
        f"; did you mean {meant}?"
        if meant is not None and await level_of(meant) in expected
        else ""
    )
    return f"{jurisdiction!r} is not a {' or '.join(sorted(expected))} code{hint}"


def _check_text(field: str, text: str) -> None:
    """A client's name and purpose are read back in every audit entry and log line about its
    requests, and by `clients list`: held to the rule of every name a record holds
    (domain.text.printable), and to what a text column can store (domain.text.storable), so that
    a pasted newline, terminal escape or bidirectional override cannot forge or hide a line,
    nor a NUL fail the registration as an unexplained database error."""
    if not storable(text):
        raise ClientError(f"{field}: {UNSTORABLE}")
    if not printable(text):
        raise ClientError(f"{field}: {INVISIBLE}")


async def create(
    connection: AsyncConnection,
    *,
    name: str,
    org_kind: str,
    jurisdiction: str,
    scopes: Iterable[str] | None,
    purpose: str,
    client_id: str | None = None,
    secret: str | None = None,
) -> tuple[Client, str]:
    """Register a client; returns it with its secret, which is not stored and not shown again."""
    try:
        kind = OrgKind(org_kind)
    except ValueError:
        choices = ", ".join(kind.value for kind in OrgKind)
        raise ClientError(f"org_kind: must be one of {choices}") from None
    name, purpose = name.strip(), purpose.strip()
    if not name:
        raise ClientError("name: required")
    if not purpose:
        raise ClientError("purpose: required (the declared purpose of use, UU 27/2022)")
    for field, text in (("name", name), ("purpose", purpose)):
        _check_text(field, text)
    if client_id is not None and len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise ClientError(f"client_id: at most {MAX_CLIENT_ID_LENGTH} characters")
    granted = granted_scopes(kind, scopes)
    refusal = await jurisdiction_refusal(kind, jurisdiction, partial(regions.level_of, connection))
    if refusal is not None:
        raise ClientError(f"jurisdiction: {refusal}")
    client_id = client_id or f"sng_{secrets.token_urlsafe(12)}"
    secret = secret or secrets.token_urlsafe(32)
    await connection.execute(
        OAUTH_CLIENTS.insert().values(
            client_id=client_id,
            secret_hash=hash_secret(secret),
            name=name,
            org_kind=kind.value,
            jurisdiction=jurisdiction,
            scopes=sorted(scope.value for scope in granted),
            purpose=purpose,
        )
    )
    client = Client(client_id, name, kind, jurisdiction, granted, purpose, False)
    return client, secret


def from_row(row: Any) -> Client:
    """A registry row (any statement's that selects the client's columns) as a Client."""
    return Client(
        client_id=row.client_id,
        name=row.name,
        org_kind=OrgKind(row.org_kind),
        jurisdiction=row.jurisdiction,
        scopes=frozenset(Scope(s) for s in row.scopes),
        purpose=row.purpose,
        revoked=row.revoked_at is not None,
    )


def _named(client_id: str) -> ColumnElement[bool]:
    """The condition matching the client `client_id` (`get`, `revoke`, `rotate_secret`). An id
    no text column can store (a NUL, or the lone surrogate an argument's undecodable bytes
    become) names no client, so matches nothing: compared with the column, it would fail the
    statement as a database error."""
    return OAUTH_CLIENTS.c.client_id == client_id if storable(client_id) else false()


async def get(connection: AsyncConnection, client_id: str) -> Client | None:
    """The client `client_id` names, None for none (an id no column can store too: `_named`)."""
    row = (await connection.execute(select(OAUTH_CLIENTS).where(_named(client_id)))).first()
    return None if row is None else from_row(row)


_NOBODY = hash_secret(secrets.token_urlsafe(32))
"""What an unknown client id's secret is checked against: every attempt costs one scrypt, so
how long the answer takes tells nobody whether the client id exists."""


@dataclass(frozen=True, slots=True)
class Claim:
    """What a client id's secret is checked against: the active client of that id and its
    stored hash, or no client and _NOBODY's for an unknown or revoked id."""

    client: Client | None
    secret_hash: str


async def claim(connection: AsyncConnection, client_id: str) -> Claim:
    row = (
        await connection.execute(
            select(OAUTH_CLIENTS).where(OAUTH_CLIENTS.c.client_id == client_id)
        )
    ).first()
    if row is None or row.revoked_at is not None:
        return Claim(None, _NOBODY)
    return Claim(from_row(row), row.secret_hash)


async def authenticated(claimed: Claim, secret: str) -> Client | None:
    """The client if the secret matches; None otherwise, alike, and in the same time (an unknown
    or revoked client's secret is checked against _NOBODY). It needs no connection: scrypt costs
    tens of milliseconds by design, run off the event loop, and a connection held that long
    is one the pool, which /graphql shares, does not have."""
    matches = await asyncio.to_thread(secret_matches, secret, claimed.secret_hash)
    return claimed.client if matches else None


class Busy(Exception):
    """This process is checking as many secrets as it may, and as many more wait their turn."""


class ClientBusy(Exception):
    """This process is checking as many secrets of one client id as it may, and as many more of
    that id wait their turn."""


WAITING_ROUNDS = 4
"""How many turns of checks may wait behind those running: a request waits at most about four
scrypts for its turn (some 0.2 s); one more is refused at once."""
CHECKS_PER_CLIENT = 2
"""Secrets of one client id checked at once in a process (SecretChecksByClient)."""


class SecretChecks:
    """At most `at_once` token requests checking a secret in this process at a time (by default
    one per CPU: scrypt is CPU work, 16 MiB of memory each), WAITING_ROUNDS times as many waiting
    their turn, and any more refused at once (`busy`, by default Busy) rather than queued: a
    flood of token requests costs time and memory up to this bound, not in proportion to the
    flood. The token endpoint's throttle statements are bounded alike, on turns of their own
    (AuthService.throttle_turns)."""

    def __init__(self, at_once: int | None = None, busy: type[Exception] = Busy) -> None:
        at_once = at_once or os.cpu_count() or 1
        self._admitted = asyncio.Semaphore(at_once * (1 + WAITING_ROUNDS))
        self._running = asyncio.Semaphore(at_once)
        self._busy = busy

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Waits for a turn, or raises `busy` when the queue is full."""
        if self._admitted.locked():
            raise self._busy
        async with self._admitted, self._running:
            yield


class SecretChecksByClient:
    """SecretChecks of their own for each client id, CHECKS_PER_CLIENT at once: a client
    sending many token requests together, with its right secret, waits for its own turns, and
    holds no more of the process's (SecretChecks) than that, so cannot keep other clients'
    requests from theirs. Only ids being checked are held, so they take no memory beyond
    the requests in flight."""

    def __init__(self, at_once: int = CHECKS_PER_CLIENT) -> None:
        self._at_once = at_once
        self._checks: dict[str, tuple[SecretChecks, int]] = {}
        """Each id's checks, and how many requests for it are in flight."""

    @asynccontextmanager
    async def turn(self, client_id: str) -> AsyncIterator[None]:
        """Waits for a turn of `client_id`'s, or raises ClientBusy when its queue is full."""
        checks, users = self._checks.get(client_id, (None, 0))
        if checks is None:
            checks = SecretChecks(self._at_once, ClientBusy)
        self._checks[client_id] = checks, users + 1
        try:
            async with checks.turn():
                yield
        finally:
            checks, users = self._checks[client_id]
            if users == 1:
                del self._checks[client_id]
            else:
                self._checks[client_id] = checks, users - 1


async def holding_secret(connection: AsyncConnection, secret: str) -> list[str]:
    """The active clients whose secret is `secret`: each costs one scrypt, off the event loop."""
    rows = await connection.execute(
        select(OAUTH_CLIENTS.c.client_id, OAUTH_CLIENTS.c.secret_hash)
        .where(OAUTH_CLIENTS.c.revoked_at.is_(None))
        .order_by(OAUTH_CLIENTS.c.client_id)
    )
    return [
        row.client_id
        for row in rows
        if await asyncio.to_thread(secret_matches, secret, row.secret_hash)
    ]


async def all_clients(connection: AsyncConnection) -> list[Client]:
    rows = await connection.execute(select(OAUTH_CLIENTS).order_by(OAUTH_CLIENTS.c.created_at))
    return [from_row(row) for row in rows]


async def revoke(connection: AsyncConnection, client_id: str) -> bool:
    result = await connection.execute(
        update(OAUTH_CLIENTS)
        .where(_named(client_id), OAUTH_CLIENTS.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(result.rowcount)


async def rotate_secret(connection: AsyncConnection, client_id: str) -> str | None:
    secret = secrets.token_urlsafe(32)
    result = await connection.execute(
        update(OAUTH_CLIENTS)
        .where(_named(client_id), OAUTH_CLIENTS.c.revoked_at.is_(None))
        .values(secret_hash=hash_secret(secret))
    )
    return secret if result.rowcount else None


async def restore(connection: AsyncConnection, client_id: str, secret: str) -> bool:
    """Make `client_id` active again with `secret`: for the demo clients only (its caller's
    refusals keep it from a database of real organisations)."""
    result = await connection.execute(
        update(OAUTH_CLIENTS)
        .where(OAUTH_CLIENTS.c.client_id == client_id)
        .values(secret_hash=hash_secret(secret), revoked_at=None)
    )
    return bool(result.rowcount)
