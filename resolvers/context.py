"""What every resolver receives: the caller, its loaders and the limits it runs under."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import InitVar, dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import HTTPConnection

from auth.principal import Principal
from db.change_signal import ChangeSignal
from db.driver import Pooled, check_out
from db.engine import autocommit
from db.errors import is_unavailable
from db.queries import rate_limits
from db.queries.audit import AuditWriter
from db.queries.regions import RegionDirectory
from db.reads import Reads, Replica
from domain.cellkey import Perturbation
from domain.cursor_seal import CursorSeal
from resolvers.access import AccessNotes, Audited
from resolvers.loaders import Loaders
from resolvers.policy import AccessPolicy

log = logging.getLogger("sinergi.writes")


@dataclass(frozen=True, slots=True)
class Limits:
    max_page_size: int
    default_page_size: int
    suppression_k: int = 5
    perturbation: Perturbation = field(default_factory=Perturbation)


@dataclass(frozen=True, slots=True)
class Live:
    """What a subscription over a WebSocket follows changes with (sinergi/subscriptions.py)."""

    signal: ChangeSignal
    still_authorised: Callable[[], Awaitable[bool]]
    """Whether the connection's token still stands (not revoked, narrowed or expired)."""
    recheck_seconds: float
    """The longest a subscriber sleeps before reading again and checking its token."""


