"""Demo mode: a populated database and one ready-made client per kind of organisation."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from auth import clients, tokens
from auth.clients import DEMO_SECRET
from auth.external import parse_external_issuers
from auth.service import AuthService
from auth.tokens import shown
from db.engine import create_engine, one_connection
from db.models import (
    AUDIT_LOG,
    ELIGIBILITY_DECISIONS,
    GUARANTEES,
    GUARANTORS,
    MSME_IMPORT_BATCHES,
    MSMES,
    RECORD_CHANGES,
)
from db.queries import guarantees
from sinergi import audit_key, demo
from sinergi.database import preparing
from sinergi.settings import Settings

DEFAULT_MSMES = 3000
DEFAULT_SEED = 62


async def load_demo_data(url: str, *, msmes: int, seed: int) -> None:
    with Progress(
        TextColumn("loading demo MSMEs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as progress:
        task = progress.add_task("msmes", total=msmes)
        async with one_connection(
            url, statement_timeout_ms=600_000, transaction=True
        ) as connection:
            await demo.load(
                connection,
                msmes=msmes,
                seed=seed,
                progress=lambda done, total: progress.update(task, completed=done),
            )


async def prepare_demo(url: str, *, load_population: bool, wait_seconds: int) -> None:
    """On first start, load the demo population; always make sure the demo clients exist.
    Under the preparing lock (sinergi.database): both look before they write, and two
    `serve --dev` starting at once on a new database both found none and wrote them, the
    second ending in a unique violation's traceback. The second now waits, then finds them.
    `load_population` is False for a database DATABASE_URL names (`serve --dev`), which may
    hold real records."""
    async with preparing(url, wait_seconds):
        async with one_connection(url, statement_timeout_ms=600_000) as connection:
            has_records = (
                await connection.execute(select(func.count()).select_from(MSMES))
            ).scalar_one() > 0
        if load_population and not has_records:
            await load_demo_data(url, msmes=DEFAULT_MSMES, seed=DEFAULT_SEED)
        engine = create_engine(url, statement_timeout_ms=60_000)
        try:
            await register_demo_clients(engine)
        finally:
            await engine.dispose()
        await warn_of_stale_demo_clients(url)
    if not load_population and not has_records:  # else the examples come back empty, unsaid
        logging.getLogger("sinergi.demo").warning(
            "the database holds no MSMEs, and serve --dev loads the demo population only into"
            " the embedded database (DATABASE_URL is set): load it with `sinergi demo-data`"
        )


DEMO_CLIENTS = (
    ("demo-ministry", "Kementerian Koperasi (demo)", "ministry", "ID", None),
    (
        "demo-province-62",
        "Dinas Koperasi dan UKM Provinsi Kalimantan Tengah (demo)",
        "province",
        "62",
        "aggregates:read records:read records:write targets:read targets:write pii:read",
    ),
    (
        "demo-province-61",
        "Dinas Koperasi dan UKM Provinsi Kalimantan Barat (demo)",
        "province",
        "61",
        None,
    ),
    (
        "demo-regency-6271",
        "Dinas Koperasi dan UKM Kota Palangka Raya (demo)",
        "regency",
        "62.71",
        None,
    ),
    ("demo-jamkrida-62", "PT Jamkrida Kalteng (demo)", "bumd", "62", None),
    ("demo-walidata", "Walidata Sinergi (demo)", "custodian", "ID", None),
)


GRAPHIQL_CLIENT_ID = "demo-province-62"
"""Whose token GraphiQL's page hands out (sinergi.app)."""

DEMO_CLIENT_IDS = frozenset(client_id for client_id, *_ in DEMO_CLIENTS)
"""The clients registered with the published DEMO_SECRET, whose tokens a server without --dev
refuses whatever secret they hold now (AuthService): a rotation would not take back the tokens
a `serve --dev` issued them."""


# Where a principal leaves its id: a user of an external SSO has no client row, only these. One
# that only reads, checks eligibility or issues guarantees writes no record nor import, but is
# in the audit trail (each read of personal data), its decisions, its guarantees, its equity.
_PRINCIPAL_COLUMNS = (
    RECORD_CHANGES.c.client_id,
    MSME_IMPORT_BATCHES.c.client_id,
    AUDIT_LOG.c.client_id,
    ELIGIBILITY_DECISIONS.c.client_id,
    GUARANTEES.c.guarantor_client_id,
    GUARANTORS.c.client_id,
)


async def served_beside_the_demo(url: str, settings: Settings) -> list[str]:
    """Who, besides the demo clients, this database serves: the clients registered here, revoked
    or not, that are not among DEMO_CLIENTS; one that left its id where a principal's work is
    kept (_PRINCIPAL_COLUMNS: a user of an external SSO has no client row) and is none of them;
    and the SSOs this server trusts (SINERGI_EXTERNAL_ISSUERS), whose users may not have
    written yet. Any of them means real organisations, which `demo-data` refuses unless told
    otherwise. One principal per table is enough to name: a demo database's history is read
    through, a real one's stops early."""
    demo_ids = sorted(DEMO_CLIENT_IDS)
    async with one_connection(url, statement_timeout_ms=60_000) as connection:
        every = await clients.all_clients(connection)
        served = [client.client_id for client in every if client.client_id not in demo_ids]
        for column in _PRINCIPAL_COLUMNS:
            principal = (
                await connection.execute(
                    select(column)
                    .where(
                        column.not_in([*demo_ids, *served]),
                        # A migration's own history entries (0037's rescaling) are no client's.
                        column.not_like("migration:%"),
                    )
                    .limit(1)
                )
            ).scalar_one_or_none()
            if principal is not None:
                served.append(principal)
    served.extend(parse_external_issuers(settings.external_issuers))
    return served


