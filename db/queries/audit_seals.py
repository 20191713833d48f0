"""Seal the audit entries written since the last seal: one batch, one statement, one commit.

Requests never wait for this: `sinergi serve` runs it every `SINERGI_AUDIT_SEAL_SECONDS` and on
shutdown (sinergi/audit_sealer.py). Seals are deterministic (the key, the entry, the seal before
it), so whichever process seals an entry seals it alike; an advisory lock keeps two from
trying at once. An entry whose hash or link is already wrong is not sealed: sealing would
vouch for tampering, so sealing stops there and says so, and `audit verify` names it. The
service's role may insert seals, so an insider holding its credentials can write the next one,
though not one the key reproduces (`_take_up`): sealing takes the chain up from the seal the key
makes of that entry, as long as the entry matches its chain (its hash and link), and names the
forged seal, and the entry too when the service did not write it as it stands; stopping there
stopped sealing for good, one INSERT away. An entry that cannot be read
(`db.seals.Unreadable`) is sealed over its stored text and sealing goes on: it is chained, and
stopping at it would leave every later entry unsealed for good, the trail being append-only;
it is counted and logged as the tampering it is, and `audit verify` names it. So is an entry
the service did not write (its MAC missing or wrong, `db.seals.unsigned`): whoever holds the
service's credentials could otherwise stop sealing with one INSERT. And so is the head a
process saw sealed in its last round, found rewritten or gone (`seen`): the owner deleted the
newest entry with its seal, and the service's next entry takes its number; sealing it vouches
only for that entry, and every checkpoint of the old one still tells them apart.

The lock is only tried: a process that finds it taken leaves sealing to whoever holds it. Any
connection may take that lock, the service's role too, and hold it without sealing; so a process
that finds it taken asks how long the oldest unsealed entry has waited (`oldest_unsealed`), and
says so once that is longer than sealing ever takes (sinergi/audit_sealer.py).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Dialect, Text, bindparam, cast, column, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement, Label
from sqlalchemy.types import TypeDecorator

from db.models import AUDIT_LOG, AUDIT_SEALS
from db.queries import Record
from db.seals import (
    Checkpoint,
    Unreadable,
    entry_key,
    read_entry,
    row_mac,
    same_mac,
    unsigned,
)

BATCH = 5_000
PARTITION = 250
"""Entries read and sealed at a time. The serving process's event loop answers requests while
the next ones are read, so a round never holds it for more than a few milliseconds: sealing a
batch at once, two seconds of a busy server's entries, stalled every request for 50-70 ms
(a lookup's p99 under load was 72 ms, 17 ms with sealing off)."""
PARTITION_BYTES = 4 * 1_048_576
"""And no more of them than come to this, their `entry` and `subjects` as text (the first
whatever its size): 250 of the largest entries the trail takes (`MAX_ENTRY_BYTES`) are 250 MiB,
and eight of 40 MB, inserted with the service's credentials before the trail bounded them, held
the statement reading them past its timeout on every round: sealing stopped for good. An entry
Sinergi writes is a few KB at most, so partitions of them are still `PARTITION` long. Measured
one entry at a time, as far as they are taken (`_TAKEN`), not all `PARTITION` up front."""
MAX_ENTRY_BYTES = 1_048_576
"""The largest entry the trail takes, its `entry` and `subjects` as text (migration 0053)."""

_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('sinergi.audit_seals'))")
# Each statement planned for its values and the tables as they are now. A sealer seals on one
# long-lived connection, whose prepared statements PostgreSQL may otherwise answer with one plan
# for all values, chosen while the trail was empty: once it had grown, that plan compared every
# seal with every entry (tests/test_audit_sealing_plans.py), and sealing stopped at the statement
# timeout wherever autovacuum does not analyze the tables. Planning costs a sealing round far
# less than a millisecond.
_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


