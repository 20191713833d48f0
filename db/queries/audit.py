"""The audit log: append an entry, read entries, verify the hash chain and its seals.

The chain is computed by the database (migration 0002), and verification recomputes it with the
same SQL function, whose expression the chain's trigger evaluates in place (migration 0061: the
entry turned into text once), so the check cannot drift from how entries were chained unnoticed
(tests/test_migrations.py verifies entries chained before and after); the keyed seals and the
checkpoints (db/seals.py) catch what that function alone cannot: a chain recomputed with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Dialect,
    Text,
    TextClause,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncResult
from sqlalchemy.types import ARRAY, TypeDecorator

from db.driver import DriverStatement, check_out, fetch
from db.engine import json_text
from db.models import AUDIT_LOG, AUDIT_SEALS
from db.queries import Record
from db.queries.audit_seals import (
    SEAL_FORGED,
    WHICH_TRAIL_AND_WHEN,
    Unsealed,
    macs_from,
    recomputed_hash,
    stored_columns,
)
from db.seals import (
    Checkpoint,
    Unreadable,
    entry_key,
    entry_mac,
    new_nonce,
    read_entry,
    row_mac,
    same_mac,
    unsigned,
)

# One statement per batch, however many entries: asyncpg's executemany ran the INSERT once per
# entry, an executor started and ended for each. The batch goes as arrays, unnested;
# each entry's subjects are the slice `first_subject:last_subject` (1-based, inclusive; empty when
# last < first) of one flat array, PostgreSQL having no array of arrays of differing lengths.
# The entry goes as JSON text, cast by PostgreSQL: db.driver takes no parameter SQLAlchemy must
# convert. Compiled once and run on asyncpg itself (db/driver.py): through SQLAlchemy a batch
# cost several hundred µs of CPU more, paid per request when requests come one at a time.
# It answers how many rows it stored: a BEFORE INSERT trigger returning NULL (which only someone
# with the owner's rights can place) drops an entry without an error.
_APPEND_SQL = text(
    """