@dataclass
class Context:
    principal: Principal
    engine: AsyncEngine
    limits: Limits
    cursor_seal: CursorSeal
    """Seals the change feeds' cursors: the app's one, under the key every instance derives
    from the audit key alike."""
    audit: AuditWriter
    """Appends the request's audit entry: the app's one, which signs entries with the audit
    key, so a context cannot make one of its own."""
    request: HTTPConnection | None = None
    """The HTTP request, or the WebSocket of a subscription."""
    autocommit_view: InitVar[AsyncEngine | None] = None
    replica: Replica | None = None
    """The read replica, when one is configured."""
    wrote_recently: bool = False
    """The client wrote within the read-your-writes window: it reads nothing that may lag."""
    write_noted: bool = False
    """The client's write note is fresh enough that writes need not renew it."""
    noted_at: float = -math.inf
    """When the client's write note was made, on the monotonic clock (-inf: none known)."""
    window_seconds: float = math.inf
    """The read-your-writes window: a write committing more than this after the note renews it
    (`_renew_note`)."""
    region_directory: InitVar[RegionDirectory | None] = None
    policy: AccessPolicy = field(init=False)
    """Every access question of this request, answered from its token."""
    primary: AsyncEngine = field(init=False)
    reads: Reads = field(init=False)
    regions: RegionDirectory = field(init=False)
    accesses: AccessNotes = field(default_factory=AccessNotes)
    """What the request has handed out, or written, that no audit entry records yet."""
    audited: Audited | None = None
    """The request as its entries name it: set by the GraphQL layer before it runs."""
    connection_params: dict[str, object] | None = None
    """A WebSocket's `connection_init` payload, where its client sends its token."""
    live: Live | None = None
    """Set on a WebSocket once its token is accepted; subscriptions need it."""
    connections: asyncio.Semaphore | None = None
    """The pooled connections the request may hold at once, shared by its operations' contexts
    (sinergi/graphql_app.py): its reads and writes beyond them wait for one of its own."""
    changed: bool = False
    """This operation committed a write (`transaction`, `single_write`): what a mutation whose
    answer is withheld says it applied (sinergi/graphql_app.py), so its client reads it back
    rather than send it again. Told by the write path, not guessed from the answer. (A record
    write that finds the record already as asked commits too: sending it again changes nothing.)"""
    committing: bool = False
    """A write of this operation is committing, or was cut short (cancelled) while it was: it
    may be stored whatever the operation is told. A single mutation cancelled by the shutdown
    grace with its COMMIT in flight could commit yet be answered `applied: false`; counted by
    sinergi/graphql_app.py's `may_have_changed`, it is answered as maybe applied."""
    commit_lost: bool = False
    """A write's COMMIT met an outage (the connection lost as it committed): the server cannot
    tell whether it was stored, so the operation's outage errors say it may have been applied
    (sinergi/graphql_http.py's `settled`), and its client reads it back rather than send it
    again. Kept for the rest of the operation, which its later writes do not undo."""
    storing: bool = False
    """A `single_write`'s block has reached its write (`store`): the statement commits as it
    runs, so an outage from then on may have come after it was stored (`commit_lost`)."""

    def __post_init__(
        self,
        autocommit_view: AsyncEngine | None,
        region_directory: RegionDirectory | None,
    ) -> None:
        """`engine` is for writes that need a transaction (see `transaction`); `primary`
        (autocommit) for writes of one statement; `reads` for the rest. The app passes the one
        autocommit view and region directory its lifespan made; without them, this context
        makes its own."""
        self.policy = AccessPolicy(self.principal)
        self.primary = autocommit_view or autocommit(self.engine)
        self.reads = Reads(
            self.primary, None if self.wrote_recently else self.replica, self.connections
        )
        self.regions = region_directory or RegionDirectory(self.primary)

    def admit(self, principal: Principal) -> None:
        """A WebSocket's context stands for nobody until its token is accepted; from then on it
        stands for `principal`, under the policy that token gives."""
        self.principal = principal
        self.policy = AccessPolicy(principal)

    @cached_property
    def loaders(self) -> Loaders:
        """Made on first use: a request whose reads compile into statements (schema/compiled.py)
        never needs a DataLoader. Made again after each committed write (`_wrote`)."""
        return Loaders(self.reads, self.policy.records, self.regions)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """Every write of several statements: one transaction on the primary. Once committed,
        the operation has `changed` stored data; a writer that finds it changed nothing rolls it
        back (`connection.rollback()`) rather than commit it, and has not.

        What the request has noted by the commit (the write's own notes, which its writer makes
        inside the block, and whatever the request handed out before it) is appended to the
        audit trail within the transaction, last (`_record_within`): a write whose entry cannot
        be appended is rolled back, rather than stand unrecorded while its client is answered
        INTERNAL. Those notes are then recorded, and the request's own entry, once it is done,
        records only what it hands out after (`record`)."""
        await self._note_writer()
        before, committing, sent = copy.deepcopy(self.accesses), False, False
        try:
            async with self._held(), self.engine.begin() as connection:
                yield connection
                committing = connection.in_transaction()
                recorded = committing and await self._record_within(connection)
                self.committing = sent = committing  # the COMMIT is sent as the block ends
        except asyncio.CancelledError:
            raise  # cut short: whether its COMMIT went through is not known (`committing`)
        except BaseException as error:
            self.committing = False
            # The COMMIT itself lost the connection: it may have been stored (`commit_lost`).
            self.commit_lost = self.commit_lost or (sent and is_unavailable(error))
            if committing:  # its entry or its commit failed: the write is undone, its notes too
                self.accesses = before
            raise
        self.committing = False
        if recorded:
            self.accesses = AccessNotes()
        if committing:
            self._wrote()
            await self._renew_note()

    def audit_entry(self, notes: AccessNotes, audited: Audited) -> dict[str, Any]:
        """The audit entry of what `notes` say the request `audited` handed out or wrote, by the
        request's policy: the one entry every request's write, response and subscription
        delivery appends."""
        return self.policy.audit_entry(
            operation=audited.operation,
            document_hash=hashlib.sha256(audited.document.encode()).hexdigest(),
            fields=notes.fields,
            records=notes.records,
            touched=audited.touched(),
            owner_columns=notes.owner_columns,
            owner_finances=notes.owner_finances,
            positions=notes.positions,
        )

    async def record(
        self, notes: AccessNotes | None = None, audited: Audited | None = None
    ) -> None:
        """Append the request's entry, if what it noted is worth recording (AccessNotes), before
        its response goes out; `notes` and `audited`: what one delivery of a subscription
        handed out, rather than the request."""
        notes = notes or self.accesses
        audited = audited or self.audited
        if not notes.worth_recording:
            return
        if audited is None:
            raise RuntimeError("a request is audited once the GraphQL layer has named it")
        await self.audit.append(
            client_id=self.principal.client_id,
            entry=self.audit_entry(notes, audited),
            subjects=notes.subjects,
        )

    async def _record_within(self, connection: AsyncConnection) -> bool:
        """Append the entry of what the request has noted inside the write's transaction,
        before its commit; whether there was one to append. Nothing is appended for a context
        no GraphQL request named (its notes wait for `record`)."""
        notes, audited = self.accesses, self.audited
        if audited is None or not notes.worth_recording:
            return False
        await self.audit.append_within(
            connection,
            client_id=self.principal.client_id,
            entry=self.audit_entry(notes, audited),
            subjects=notes.subjects,
        )
        return True

    @asynccontextmanager
    async def single_write(self) -> AsyncIterator[Pooled]:
        """A write of one statement, perhaps after reads it depends on: on the primary, each
        statement its own transaction, so no BEGIN and COMMIT round trips. Reads under READ
        COMMITTED see no more of a transaction's snapshot than they see outside one. The
        statements run on asyncpg itself (db/driver.py): SQLAlchemy's Connection around them
        cost an eligibility check more CPU than its statements' own Python. The write being the
        last statement, a block that ends without raising has `changed` stored data; one cut
        short (cancelled) may have, and stays `committing`; one that loses its connection
        once its write is under way (`store`) may have too, and is `commit_lost`."""
        await self._note_writer()
        async with self._held(), await check_out(self.primary) as connection:
            self.committing, self.storing = True, False  # its write commits as it runs
            try:
                yield connection
            except asyncio.CancelledError:
                raise  # cut short: whether its write went through is not known
            except BaseException as error:
                self.committing = False
                self.commit_lost = self.commit_lost or (self.storing and is_unavailable(error))
                raise
            finally:
                self.storing = False
        self.committing = False
        self._wrote()
        await self._renew_note()

    def store(self) -> None:
        """Within `single_write`, just before its write: the reads it depends on are done, and
        an outage from here on may have met the write after it was stored."""
        self.storing = True

    def _wrote(self) -> None:
        """A write committed: the operation has `changed` stored data, and the loaders' caches
        are dropped, so that what a later field reads is what is stored. A document of several
        mutations otherwise answered a later one's owner, history or participations as the
        first one's answer had loaded them: an owner it had erased, a history without its
        own version. Mutations run one after the other (GraphQL's rule), so no field is
        reading through the dropped loaders meanwhile."""
        self.changed = True
        self.__dict__.pop("loaders", None)

    def _held(self) -> AbstractAsyncContextManager[Any]:
        return self.connections or nullcontext()

    async def _note_writer(self) -> None:
        """Before every write, the client is noted as a writer, so its reads in this request and
        in the next few seconds see the write: they go to the primary rather than a replica that
        may lag, and figures are computed afresh rather than served from the figure cache. A
        note made moments ago serves (db/queries/rate_limits.py): a busy writer is not noted per
        write."""
        if not self.write_noted:
            await self._note()
            self.write_noted = True
        self.reads.after_write()

    async def _renew_note(self) -> None:
        """After a write committed: the note again, if it is older than the window. Its reads
        keep off what lags for twice the window from the note (sinergi.graphql_app), which was
        made before the write began, or skipped for one moments old: a write that waited on a
        row lock for most of that, or a request of many writes, left its client less than the
        window after its commit, and its next read, from a stale replica, missed the write. An
        extra statement only for such slow writes. The write stands whatever becomes of it: a
        note that fails in any way (the database going away, a lock or statement timeout behind
        another transaction, a fault of ours) is logged, not answered as the write's failure,
        which a client would retry and apply twice."""
        if time.monotonic() - self.noted_at > self.window_seconds:
            try:
                await self._note()
            except Exception as error:
                if is_unavailable(error):
                    log.warning("a committed write's client could not be noted again: %s", error)
                else:
                    log.error("a committed write's client could not be noted again", exc_info=error)

    async def _note(self) -> None:
        self.noted_at = time.monotonic()
        async with self._held(), self.primary.connect() as connection:
            await rate_limits.note_write(connection, self.principal.client_id)