class _StoredEntry(TypeDecorator[Any]):
    """An entry as `db.seals.read_entry` reads the text PostgreSQL stores (the SQL casts it to
    text, so the driver's JSON codec never sees it)."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else read_entry(value)


def stored_columns() -> list[ColumnElement[Any]]:
    """The columns of `audit_log`, its entry read by `db.seals.read_entry`: a row any entry
    can be read into, that `row_mac` seals."""
    return [
        cast(column, _StoredEntry()).label("entry") if column.name == "entry" else column
        for column in AUDIT_LOG.c
    ]


# An entry with its seal, to compare with a head seen sealed before.
_SEALED_AS = (
    select(AUDIT_LOG.c.hash, AUDIT_SEALS.c.mac)
    .join(AUDIT_SEALS, AUDIT_SEALS.c.seq == AUDIT_LOG.c.seq)
    .where(AUDIT_LOG.c.seq == bindparam("seq"))
)
# The batch as two arrays, one statement: as a multi-row VALUES (SQLAlchemy's executemany), a
# statement of its own per thousand seals, each parsed and planned afresh.
_INSERT = text(
    "INSERT INTO audit_seals (seq, mac)"
    " SELECT * FROM unnest(CAST(:seqs AS bigint[]), CAST(:macs AS text[]))"
)
WHICH_TRAIL_AND_WHEN = text(
    "SELECT (SELECT id::text FROM audit_trail) AS trail, current_database() AS database,"
    " clock_timestamp() AS now"
)
"""What a checkpoint names, and the database's time: for sealing and for verifying."""
_SEALED_ENTRY = AUDIT_LOG.alias("sealed_entry")
# The first entry after the newest seal of an entry, and how long ago the database wrote it: two
# index lookups, whatever the trail's length. A seal of no entry (written ahead of the trail
# before migration 0035 refused one) is passed over: the entries below it wait unsealed.
_OLDEST_UNSEALED = (
    select(AUDIT_LOG.c.seq, (func.clock_timestamp() - AUDIT_LOG.c.at).label("age"))
    .where(
        AUDIT_LOG.c.seq
        > func.coalesce(
            select(AUDIT_SEALS.c.seq)
            .join(_SEALED_ENTRY, _SEALED_ENTRY.c.seq == AUDIT_SEALS.c.seq)
            .order_by(AUDIT_SEALS.c.seq.desc())
            .limit(1)
            .scalar_subquery(),
            0,
        )
    )
    .order_by(AUDIT_LOG.c.seq)
    .limit(1)
)


_HAS_MACS_FROM = text("SELECT to_regclass('audit_entry_macs') IS NOT NULL")
_MACS_FROM = text("SELECT (SELECT from_seq FROM audit_entry_macs)")


async def macs_from(connection: AsyncConnection) -> int:
    """The first entry that must carry the service's MAC (migration 0051). 1, every entry,
    when the record is gone (only the owner can drop or empty it): that names the entries
    written before MACs as unsigned, rather than take every MAC-less entry inserted since."""
    if not (await connection.execute(_HAS_MACS_FROM)).scalar_one():
        return 1
    found = (await connection.execute(_MACS_FROM)).scalar_one()
    return 1 if found is None else int(found)


_NEWEST_SEAL = select(func.max(AUDIT_SEALS.c.seq)).scalar_subquery()
# The trail's first seal, with its entry, and how far the seals reach: three index lookups.
_FIRST_SEAL = (
    select(_NEWEST_SEAL.label("newest"), *stored_columns(), AUDIT_SEALS.c.mac)
    .select_from(AUDIT_SEALS)
    .outerjoin(AUDIT_LOG, AUDIT_LOG.c.seq == AUDIT_SEALS.c.seq)
    .where(AUDIT_SEALS.c.seq == select(func.min(AUDIT_SEALS.c.seq)).scalar_subquery())
)


@dataclass(frozen=True, slots=True)
class FirstSeal:
    """How far the trail is sealed, and its first seal: which key made the seals shows there."""

    newest: int
    """The entry of the newest seal; 0 when nothing was ever sealed."""
    first: Record | None
    """Entry 1 with its seal (a row of `_FIRST_SEAL`); None when there is no such seal."""

    def made_with(self, key: bytes) -> bool | None:
        """Whether `key` made the first seal; None when no seal of entry 1 tells. The first,
        not the newest: the service's role may append a seal (db/queries/audit_seals.py), so
        the newest may be forged, which sealing and `audit verify` name as tampering; no one
        short of the owner rewrites the first, so a mismatch there is the wrong key."""
        if self.first is None:
            return None
        return same_mac(row_mac(key, "", self.first), self.first.mac)


async def first_seal(connection: AsyncConnection) -> FirstSeal:
    """One statement: what a process about to seal or verify with a key checks it against."""
    found = (await connection.execute(_FIRST_SEAL)).first()
    if found is None:
        return FirstSeal(0, None)
    return FirstSeal(found.newest, found if found.seq == 1 else None)


def recomputed_hash() -> Label[str]:
    """`audit_log_hash()` over a row's own columns: what its `hash` should be."""
    return func.audit_log_hash(
        AUDIT_LOG.c.prev_hash,
        AUDIT_LOG.c.seq,
        AUDIT_LOG.c.at,
        AUDIT_LOG.c.client_id,
        AUDIT_LOG.c.entry,
        AUDIT_LOG.c.subjects,
    ).label("expected")