PRINCIPAL_SHOWN = 200
"""Characters of a principal's id a refusal names: any client id (64) or SSO user's whole, short
of the megabyte an insider could write into the trail."""


def named(served: list[str]) -> str:
    """`served_beside_the_demo`'s principals as a refusal names them, each escaped (`shown`):
    the service's role may add to the audit trail, so whoever holds its credentials chooses
    the ids read from there, a terminal escape among them."""
    return ", ".join(shown(principal, PRINCIPAL_SHOWN) for principal in served)


async def clients_with_demo_secret(url: str) -> list[str]:
    """The active clients anyone could act as, since their secret is DEMO_SECRET."""
    async with one_connection(url, statement_timeout_ms=60_000) as connection:
        return await clients.holding_secret(connection, DEMO_SECRET)


class NoSuchClient(LookupError):
    """`sinergi token` asked for a client the database does not hold: on a fresh home the demo
    clients, which only `serve --dev` registers, so the refusal can say what makes them."""


async def demo_token(url: str, settings: Settings, client_id: str, scope: str | None) -> str:
    """A token of a client whose secret is DEMO_SECRET, as POST /oauth/token would issue it to
    this server's settings, its limits included, and sealed with the audit key the settings
    name, which the servers must hold too (`./dev` gives both one SINERGI_HOME): read, never
    made here, since a key made beside a database would be refused by its servers for good;
    NoSuchClient for a client not registered, OAuthError (`invalid_client`) for any other."""
    engine = create_engine(url, statement_timeout_ms=60_000, pool_size=1)
    try:
        async with engine.connect() as connection:
            if await clients.get(connection, client_id) is None:
                raise NoSuchClient(client_id)
        key = audit_key.load(settings)
        auth = AuthService(
            engine,
            issuer=settings.issuer,
            audience=settings.audience,
            token_lifetime_seconds=settings.token_lifetime_seconds,
            token_seal_key=tokens.seal_key(key),
            failure_limits=settings.failure_limits,
        )
        await auth.startup()
        answer = await auth.issue_token(client_id, DEMO_SECRET, scope, address="cli")
    finally:
        await engine.dispose()
    return str(answer["access_token"])


RESET_COMMAND = "sinergi clients reset-demo"
"""What gives the demo clients back the published secret (sinergi.cli_auth)."""


async def register_demo_clients(engine: AsyncEngine) -> None:
    """One client per kind of organisation, all with DEMO_SECRET: for development only. A demo
    client that exists is left as it is (`stale_demo_clients` says which no longer serve the
    demo), and so is its equity, which an operator may have set since."""
    async with engine.begin() as connection:
        for client_id, name, org_kind, jurisdiction, scopes in DEMO_CLIENTS:
            if await clients.get(connection, client_id) is not None:
                continue
            await clients.create(
                connection,
                client_id=client_id,
                secret=DEMO_SECRET,
                name=name,
                org_kind=org_kind,
                jurisdiction=jurisdiction,
                scopes=scopes.split() if scopes else None,
                purpose="demonstration of Sinergi with synthetic data",
            )
            if client_id == "demo-jamkrida-62":
                # PT Jamkrida Kalteng's equity is not public; the demo uses the POJK 2/2017
                # minimum for a provincial guarantor, Rp50 miliar, with the 20x productive
                # gearing limit. Set once: `sinergi guarantors set-equity` changes it for good.
                await guarantees.set_equity(connection, client_id, 50_000_000_000, Decimal(20))


async def stale_demo_clients(connection: AsyncConnection) -> dict[str, str]:
    """The demo clients that no longer serve the demo, each with why: revoked, or no longer
    holding DEMO_SECRET (rotated). One scrypt per active demo client, off the event loop."""
    stale: dict[str, str] = {}
    for client_id in sorted(DEMO_CLIENT_IDS):
        claimed = await clients.claim(connection, client_id)
        if claimed.client is None:
            if await clients.get(connection, client_id) is not None:
                stale[client_id] = "revoked"
        elif not await asyncio.to_thread(clients.secret_matches, DEMO_SECRET, claimed.secret_hash):
            stale[client_id] = "no longer holds the published demo secret (rotated)"
    return stale


async def warn_of_stale_demo_clients(url: str) -> None:
    """`serve --dev` leaves a rotated or revoked demo client so; say which, and how to undo it:
    GraphiQL (demo-province-62) and `sinergi token` answer 403 or refuse until then."""
    async with one_connection(url, statement_timeout_ms=60_000) as connection:
        stale = await stale_demo_clients(connection)
    for client_id, why in stale.items():
        logging.getLogger("sinergi.demo").warning(
            "demo client %s is %s, so it gets no token with the demo secret%s: restore the demo"
            " clients with `%s`",
            client_id,
            why,
            " and GraphiQL answers 403" if client_id == GRAPHIQL_CLIENT_ID else "",
            RESET_COMMAND,
        )


async def reset_demo_clients(connection: AsyncConnection) -> list[str]:
    """Give each rotated or revoked demo client DEMO_SECRET again and make it active; the ones
    it changed. Their registration (scopes, jurisdiction) and equity stay as they are."""
    stale = await stale_demo_clients(connection)
    for client_id in stale:
        await clients.restore(connection, client_id, DEMO_SECRET)
    return sorted(stale)
