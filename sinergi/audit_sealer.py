"""Seal the audit trail in the background and publish signed checkpoints of its head.

Each `serve` process runs one: every `SINERGI_AUDIT_SEAL_SECONDS` it seals what was written
since the last seal (db/queries/audit_seals.py; one process at a time, the others find the lock
taken, and check that whoever holds it is sealing) and appends a checkpoint to the checkpoint
file (and sends it to syslog, when `SINERGI_AUDIT_SYSLOG` names where); at start and at shutdown
it publishes the head even when nothing is new. Requests never wait for it, nor does sealing
wait for syslog. Its own one-connection engine keeps it out of the request pool; while the
database is away it fails, says so, and tries again. A round that fails while the database
still answers (a bug, something in the trail sealing cannot take, or the sealer's connection
ended by someone with the service's credentials, which looks like an outage) is an error,
counted, and once the oldest unsealed entry has waited past the bound, a stall, as when
another holds the lock. Each round checks that the head it saw sealed the round before is still
there as it was: the owner can delete the newest entry with its seal, and the service's next
entry takes its number; that is logged and counted as tampering, once, and sealing goes on.
So is a seal the key did not make, of an entry as the service wrote it: whoever holds the
service's credentials can insert the next seal, and sealing chains on the one the key makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.errors import is_unavailable, loggable
from db.queries import audit_key_fingerprint, audit_seals
from db.seals import Checkpoint
from sinergi import checkpoint_file, checkpoint_syslog, metrics
from sinergi.checkpoint_syslog import SyslogAddress
from sinergi.settings import UNSEALED_INTERVALS

log = logging.getLogger("sinergi.audit")

_LOCK_HELD = (
    "while another connection holds the sealing lock without sealing: a stuck Sinergi process,"
    " or one holding the lock to stop sealing (find it in pg_locks, locktype 'advisory')"
)
_FAILING = "while sealing fails (the error logged before this)"


class AuditSealer:
    def __init__(
        self,
        engine: AsyncEngine,
        key: bytes,
        checkpoints: Path,
        interval_seconds: float,
        syslog: SyslogAddress | None = None,
        unsealed_intervals: int = UNSEALED_INTERVALS,
    ) -> None:
        """`unsealed_intervals`: how many intervals an entry may wait to be sealed before a
        round that finds the sealing lock taken says sealing has stalled."""
        self._engine = engine
        self._key = key
        self._checkpoints = checkpoints
        self._interval = interval_seconds
        self._unsealed_seconds = interval_seconds * unsealed_intervals
        self._round_done_at = time.monotonic()
        """When this process last finished a round without an error (another process sealing
        counts: `_check_sealing_goes_on` watches that one)."""
        self._syslog = syslog
        self._syslog_failing = False
        self._unsent: str | None = None
        self._sending: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._seen: Checkpoint | None = None
        """The head this process last saw sealed, its seal as stored, which a round checks is
        still there."""
        self.wrong_key = False
        """A round stopped at a seal the key does not reproduce, and the key is not the
        trail's (`_another_key`): the instance is not ready (sinergi.app `readyz`). Otherwise
        the seal that stopped sealing was forged (the service's role may write one, the first
        included), which `audit verify` names, and which would otherwise take every instance out
        of service at once."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """The last word: everything committed so far is sealed and checkpointed, and the
        checkpoint sent to syslog (or given up on, after checkpoint_syslog.TIMEOUT_SECONDS)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.publish(always=True)
        await self.sent()

    async def sent(self) -> None:
        """Returns once the checkpoints published so far have been sent to syslog, or failed
        to be."""
        if self._sending is not None:
            await asyncio.shield(self._sending)

    async def _run(self) -> None:
        await self.publish(always=True)
        while True:
            await asyncio.sleep(self._interval)
            await self.publish()

    async def publish(self, *, always: bool = False) -> None:
        """Seal what is new; checkpoint the head if anything was sealed, or `always`."""
        count = 0
        refused = stopped = False
        try:
            while True:
                async with self._engine.begin() as connection:
                    sealed = await audit_seals.seal(connection, self._key, seen=self._seen)
                    if sealed is not None and sealed.refused_at is not None and not self.wrong_key:
                        self.wrong_key = await _another_key(connection, self._key)
                    waiting = (
                        await audit_seals.oldest_unsealed(connection) if sealed is None else None
                    )
                if sealed is None:
                    self._round_done_at = time.monotonic()
                    self._check_sealing_goes_on(waiting)
                    return  # another process is sealing, and will publish
                if sealed.rewound is not None:
                    log.error(
                        "audit entry %d, which this process saw sealed, was rewritten or removed"
                        " since: sealing goes on; run `sinergi audit verify`",
                        sealed.rewound,
                    )
                self._seen = sealed.seen
                count += sealed.count
                refused = refused or sealed.refused
                stopped = stopped or sealed.refused_at is not None
                for seq in sealed.forged:
                    log.error(
                        "audit entry %d's seal was not made with the audit key (written with the"
                        " service's credentials); the entry itself matches its chain and MAC:"
                        " sealed on from the seal the key makes of it; run `sinergi audit verify`",
                        seq,
                    )
                for seq, reason in sealed.tampered:
                    log.error(
                        "audit entry %d %s: sealed past it; run `sinergi audit verify`",
                        seq,
                        reason,
                    )
                if sealed.refused_at is not None:
                    log.error(
                        "audit entry %d %s: sealing stopped; run `sinergi audit verify`",
                        sealed.refused_at,
                        sealed.reason,
                    )
                if sealed.count < audit_seals.BATCH:
                    break
        except Exception as error:
            await self._failed(error)
            return
        self._round_done_at = time.monotonic()
        metrics.observe_sealing(
            None if sealed.head is None else sealed.head.seq, refused=refused, stopped=stopped
        )
        if sealed.head is not None and (count or always):
            line = sealed.head.signed_line(self._key)
            try:  # off the event loop: an fsync waits for the disk, which PostgreSQL keeps busy
                await asyncio.to_thread(checkpoint_file.append, self._checkpoints, line)
            except OSError as error:  # a full disk, a file made read-only: sealing goes on
                metrics.AUDIT_CHECKPOINT_FAILURES.inc()
                log.error(
                    "could not append an audit checkpoint to %s: %s", self._checkpoints, error
                )
            if self._syslog is not None:
                self._forward(self._syslog, line)

    async def _failed(self, error: Exception) -> None:
        """A round failed. Only the database not answering is an outage to wait out (a warning;
        the entries wait for the next round), and whether it answers is asked afresh, on a new
        connection: the round's own error cannot tell. An error that reads as the database being
        away (a connection "terminated by administrator command") is also what anyone with the
        service's credentials gets by ending the sealer's connection, every round, with
        `pg_terminate_backend` (the one holding the advisory sealing lock is easy to find); and a
        bug, or something in the trail that sealing cannot take (a MAC beyond ASCII, planted with
        the service's credentials, once was), fails every round from now on. With the database
        answering, the round is an error, counted in `sinergi_audit_seal_failures_total`, and
        checked for a stall like a lock held without sealing, so it shows however it came."""
        checked: Exception | None = None
        waiting: audit_seals.Unsealed | None = None
        try:  # a connection the round's error broke was discarded: this one is new
            async with self._engine.begin() as connection:
                waiting = await audit_seals.oldest_unsealed(connection)
        except Exception as again:
            if is_unavailable(again):  # the database is away: the entries wait for the next round
                told = loggable(error)
                log.warning("could not seal the audit trail: %s", told or type(error).__name__)
                self._check_rounds_go_on()
                return
            checked = again
        metrics.AUDIT_SEAL_FAILURES.inc()
        told = loggable(error)  # a database error's values (an entry's NIKs) stay out of the log
        log.error(
            "sealing the audit trail failed: %s; run `sinergi audit verify`",
            told or f"{type(error).__name__}: {error}",
            exc_info=told is None,
        )
        if checked is not None:
            told = loggable(checked)
            log.error(
                "could not check how long audit entries have waited: %s",
                told or f"{type(checked).__name__}: {checked}",
            )
            self._check_rounds_go_on()
            return
        self._check_sealing_goes_on(waiting, because=_FAILING)

    def _check_rounds_go_on(self) -> None:
        """The check's own connection can be ended too, by whoever holds the service's
        credentials, so that every failed round reads as the database being away. Whatever the
        rounds' errors say, none finishing for longer than an entry may wait is a stall: logged
        and counted (a long outage as well, which leaves entries unsealed just the same)."""
        failing = time.monotonic() - self._round_done_at
        if failing <= self._unsealed_seconds:
            return
        metrics.AUDIT_SEAL_STALLS.inc()
        log.error(
            "no sealing round has finished for %.0f s (bound: %.0f s); unsealed entries can be"
            " removed unnoticed; run `sinergi audit verify`",
            failing,
            self._unsealed_seconds,
        )

    def _check_sealing_goes_on(
        self, waiting: audit_seals.Unsealed | None, because: str = _LOCK_HELD
    ) -> None:
        """Whoever holds the sealing lock is trusted to seal, and publish; but any connection
        may take that lock, the service's role too, and hold it without sealing: then no entry
        was sealed, nothing said so, and the entries written meanwhile could be removed unnoticed.
        An entry that has waited longer than sealing ever takes shows it: logged and counted on
        every round that finds it so. Likewise while this process's rounds fail (`because`)."""
        if waiting is None or waiting.age.total_seconds() <= self._unsealed_seconds:
            return
        metrics.AUDIT_SEAL_STALLS.inc()
        log.error(
            "audit entry %d has waited %.0f s to be sealed (bound: %.0f s) %s; "
            "unsealed entries can be removed unnoticed; run `sinergi audit verify`",
            waiting.seq,
            waiting.age.total_seconds(),
            self._unsealed_seconds,
            because,
        )

    def _forward(self, syslog: SyslogAddress, line: str) -> None:
        """Send the checkpoint beside sealing, never in its way: a collector that answers
        slowly, or not at all (a host on the path dropping the packets), would otherwise stretch
        the time between seals, the window in which unsealed entries can be removed unnoticed.
        While one is being sent, only the newest checkpoint waits: each covers the whole chain
        up to its entry, so it supersedes those before it (the file keeps every one)."""
        self._unsent = line
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_unsent(syslog))

    async def _send_unsent(self, syslog: SyslogAddress) -> None:
        while self._unsent is not None:
            line, self._unsent = self._unsent, None
            await self._send(syslog, line)

    async def _send(self, syslog: SyslogAddress, line: str) -> None:
        """Send the checkpoint to syslog; say so when sending starts failing and when it works
        again, not every round in between: the file holds every checkpoint meanwhile."""
        try:
            await asyncio.to_thread(checkpoint_syslog.send, syslog, line)
        except OSError as error:
            metrics.AUDIT_SYSLOG_FAILURES.inc()
            if not self._syslog_failing:
                log.warning("could not send audit checkpoints to syslog: %s", error)
            self._syslog_failing = True
            return
        if self._syslog_failing:
            log.info("audit checkpoints reach syslog again")
        self._syslog_failing = False


async def _another_key(connection: AsyncConnection, key: bytes) -> bool:
    """Whether `key` is not the trail's: by the recorded fingerprint, which the service's role
    cannot change, else (none recorded yet) by the trail's first seal."""
    recorded_as_key = await audit_key_fingerprint.names(connection, key)
    if recorded_as_key is not None:
        return not recorded_as_key
    return (await audit_seals.first_seal(connection)).made_with(key) is False