_BEFORE = AUDIT_SEALS.alias("before")
# The seals, newest first, each with its entry (none: a seal written ahead of the trail) and
# the seal before it, to check it before building on it.
_NEWEST_FIRST = (
    select(
        *stored_columns(),
        recomputed_hash(),
        AUDIT_SEALS.c.seq.label("sealed_seq"),
        AUDIT_SEALS.c.mac,
        func.coalesce(_BEFORE.c.mac, "").label("mac_before"),
    )
    .select_from(AUDIT_SEALS)
    .outerjoin(AUDIT_LOG, AUDIT_LOG.c.seq == AUDIT_SEALS.c.seq)
    .outerjoin(_BEFORE, _BEFORE.c.seq == AUDIT_SEALS.c.seq - 1)
    .order_by(AUDIT_SEALS.c.seq.desc())
)
_LAST = _NEWEST_FIRST.limit(1)
# The seals before `below`, a page of them, when the newest is not one the key reproduces
# (`_take_up`).
_SEALS_BACK = _NEWEST_FIRST.where(AUDIT_SEALS.c.seq < bindparam("below")).limit(PARTITION)


# The next partition of entries after `after`: at most `rows`, and no more than come to
# PARTITION_BYTES (the first whatever its size). It is measured one entry at a time, from the
# first, and the walk stops at the entry that reaches PARTITION_BYTES: only the entries taken
# are measured, each converted to text once more to be. Measuring every candidate up front read
# all 250 entries after the last seal in full, each partition: sixteen of 40 MB, stored before
# the trail bounded them, took 7.5 s, and every sealing round failed at the statement timeout.
# Their stored size (`pg_column_size`) would be no measure: compressed, 40 MB of one letter is
# a few hundred bytes. An entry after a gap in `seq` ends the walk, and begins the next
# partition, where sealing stops at it.
_TAKEN = (
    text(
        "WITH RECURSIVE walk (seq, through, taken) AS ("
        " (SELECT seq, octet_length(entry::text)::bigint + octet_length(subjects::text), 1"
        "  FROM audit_log WHERE seq > :after ORDER BY seq LIMIT 1)"
        " UNION ALL"
        " SELECT later.seq,"
        "  walk.through + octet_length(later.entry::text) + octet_length(later.subjects::text),"
        "  walk.taken + 1"
        " FROM walk JOIN audit_log AS later ON later.seq = walk.seq + 1"
        " WHERE walk.through < :partition_bytes AND walk.taken < :rows"
        ") SELECT seq FROM walk"
    )
    .bindparams(bindparam("partition_bytes", PARTITION_BYTES, type_=BigInteger))
    .columns(column("seq", BigInteger))
    .subquery("taken")
)
_PARTITION = (
    select(*stored_columns(), recomputed_hash())
    .where(AUDIT_LOG.c.seq.in_(select(_TAKEN.c.seq)))
    .order_by(AUDIT_LOG.c.seq)
)


def _by_name(rows: Sequence[Record]) -> list[Any]:
    """`rows` as named tuples, their columns read as SQLAlchemy's rows are (`row.seq`): one
    SQLAlchemy's Row finds by name costs half a microsecond, and sealing an entry reads its
    columns a score of times (its link, its hash, its MAC and its seal), 12 µs an entry, as
    much as checking its MAC; once copied, a few hundredths of one."""
    if not rows:
        return []
    shape = _named(tuple(rows[0]._fields))
    return [shape._make(row) for row in rows]


@cache
def _named(fields: tuple[str, ...]) -> type[Any]:
    """A named tuple of the statement's columns, made once for each statement."""
    return namedtuple("StoredEntry", fields)


@dataclass(frozen=True, slots=True)
class Unsealed:
    """The oldest entry written since the last seal, and how long it had waited then."""

    seq: int
    age: timedelta


async def oldest_unsealed(connection: AsyncConnection) -> Unsealed | None:
    """The oldest entry not sealed yet, by the database's clock; None when every entry is."""
    await connection.execute(_CUSTOM_PLANS)
    found = (await connection.execute(_OLDEST_UNSEALED)).first()
    return None if found is None else Unsealed(found.seq, found.age)


