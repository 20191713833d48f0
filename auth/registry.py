"""Each process's copy of the client registrations (and write notes) it has read, kept current
by PostgreSQL's notifications instead of being read on every request.

Migration 0013 NOTIFYs `sinergi_clients` whenever a registration or a write note changes, and
the process's listener (db/notifications.py) hands each notification to `changed`, which
forgets that client: its next request reads the registry afresh, so a revoked client's next
request is refused in every process. What is read is kept only while the listener listens, and
only if no notification arrived while it was being read (it may predate the change); when the
listener stops or starts, everything held is forgotten, since notifications may have been missed.
Without a listener (the CLI, say) nothing is kept and every lookup reads the registry.

A notification is applied asynchronously, a moment after the change commits; `forgotten` waits
for every listening process to say it has forgotten a client, so that `sinergi clients revoke`
can say when no process answers for it any more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from auth import clients
from auth.principal import Principal
from db.driver import check_out
from db.notifications import Confirmation, confirm
from db.queries import rate_limits

CHANNEL = "sinergi_clients"


@dataclass(frozen=True, slots=True)
class ClientState:
    client: clients.Client | None
    """The registration (None for a client of an external issuer)."""
    written_at: float
    """When the client last noted a write, on the registry's monotonic clock (-inf: never)."""
    principals: dict[tuple[str, str], Principal] = field(default_factory=dict)
    """Principals derived from this registration, by the token's scope and jurisdiction claims
    (auth/service.py): made once, not per request."""


class ClientRegistry:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`engine`: the primary, in autocommit (db.engine.autocommit)."""
        self._engine = engine
        self._capacity = capacity
        self.clock = clock
        self._held: dict[str, ClientState] = {}
        self._listening = False
        self._generation = 0

    async def state(self, client_id: str) -> ClientState:
        held = self._held.get(client_id)
        if held is not None:
            return held
        generation = self._generation
        async with await check_out(self._engine) as connection:
            row = await rate_limits.client(connection, client_id)
        registered = None if row.registered is None else clients.from_row(row.registered)
        state = ClientState(registered, self.clock() - row.seconds_since_write)
        if self._listening and generation == self._generation:
            if len(self._held) >= self._capacity:
                del self._held[next(iter(self._held))]
            self._held[client_id] = state
        return state

    def changed(self, client_id: str) -> None:
        """A notification: forget the client (every client, for an empty payload)."""
        self._generation += 1
        if client_id:
            self._held.pop(client_id, None)
        else:
            self._held.clear()

    def listening(self, listening: bool) -> None:
        """The listener started or stopped: what is held may have missed a notification."""
        self._listening = listening
        self._generation += 1
        self._held.clear()


async def forgotten(url: str, client_id: str, *, timeout_seconds: float) -> Confirmation:
    """After a change to `client_id` has committed: have every listening process forget the
    client (as a notification on CHANNEL does) and say so, waiting at most `timeout_seconds`.
    `url`: any role's, in asyncpg's form (db.notifications.libpq_url)."""
    return await confirm(url, CHANNEL, client_id, timeout_seconds=timeout_seconds)