WITH stored AS (
    INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)
    SELECT batch.client_id, CAST(batch.entry AS jsonb),
           (CAST(:subjects AS text[]))[batch.first_subject:batch.last_subject],
           batch.entry_mac, batch.entry_nonce
      FROM unnest(CAST(:client_ids AS text[]), CAST(:entries AS text[]),
                  CAST(:first_subjects AS integer[]), CAST(:last_subjects AS integer[]),
                  CAST(:macs AS text[]), CAST(:nonces AS text[]))
           AS batch (client_id, entry, first_subject, last_subject, entry_mac, entry_nonce)
    RETURNING 1
)
SELECT count(*) AS stored FROM stored
"""
)
_APPEND = DriverStatement(_APPEND_SQL)


class EntriesNotStored(RuntimeError):
    """The database stored fewer audit entries than were sent, without an error: something in
    it drops them. Every request of the batch fails (INTERNAL), none goes out unrecorded."""


@dataclass(frozen=True, slots=True)
class _Entry:
    client_id: str
    entry: str
    """As JSON text."""
    subjects: list[str]
    mac: str
    """`db.seals.entry_mac` of the entry under `nonce`."""
    nonce: str


SUBJECTS_PER_ENTRY = 20_000
"""The most people one entry names: an entry naming more is written as several, each naming a
share of them (in order) and saying which `part` of how many `parts` it is, all in one
statement. Some 340 KB of NIKs, well inside the 1 MiB the trail takes of an entry (migration
0053), whatever a request or a `sinergi import msmes` of a whole register names."""


def _entries(
    key: bytes, client_id: str, entry: dict[str, Any], subjects: Iterable[str]
) -> list[_Entry]:
    """The entry as it is sent, signed with the entry key `key` (`db.seals.entry_key`): one,
    or its parts when it names more than `SUBJECTS_PER_ENTRY` people."""
    listed = sorted(set(subjects))
    shares = [
        listed[start : start + SUBJECTS_PER_ENTRY]
        for start in range(0, len(listed), SUBJECTS_PER_ENTRY)
    ]
    if len(shares) <= 1:
        return [_signed(key, client_id, entry, listed)]
    return [
        _signed(key, client_id, entry | {"part": part, "parts": len(shares)}, share)
        for part, share in enumerate(shares, start=1)
    ]


def _signed(key: bytes, client_id: str, entry: dict[str, Any], subjects: list[str]) -> _Entry:
    nonce = new_nonce()
    signed = entry_mac(key, nonce, client_id, entry, subjects)
    return _Entry(client_id, json_text(entry), subjects, signed, nonce)


@dataclass(frozen=True, slots=True)
class _Pending:
    entry: _Entry
    done: asyncio.Future[None]


def _parameters(batch: Sequence[_Entry]) -> dict[str, list[Any]]:
    subjects: list[str] = []
    first_subjects: list[int] = []
    last_subjects: list[int] = []
    for one in batch:
        first_subjects.append(len(subjects) + 1)
        subjects.extend(one.subjects)
        last_subjects.append(len(subjects))
    return {
        "client_ids": [one.client_id for one in batch],
        "entries": [one.entry for one in batch],
        "first_subjects": first_subjects,
        "last_subjects": last_subjects,
        "subjects": subjects,
        "macs": [one.mac for one in batch],
        "nonces": [one.nonce for one in batch],
    }


class AuditWriter:
    """Appends the entries of concurrent requests together: one statement, one commit.

    Each entry links to the one before it under a single advisory lock (migration 0002), so
    entries appended one transaction each queue on that lock across every worker, and each pays
    a round trip and a commit of its own. Here, entries that arrive while a batch is being
    written go into the next batch: a lone request is written at once, a busy process commits
    once per batch. `append` returns only once its entry is committed, and raises if the batch
    could not be.

    Each entry is signed as it is queued (`db.seals.entry_mac`: one HMAC-SHA256), under a key
    derived from the audit key, so that sealing and `audit verify` tell the entries the service
    wrote from any inserted with the database's credentials alone.
    """

    def __init__(self, engine: AsyncEngine, key: bytes) -> None:
        """A batch is one statement, in a transaction of its own (asyncpg's autocommit), on a
        connection of `engine`'s pool; `key` is the audit key."""
        self._engine = engine
        self._key = entry_key(key)
        self._waiting: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(
        self, *, client_id: str, entry: dict[str, Any], subjects: Iterable[str]
    ) -> None:
        done = asyncio.get_running_loop().create_future()
        # An entry's parts share its future, and its batch: written together or not at all.
        for one in _entries(self._key, client_id, entry, subjects):
            self._waiting.append(_Pending(one, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        await done

    async def append_within(
        self,
        connection: AsyncConnection,
        *,
        client_id: str,
        entry: dict[str, Any],
        subjects: Iterable[str],
    ) -> None:
        """Append a request's write's entry inside the write's transaction, signed as `append`
        signs: the write commits with its entry or not at all (`resolvers.context.Context.
        transaction`). Not batched: the entry is the transaction's, and holds the chain's lock
        until its commit, which follows at once."""
        await _append_within(connection, self._key, client_id, entry, subjects)

    async def _write_all(self) -> None:
        batch: list[_Pending] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                failure: Exception | None = None
                try:
                    async with await check_out(self._engine) as connection:
                        parameters = _parameters([pending.entry for pending in batch])
                        (written,) = await fetch(connection, _APPEND, parameters)
                    if written.stored != len(batch):
                        raise EntriesNotStored(f"{written.stored} of {len(batch)} entries stored")
                except Exception as error:  # each request fails rather than go out unrecorded
                    failure = error
                for pending in batch:
                    # Its request was cancelled (the entry stands), or another part of its
                    # entry has answered it.
                    if pending.done.done():
                        continue
                    if failure is None:
                        pending.done.set_result(None)
                    else:
                        pending.done.set_exception(failure)
        finally:
            self._writer = None
            for pending in [*batch, *self._waiting]:  # pending only if this task was cancelled
                pending.done.cancel()
            self._waiting = []


async def append_within(
    connection: AsyncConnection,
    key: bytes,
    *,
    client_id: str,
    entry: dict[str, Any],
    subjects: Iterable[str],
) -> None:
    """Append one entry inside the caller's transaction, to commit with its writes or not at
    all: for a command (`sinergi import msmes`), which has no response to fail if its entry
    could not be written after them; a request's write appends through
    `AuditWriter.append_within`. `key`: the audit key, which signs the entry as `AuditWriter`
    signs its."""
    await _append_within(connection, entry_key(key), client_id, entry, subjects)


async def _append_within(
    connection: AsyncConnection,
    signing: bytes,
    client_id: str,
    entry: dict[str, Any],
    subjects: Iterable[str],
) -> None:
    """The chain's lock (migration 0002) is held from here to the commit, so this goes last,
    and the work the transaction left for its commit is done first (`SET CONSTRAINTS ALL
    IMMEDIATE`): the change feed's deferred trigger writes an entry per record an import
    created, seconds for a register, during which every request's audit entry would wait for
    the lock, and fail past its statement timeout. `signing`: the entry key
    (`db.seals.entry_key`)."""
    await connection.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    parts = _entries(signing, client_id, entry, subjects)
    stored = (await connection.execute(_APPEND_SQL, _parameters(parts))).scalar_one()
    if stored != len(parts):
        raise EntriesNotStored(f"{stored} of {len(parts)} entries stored")


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """Entries `first` to `last` (one entry when equal) are not as written, for `reason`."""

    first: int
    last: int
    reason: str

    def __str__(self) -> str:
        if self.first == self.last:
            return f"entry {self.first}: {self.reason}"
        return f"entries {self.first} to {self.last}: {self.reason}"


MAX_BREAKS = 1000
"""Runs of broken entries kept; past it they are counted, not listed. Consecutive entries broken
for one reason are one run, so even a chain recomputed from its first entry on is a single line,
and this caps only a trail tampered with in over a thousand separate places."""


@dataclass(frozen=True, slots=True)
class Verification:
    checked: int
    sealed: int
    """Entries whose seal checked out; those after them were written since the last seal."""
    breaks: tuple[BrokenLink, ...]
    """Every run of entries that is not as written, in order, up to `MAX_BREAKS`."""
    unlisted: int = 0
    """Runs found past `MAX_BREAKS`."""
    unsealed: Unsealed | None = None
    """The first of the entries written since the last seal, and how long it had waited when
    the walk began; None when every entry is sealed."""
    checkpoints: int = 0
    """The checkpoints given that are of this trail, and were checked."""
    by_name: int = 0
    """Of those, the older ones (before migration 0041), which name only this database."""
    elsewhere: int = 0
    """The checkpoints given that name another trail (or, older, another database): set aside."""
    other_trails: int = 0
    """Of those, the ones naming a trail id (another database's too: one naming this database
    under another id is a break)."""

    @property
    def intact(self) -> bool:
        return not self.breaks


class _Breaks:
    """The runs found so far: a break next to the last one, for the same reason, extends it."""

    def __init__(self) -> None:
        self.runs: list[BrokenLink] = []
        self.unlisted = 0

    def add(self, first: int, reason: str, last: int | None = None) -> None:
        last = first if last is None else last
        if self.runs and self.runs[-1].reason == reason and self.runs[-1].last + 1 == first:
            self.runs[-1] = BrokenLink(self.runs[-1].first, last, reason)
        elif len(self.runs) < MAX_BREAKS:
            self.runs.append(BrokenLink(first, last, reason))
        else:
            self.unlisted += 1


_WALK = (
    select(*stored_columns(), recomputed_hash(), AUDIT_SEALS.c.mac)
    .join(AUDIT_SEALS, AUDIT_SEALS.c.seq == AUDIT_LOG.c.seq, isouter=True)
    .order_by(AUDIT_LOG.c.seq)
)
_SEAL_MISSING = "its seal is missing"
SEAL_MISMATCH = "does not match its seal: rewritten, its hashes recomputed"
SEAL_NOT_THE_KEYS = f"{SEAL_FORGED}; the entry itself matches its chain and MAC"
SEAL_UNSETTLED = (
    "does not match its seal: rewritten with its hashes recomputed, or its seal not made with"
    " the audit key (written with the service's credentials); no later seal or checkpoint tells"
    " which"
)
SEAL_FAILURES = frozenset({SEAL_MISMATCH, SEAL_UNSETTLED})
"""What a seal the key does not reproduce may mean when the key may be the wrong one."""
# Seals past the newest entry walked whose entry is not there, read once the walk is done: a seal
# the sealer wrote since is of an entry committed before it. Since migration 0035 the database
# refuses such a seal; one written before, or by the owner, was invisible to the walk.
_SEALS_OF_NO_ENTRY = (
    select(AUDIT_SEALS.c.seq)
    .where(
        AUDIT_SEALS.c.seq > bindparam("after"),
        ~exists().where(AUDIT_LOG.c.seq == AUDIT_SEALS.c.seq),
    )
    .order_by(AUDIT_SEALS.c.seq)
)
_NO_ENTRY = "sealed, but there is no such entry: a seal written ahead of the trail"
# The owner deleted the newest entry with its seal, the service's next entry took its number,
# and `serve` sealed and checkpointed it: the stored entry matches the newer checkpoint only.
_REWRITTEN_SINCE = (
    "two checkpoints that sealed it disagree: the trail was rewritten after it was checkpointed"
)
# Entries whose nonce an earlier entry carries, with the first that does: a genuine entry copied
# whole, its MAC with it. The unique constraint (migration 0051) refuses such a copy, so this
# finds one only where the owner dropped it; one pass over the nonces, the copies alone kept.
_REPEATED_NONCES = text(
    """
SELECT copy.seq, min(copy.seq) OVER (PARTITION BY copy.entry_nonce) AS original
  FROM audit_log copy
  JOIN (SELECT entry_nonce FROM audit_log WHERE entry_nonce IS NOT NULL
         GROUP BY entry_nonce HAVING count(*) > 1) repeated USING (entry_nonce)
"""
)
_HAS_TRAIL_ID = text("SELECT to_regclass('audit_trail') IS NOT NULL")
_NO_TRAIL_ID = text(
    "SELECT NULL AS trail, current_database() AS database, clock_timestamp() AS now"
)


async def which_trail(connection: AsyncConnection) -> TextClause:
    """What a checkpoint of this trail names (its id and the database), and the time: the
    query sealing uses, or, when the owner has dropped `audit_trail` (or migration 0041 has not
    run), no trail id, so that verify reports every checkpoint naming one and this database as
    a break, rather than fail on the query."""
    if (await connection.execute(_HAS_TRAIL_ID)).scalar_one():
        return WHICH_TRAIL_AND_WHEN
    return _NO_TRAIL_ID


def _trail_changed(checkpoint: Checkpoint, trail: str | None) -> str:
    kept = "none: audit_trail is empty or missing" if trail is None else trail
    return (
        f"a checkpoint of {checkpoint.at.isoformat()} names this database under trail "
        f"{checkpoint.trail}, but the trail's id is {kept}: it was changed since"
    )


async def _with_next(rows: AsyncResult[Any]) -> AsyncIterator[tuple[Record, Record | None]]:
    """Each row with the one after it (None for the last): a seal is judged by the next."""
    before: Record | None = None
    async for row in rows:
        if before is not None:
            yield before, row
        before = row
    if before is not None:
        yield before, None


def _seal_failure(
    key: bytes,
    row: Record,
    made: str,
    after: Record | None,
    checkpointed: set[tuple[str, str]],
    written_as: str | None,
) -> str:
    """Why the seal of `row`, an entry that matches its chain, is not `made`, the one the key
    makes of it on the chain before it. The service's role may insert the next seal, one the
    key does not make, and the sealer then chains on `made`: the next seal reproduced from
    `made`, or a checkpoint of it, shows the seal forged. An entry rewritten by the owner, its
    hashes recomputed, leaves its own seal, which no later seal follows from `made`. With
    neither, nothing tells them apart. `checkpointed`: the (hash, seal) pairs the checkpoints
    of this entry sign. `written_as`: why the service did not write the entry as it stands, if
    so: the service's role may insert such an entry with a forged seal of it, which the sealer
    seals past as it does without one; with nothing telling, it was rewritten
    (`SEAL_MISMATCH`), as the seals after it then show."""
    forged = (row.hash, made) in checkpointed or (
        after is not None
        and after.seq == row.seq + 1
        and after.mac is not None
        and same_mac(row_mac(key, made, after), after.mac)
    )
    if forged:
        return (
            SEAL_NOT_THE_KEYS
            if written_as is None
            else f"{SEAL_FORGED}, and the entry {written_as}"
        )
    return SEAL_UNSETTLED if written_as is None else SEAL_MISMATCH


async def verify(
    connection: AsyncConnection, key: bytes, checkpoints: Iterable[Checkpoint] = ()
) -> Verification:
    """Walk the chain in order: each entry against its hash, its predecessor and its seal, the
    seals against the checkpoints of this trail, and name every entry that is not as it was
    written. Every checkpoint of an entry is held against it, not only the last: checkpoints of
    one entry that disagree show it rewritten after the first, and sealed again. A checkpoint is
    of this trail when it names the id the trail keeps (migration 0041), which a dump or copy of
    the database carries under any name; one written before that, naming only a database, when
    it names this one. One naming this database under
    another trail id (or any id, when the database keeps none) is a break at its entry: the id
    was changed, as the owner could, to set aside the checkpoints that name it.

    A rewritten entry fails its hash; one rewritten with its hashes recomputed (by
    `audit_log_hash()`) fails its seal, as does every entry after it; a seal the service's role
    inserted fails too, of an entry that matches its chain and MAC, and the walk chains on the
    seal the key makes of it, as the sealer does (`_seal_failure` tells the two apart where
    anything does); a removed entry leaves a gap, or, renumbered, fails the
    seals after it; removed newest entries fall short of a checkpoint that sealed them; a seal
    past the newest entry, of no entry, was written ahead of the trail (to stop sealing once the
    trail reached it); an entry that cannot be read (`db.seals.Unreadable`), or whose subjects
    are not a list of NIKs, was written around the chain trigger (or before it refused such
    entries); an entry whose MAC is missing (from migration 0051's boundary on) or wrong was not
    written by the service, and one whose nonce an earlier entry carries is a copy of it.

    The walk goes on past a break, taking up the chain again from what is stored, so that a
    break planted early cannot hide a later one: each break is named where it is, not once
    for every entry after it.
    """
    trail, database, now = (await connection.execute(await which_trail(connection))).one()
    signed: dict[int, list[Checkpoint]] = {}  # every one: a later one may seal a rewrite
    contradicting: dict[int, Checkpoint] = {}
    applying = by_name = elsewhere = other_trails = 0
    for checkpoint in checkpoints:
        if checkpoint.applies_to(trail, database):
            signed.setdefault(checkpoint.seq, []).append(checkpoint)
            applying += 1
            by_name += checkpoint.trail is None
        elif checkpoint.contradicts(trail, database):
            contradicting.setdefault(checkpoint.seq, checkpoint)
        else:
            elsewhere += 1
            other_trails += checkpoint.trail is not None
    newest_checkpoint = max(signed, default=0)
    breaks = _Breaks()
    for seq, checkpoint in sorted(contradicting.items()):
        breaks.add(seq, _trail_changed(checkpoint, trail))
    signing, first_signed = entry_key(key), await macs_from(connection)
    copies = {
        copy.seq: f"repeats entry {copy.original}'s nonce: a copy of a genuine entry (replayed)"
        async for copy in await connection.stream(_REPEATED_NONCES)
        if copy.seq != copy.original
    }
    checked = sealed = 0
    unsealed_from: int | None = None  # first entry of the run without seals, if in one
    unsealed_at = now  # and when it was written
    previous_seq, previous_hash, previous_mac = 0, "", ""
    rechained = False  # the entry before was rewritten, its hash recomputed: so is this one
    async for row, after in _with_next(await connection.stream(_WALK)):
        checked += 1
        reason: str | None = None  # the first check this entry fails
        follows = row.seq == previous_seq + 1  # else its link and seal cannot be checked
        if not follows:
            breaks.add(previous_seq + 1, "missing: the sequence has a gap", row.seq - 1)
        elif row.prev_hash != previous_hash:
            reason = "does not link to the entry before it"
        if reason is None and row.hash != row.expected:
            reason = "content does not match its hash"
        unchained = reason is not None  # whatever its seal, not the entry the chain had
        if reason is None and isinstance(row.entry, Unreadable):
            # Chained and sealed like any other, but the chain trigger refuses such an entry:
            # written around it, by whoever could switch it off.
            reason = f"its content cannot be read ({row.entry.reason})"
        if reason is None and not all(isinstance(subject, str) for subject in row.subjects):
            # Likewise refused since migration 0030, and no NIK: the hash does not see a NULL.
            reason = "its subjects are not a list of NIKs (a NULL, or an array of arrays)"
        # Chained and sealed (sealing goes on past it), but not the service's entry: named
        # after the seal, which an entry rewritten, or a key not the trail's, fails first.
        written_as = unsigned(signing, first_signed, row) or copies.get(row.seq)
        anchors = {(anchor.hash, anchor.mac) for anchor in signed.get(row.seq, ())}
        sealed_as = {(row.hash, row.mac)}
        if row.mac is None:
            if unsealed_from is None:
                unsealed_from, unsealed_at = row.seq, row.at
        else:
            if unsealed_from is not None:
                breaks.add(unsealed_from, _SEAL_MISSING, row.seq - 1)
                unsealed_from, follows = None, False
            made = row_mac(key, previous_mac, row) if follows else row.mac
            previous_mac = row.mac
            if made != row.mac and (unchained or rechained):
                reason = reason or SEAL_MISMATCH
            elif made != row.mac:
                failure = _seal_failure(key, row, made, after, anchors, written_as)
                if failure != SEAL_MISMATCH:
                    previous_mac = made  # as the sealer chains on past a seal it did not make
                    sealed_as.add((row.hash, made))
                reason = reason or failure
            elif follows and reason is None:
                sealed += 1
        rechained = follows and reason == SEAL_MISMATCH
        reason = reason or written_as
        if reason is not None:
            breaks.add(row.seq, reason)
        if anchors and row.mac is None:
            breaks.add(unsealed_from or row.seq, _SEAL_MISSING, row.seq)
            unsealed_from = None
        elif len(anchors) > 1:
            breaks.add(row.seq, _REWRITTEN_SINCE)
        elif anchors and not anchors <= sealed_as:
            breaks.add(row.seq, "differs from the checkpoint that sealed it")
        previous_seq, previous_hash = row.seq, row.hash
    if newest_checkpoint > previous_seq:
        breaks.add(
            previous_seq + 1,
            f"missing: a checkpoint of {signed[newest_checkpoint][-1].at.isoformat()} sealed the "
            f"chain through entry {newest_checkpoint}",
            newest_checkpoint,
        )
    async for planted in await connection.stream(_SEALS_OF_NO_ENTRY, {"after": previous_seq}):
        breaks.add(planted.seq, _NO_ENTRY)
    unsealed = None if unsealed_from is None else Unsealed(unsealed_from, now - unsealed_at)
    return Verification(
        checked,
        sealed,
        tuple(sorted(breaks.runs, key=lambda run: run.first)),
        breaks.unlisted,
        unsealed,
        applying,
        by_name,
        elsewhere,
        other_trails,
    )


def _naming(subject: str) -> ColumnElement[bool]:
    """Entries whose subjects include `subject`. The second condition follows from the first; it
    is stated for the planner, which uses the partial index on `subjects` (migration 0017) only
    for a query that says its predicate in as many words."""
    return and_(
        AUDIT_LOG.c.subjects.contains([subject]), AUDIT_LOG.c.subjects != literal_column("'{}'")
    )


class _ShownEntry(TypeDecorator[Any]):
    """An entry as the custodian reads it (`auditEntries`): one that cannot be read
    (`db.seals.Unreadable`) as `{"unreadable": why}`, in its place among the others, rather
    than fail the whole page; `sinergi audit verify` names it as a break."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        entry = None if value is None else read_entry(value)
        return {"unreadable": entry.reason} if isinstance(entry, Unreadable) else entry


# The subjects as the custodian reads them: the NIKs, without a NULL and flattened out of an
# array of arrays, which no NIK is and which the chain trigger refuses since migration 0030. One
# stored before it (or around it) otherwise failed every page it was on, and every read that
# named its subjects; `sinergi audit verify` names such an entry.
_SHOWN_SUBJECTS = literal_column(
    "ARRAY(SELECT subject FROM unnest(audit_log.subjects) AS subject WHERE subject IS NOT NULL)",
    ARRAY(Text),
).label("subjects")
_SHOWN = (
    AUDIT_LOG.c.seq,
    AUDIT_LOG.c.seq.label("position"),
    AUDIT_LOG.c.at,
    AUDIT_LOG.c.client_id,
    cast(AUDIT_LOG.c.entry, _ShownEntry()).label("entry"),
    _SHOWN_SUBJECTS,
    AUDIT_LOG.c.hash,
)


async def entries(
    connection: AsyncConnection,
    *,
    subject: str | None,
    client_id: str | None,
    first: int,
    after: int | None,
) -> list[Record]:
    statement = select(*_SHOWN).order_by(AUDIT_LOG.c.seq.desc()).limit(first + 1)
    if subject is not None:
        statement = statement.where(_naming(subject))
    if client_id is not None:
        statement = statement.where(AUDIT_LOG.c.client_id == client_id)
    if after is not None:
        statement = statement.where(AUDIT_LOG.c.seq < after)
    return list(await connection.execute(statement))


_READER = AUDIT_LOG.alias("reader")
# A read of the trail names the positions of the entries it returned (`positions` in its entry),
# not their subjects; the expression and the predicate as the index on them (migration 0053)
# states them, literals both, so the planner uses it whatever the statement's parameters. One
# lookup per entry naming the person, some 8 µs each: the index takes each read at once, with no
# pending list that every lookup would read through (migration 0054; 98,000 lookups took 28 s).
_POSITIONS = _READER.c.entry.op("->")(literal_column("'positions'"))
_NAMES_POSITIONS = _READER.c.entry.op("?")(literal_column("'positions'"))


def _handed_out(subject: str) -> CompoundSelect[tuple[int]]:
    """The positions of the entries that handed out `subject`'s data: those naming them, and
    the reads of the trail that returned one of those (through its `positions`, one level: a
    read's entry names only the person it asked about, so a read of a read hands out no more)."""
    named = select(AUDIT_LOG.c.seq).where(_naming(subject)).cte("named")
    reads = (
        select(_READER.c.seq)
        .join(named, _POSITIONS.op("@>")(func.jsonb_build_array(named.c.seq)))
        .where(_NAMES_POSITIONS)
    )
    return select(named.c.seq).union(reads)


async def accessors_of(connection: AsyncConnection, subject: str) -> list[Record]:
    """Which clients received this person's data, how often, first and last time: the entries
    naming them, and the reads of the trail that handed one of those out."""
    statement = (
        select(
            AUDIT_LOG.c.client_id,
            func.max(AUDIT_LOG.c.entry["organisation"].astext).label("organisation"),
            func.count().label("times"),
            func.min(AUDIT_LOG.c.at).label("first_at"),
            func.max(AUDIT_LOG.c.at).label("last_at"),
        )
        .where(AUDIT_LOG.c.seq.in_(_handed_out(subject)))
        .group_by(AUDIT_LOG.c.client_id)
        .order_by(AUDIT_LOG.c.client_id)
    )
    return list(await connection.execute(statement))
