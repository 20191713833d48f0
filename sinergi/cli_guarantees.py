"""`sinergi rulesets …` and `sinergi guarantors …`: the data behind guarantee decisions.

Rule sets are data: a guarantor publishes a new version as a JSON file (the shape of
domain/rulesets/*.json) and loads it here; no code changes, and stored versions never change.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from auth import clients
from auth.external import external_guarantor, is_external, parse_external_issuers
from auth.scopes import Scope
from db.queries import eligibility, guarantees
from domain.errors import InvalidValue
from domain.identifiers import RUPIAH_MAX
from domain.ruleset import load_rulesets
from sinergi.database import in_transaction
from sinergi.settings import Settings


def _load(args: argparse.Namespace, settings: Settings) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        print(f"sinergi: {directory} is not a directory of rule-set JSON files", file=sys.stderr)
        return 2

    async def work(connection: AsyncConnection) -> int:
        published = load_rulesets(directory, await eligibility.stored_rulesets(connection))
        for ruleset in published:
            refusal = await eligibility.day_taken(connection, ruleset)
            if refusal is not None:
                raise InvalidValue("effective_from", refusal)
        added = await eligibility.sync_rulesets(connection, published)
        print("\n".join(f"loaded {name}" for name in added) or "no new rule-set versions")
        return 0

    return in_transaction(settings, work)


def _list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(connection: AsyncConnection) -> int:
        for row in await eligibility.rulesets(connection):
            print(f"{row.product:<28} {row.version:<12} in force from {row.effective_from}")
        return 0

    return in_transaction(settings, work)


def _set_equity(args: argparse.Namespace, settings: Settings) -> int:
    issuers = parse_external_issuers(settings.external_issuers)

    async def work(connection: AsyncConnection) -> int:
        if is_external(issuers, args.client_id):
            # An external principal is registered nowhere here: its id is checked as a token's
            # would be made.
            reason = external_guarantor(issuers, args.client_id)
            refusal = None if reason is None else f"(an external principal's id: {reason})"
        else:
            refusal = await _not_a_registered_guarantor(connection, args.client_id)
        if refusal is not None:
            print(f"sinergi: {args.client_id} is not a guarantor {refusal}", file=sys.stderr)
            return 2
        await guarantees.set_equity(connection, args.client_id, args.equity, args.gearing)
        print(f"{args.client_id}: equity Rp{args.equity:,}, limit {args.gearing} x equity")
        return 0

    return in_transaction(settings, work)


async def _not_a_registered_guarantor(connection: AsyncConnection, client_id: str) -> str | None:
    """Why a registered client may not have an equity: equity set for a ministry (or nobody)
    would be stored and reported as set, meaning nothing."""
    client = await clients.get(connection, client_id)
    if client is not None and Scope.GUARANTEES_WRITE in client.scopes:
        return None
    what = "no client" if client is None else f"a {client.org_kind} client"
    issuing = Scope.GUARANTEES_WRITE
    return f"({what}): equity is set only for a client that issues guarantees ({issuing})"


def _rupiah(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) <= RUPIAH_MAX:
        raise argparse.ArgumentTypeError(
            f"a whole number of rupiah from 1 to {RUPIAH_MAX:,}, e.g. 50000000000"
        )
    return int(raw)


GEARING_MAX = Decimal("9999.99")
"""The largest limit the column holds (numeric(6,2)); POJK 2/2017's own limits are far below."""


def _gearing(raw: str) -> Decimal:
    """A positive multiple with at most two decimals: the column keeps two, and a limit stored
    rounded would not be the one printed as set."""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise argparse.ArgumentTypeError("a number, e.g. 20") from None
    if not value.is_finite() or not 0 < value <= GEARING_MAX:
        raise argparse.ArgumentTypeError(f"a positive number up to {GEARING_MAX}, e.g. 20")
    if value != value.quantize(Decimal("0.01")):
        raise argparse.ArgumentTypeError("at most two decimals, e.g. 20.5")
    return value


def add_parsers(commands: Any) -> None:
    rulesets = commands.add_parser("rulesets", help="guarantee eligibility rule sets")
    actions = rulesets.add_subparsers(dest="rulesets_command", required=True)
    load = actions.add_parser("load", help="load new rule-set versions from a directory")
    load.add_argument("directory")
    load.set_defaults(handler=_load)
    actions.add_parser("list", help="every stored version").set_defaults(handler=_list)

    guarantors = commands.add_parser("guarantors", help="guarantee companies' equity")
    guarantor_actions = guarantors.add_subparsers(dest="guarantors_command", required=True)
    equity = guarantor_actions.add_parser(
        "set-equity", help="a guarantor's equity, for its gearing limit (POJK 2/2017)"
    )
    equity.add_argument("client_id")
    equity.add_argument("equity", type=_rupiah, help="in rupiah")
    equity.add_argument("--gearing", type=_gearing, default=Decimal(20))
    equity.set_defaults(handler=_set_equity)