@dataclass(frozen=True, slots=True)
class Sealed:
    head: Checkpoint | None
    """The newest seal after this round (None: nothing was ever sealed): the seal the key
    makes of its entry, which a checkpoint signs, whatever seal is stored for it."""
    count: int
    refused_at: int | None
    """The entry where sealing stopped: its hash or link is wrong (under its seal, whoever made
    it, or past the seals), or no seal is one the key makes (a key not the trail's)."""
    reason: str = ""
    tampered: tuple[tuple[int, str], ...] = ()
    """Entries sealed this round, or found under a seal the key did not make (past the caller's
    `seen`), that the service did not write as they stand, and why: one that cannot be read, or
    whose MAC is missing or wrong (`db.seals.unsigned`). Sealed past,
    not stopped at: the trail is append-only, so stopping would leave every later entry
    unsealed for good, an insider's one INSERT away."""

    rewound: int | None = None
    """The head the caller saw sealed (`seen`), if found rewritten or gone since."""
    forged: tuple[int, ...] = ()
    """Entries past the caller's `seen` whose stored seal the key did not make (written with
    the service's credentials) while the entry matches its chain and MAC: sealed past, for the
    reason `tampered` are."""
    seen: Checkpoint | None = None
    """`head` with its seal as stored: what the caller passes as `seen` next round."""

    @property
    def refused(self) -> bool:
        """Whether this round met an entry or seal it could not vouch for."""
        return (
            self.refused_at is not None
            or bool(self.tampered)
            or self.rewound is not None
            or bool(self.forged)
        )


async def _still_sealed(connection: AsyncConnection, head: Checkpoint) -> bool:
    """Whether the entry of `head` is stored and sealed as it was then: one index lookup."""
    found = (await connection.execute(_SEALED_AS, {"seq": head.seq})).first()
    return found is not None and (found.hash, found.mac) == (head.hash, head.mac)


@dataclass(frozen=True, slots=True)
class _Head:
    """Where sealing takes the chain up: the newest sealed entry, and the seal the key makes of
    it (`mac`), which is the one stored (`stored`) unless that was forged."""

    seq: int
    hash: str
    mac: str
    stored: str
    forged: tuple[int, ...] = ()
    tampered: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class _Refusal:
    seq: int
    reason: str


_NOT_OURS = "does not match its seal"
SEAL_FORGED = "its seal was not made with the audit key (written with the service's credentials)"
"""A seal the key does not make of an entry that matches its chain: the service's role may
insert one; rewriting the entry under it would have failed its hash or link."""


def _not_the_services(signing: bytes, first_signed: int, row: Record) -> str | None:
    """Why `row`, chained and sealed, is not an entry the service wrote as it stands: it
    cannot be read, or its MAC is missing or wrong (`db.seals.unsigned`); None when it is."""
    if isinstance(row.entry, Unreadable):
        return f"cannot be read ({row.entry.reason})"
    return unsigned(signing, first_signed, row)


async def _back_to_the_keys(
    connection: AsyncConnection, key: bytes, last: Record
) -> tuple[Record, list[Record]] | _Refusal:
    """The newest seal before `last` that the key reproduces from the seal before it, and the
    seals from `last` back to it, newest first. Walked back a page (`PARTITION`) at a time, as
    far as it takes: looking one page back only, one statement of 251 forged seals (the
    service's role may insert them, migration 0035 taking any number in order) left none the
    key reproduces, which read as a key not the trail's, and sealing stopped for good. The walk
    ends at seal 1 at the latest, which the key reproduces once the sealer wrote it (seals are
    append-only, so that role cannot replace it) unless the key is not the trail's, which
    `serve` refuses before it starts (`FirstSeal.made_with`). Not from the head the caller saw
    sealed (`seen`) instead: that holds the seal as stored, not the one the key made, and a
    process starting has none."""
    run = [last]
    below = last.sealed_seq
    while page := (await connection.execute(_SEALS_BACK, {"below": below})).all():
        for row in page:
            if row.seq is None:
                return _Refusal(row.sealed_seq, "has a seal but no entry")
            if same_mac(row_mac(key, row.mac_before, row), row.mac):
                return row, run
            run.append(row)
        below = page[-1].sealed_seq
    return _Refusal(last.seq, _NOT_OURS)  # none, the first seal included: a key not the trail's


async def _take_up(
    connection: AsyncConnection, key: bytes, signing: bytes, first_signed: int
) -> _Head | _Refusal:
    """The chain's head as the key makes it. The newest seal, when the key reproduces it from
    the seal before (every round, unless a seal was forged). Else the seals are walked back to
    the newest the key reproduces (`_back_to_the_keys`), and forward from it, each seal made
    afresh: a seal not made so is one forged with the service's credentials (the sealer's own
    seals chain on the seal the key makes), taken past when its entry matches its chain. Its
    entry is named `tampered` when the service did not write it as it stands, as past the
    seals (`seal`): refusing it under a forged seal, while sealing goes past it under none,
    let one transaction of the service's role, an entry and a seal of it, stop sealing for
    good. An entry failing its hash or link stops sealing there (rewritten under its seal, or
    the seal of an entry already broken), as does finding no seal the key reproduces: a key
    not the trail's (`serve` refuses one whose first seal fails before it starts)."""
    last = (await connection.execute(_LAST)).first()
    if last is None:
        return _Head(0, "", "", "")
    if last.seq is None:
        # Written before migration 0035 refused such a seal: the database refuses every seal
        # after the entries below it, and the seal stays (the table is append-only).
        return _Refusal(last.sealed_seq, "has a seal but no entry")
    if same_mac(row_mac(key, last.mac_before, last), last.mac):
        return _Head(last.seq, last.hash, last.mac, last.mac)
    found = await _back_to_the_keys(connection, key, last)
    if isinstance(found, _Refusal):
        return found
    reproduced, run = found
    head = _Head(reproduced.seq, reproduced.hash, reproduced.mac, reproduced.mac)
    forged: list[int] = []
    tampered: list[tuple[int, str]] = []
    for row in reversed(run):
        mac = row_mac(key, head.mac, row)
        if not same_mac(mac, row.mac):
            if row.prev_hash != head.hash or row.hash != row.expected:
                return _Refusal(row.seq, _NOT_OURS)
            if (problem := _not_the_services(signing, first_signed, row)) is None:
                forged.append(row.seq)
            else:
                tampered.append((row.seq, f"{problem}, and {SEAL_FORGED}"))
        head = _Head(row.seq, row.hash, mac, row.mac, tuple(forged), tuple(tampered))
    return head


async def seal(
    connection: AsyncConnection, key: bytes, *, batch: int = BATCH, seen: Checkpoint | None = None
) -> Sealed | None:
    """Seal up to `batch` entries in the caller's transaction; None when another process holds
    the sealing lock (it will publish the checkpoint). `seen`: the head the caller last saw
    sealed (`Sealed.seen`), checked to be still there as it was."""
    if not (await connection.execute(_LOCK)).scalar_one():
        return None
    await connection.execute(_CUSTOM_PLANS)
    rewound = None if seen is None or await _still_sealed(connection, seen) else seen.seq
    trail, database, now = (await connection.execute(WHICH_TRAIL_AND_WHEN)).one()
    signing, first_signed = entry_key(key), await macs_from(connection)
    taken = await _take_up(connection, key, signing, first_signed)
    if isinstance(taken, _Refusal):
        return Sealed(None, 0, taken.seq, taken.reason, rewound=rewound)
    told = 0 if seen is None or rewound is not None else seen.seq  # forged seals said already
    forged = tuple(seq for seq in taken.forged if seq > told)
    tampered = [(seq, reason) for seq, reason in taken.tampered if seq > told]
    previous_seq, previous_mac, previous_hash = taken.seq, taken.mac, taken.hash
    seqs: list[int] = []
    macs: list[str] = []
    refused_at: int | None = None
    reason = ""
    while len(seqs) < batch and refused_at is None:
        bounds = {"after": previous_seq, "rows": min(PARTITION, batch - len(seqs))}
        rows = _by_name((await connection.execute(_PARTITION, bounds)).all())
        if not rows:
            break
        for row in rows:
            if (
                row.seq != previous_seq + 1
                or row.prev_hash != previous_hash
                or row.hash != row.expected
            ):
                refused_at, reason = previous_seq + 1, "does not match its hash or link"
                break
            if (problem := _not_the_services(signing, first_signed, row)) is not None:
                tampered.append((row.seq, problem))
            previous_mac = row_mac(key, previous_mac, row)
            previous_seq, previous_hash = row.seq, row.hash
            seqs.append(row.seq)
            macs.append(previous_mac)
    if seqs:
        await connection.execute(_INSERT, {"seqs": seqs, "macs": macs})
    head = (
        None
        if previous_seq == 0
        else Checkpoint(database, previous_seq, previous_hash, previous_mac, now, trail)
    )
    stored = previous_mac if seqs else taken.stored
    return Sealed(
        head,
        len(seqs),
        refused_at,
        reason,
        tuple(tampered),
        rewound,
        forged,
        None if head is None else replace(head, mac=stored),
    )
