"""Each process's copy of this server's published signing keys, and of the tokens it has
verified with them.

`sinergi keys rotate` retires the signing key (auth/keys.py). A retired key verifies only tokens
issued before it was retired, and none after a token lifetime has passed since (each with the
leeway, for the servers' clocks): that is as long as a token it signed before can be in date,
so rotating logs nobody out, and whoever holds the key (leaked, or read from its row) can sign
nothing accepted after its retirement, and nothing at all a lifetime later.

Every process must learn of a retirement, or it keeps the key it loaded: `keys.rotate` NOTIFYs
`keys.CHANNEL` as it commits, the process's listener (db/notifications.py) hands that to
`changed`, and `run`, the process's background task, reads the keys again at once. Nothing
counts on the notification alone: `run` reads them again when the listener starts listening (a
notification sent while it did not is lost) and at least every REFRESH_SECONDS (a key deleted or
retired in SQL by hand sends none). A row that does not import is logged and skipped, the others
read as ever (keys.usable): one bad row used to fail the whole read, so every process kept the
keys it had, and a rotation never reached them. Each read forgets the verified tokens of keys no
longer published, and keeps the others no longer than their key accepts them, so no token is
answered from memory after its key stopped verifying it. Requests never wait for these reads;
only a token naming a key the process does not know makes one read them (at most once a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import KeySet
from sqlalchemy.ext.asyncio import AsyncEngine

from auth import keys, tokens
from auth.tokens import LEEWAY_SECONDS, InvalidToken
from db.errors import is_unavailable

logger = logging.getLogger("sinergi.auth")

REFRESH_SECONDS = 30.0
"""The longest a process goes without reading the keys, notified of a change or not."""
RELOAD_INTERVAL_SECONDS = 1.0
"""The shortest, when a token names a key this process does not know."""


@dataclass(frozen=True, slots=True)
class _Verifier:
    keys: KeySet
    """The one key, as joserfc takes it."""
    retired_at: float | None
    """When the key was retired (POSIX time); None while it signs."""

    def accepted_until(self, lifetime: int) -> float:
        return math.inf if self.retired_at is None else self.retired_at + lifetime + LEEWAY_SECONDS

    def check(self, claims: Mapping[str, Any], lifetime: int, now: float) -> None:
        if self.retired_at is None:
            return
        if claims["iat"] > self.retired_at + LEEWAY_SECONDS:
            raise InvalidToken("issued after its signing key was retired")
        if now > self.accepted_until(lifetime):
            raise InvalidToken("its signing key was retired over a token lifetime ago")


class KeyRing:
    def __init__(
        self, reads: AsyncEngine, *, issuer: str, audience: str, lifetime: int, seal_key: bytes
    ) -> None:
        """`reads`: the primary, in autocommit (db.engine.autocommit); `lifetime`: of this
        server's tokens, in seconds; `seal_key`: their seal's (tokens.seal_key), without which
        a token signed with a key the database gives away is no token of this server's."""
        self._reads = reads
        self._seal_key = seal_key
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self._keys: dict[str, _Verifier] = {}
        self._unusable: frozenset[str] = frozenset()
        """The kids of the rows skipped at the last read (keys.usable): each logged once."""
        self._verified = tokens.VerifiedTokens(lifetime)
        self._reloading = asyncio.Lock()
        self._loaded_at = -math.inf
        """When the keys held were read, on the monotonic clock."""
        self._wake = asyncio.Event()
        """Set when the keys may have changed: a notification, or listening starting."""

    def remembered(self, token: str) -> Mapping[str, Any] | None:
        """The claims of `token` if this process verified it and its key still accepts it."""
        return self._verified.get(token)

    async def verify(self, token: str, header: Mapping[str, Any]) -> Mapping[str, Any]:
        """The claims of a token signed with one of this server's keys that accepts it, and
        sealed with the audit key (tokens.check_seal); InvalidToken otherwise."""
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("token has no kid")
        if kid not in self._keys:
            await self.reload(throttled=True)
        verifier = self._keys.get(kid)
        if verifier is None:
            raise InvalidToken(f"unknown kid {tokens.shown(kid)}")
        now = time.time()
        claims = tokens.verify(
            token,
            verifier.keys,
            issuer=self.issuer,
            audience=self.audience,
            max_lifetime=self.lifetime,
            now=now,
        )
        verifier.check(claims, self.lifetime, now)
        tokens.check_seal(claims, self._seal_key)
        self._verified.add(token, claims, kid=kid, until=verifier.accepted_until(self.lifetime))
        return claims

    async def reload(self, *, throttled: bool = False) -> None:
        """Read the published keys. Throttled (a token with a kid this process does not know), at
        most once per RELOAD_INTERVAL_SECONDS, so a flood of forged kids cannot flood the
        database: the caller waits for the next reload rather than be refused a key another
        process published a moment ago (a rotation, or a key made as the workers started)."""
        asked = time.monotonic()
        async with self._reloading:
            if throttled:
                if self._loaded_at >= asked:
                    return  # read afresh since this caller asked
                await asyncio.sleep(self._loaded_at + RELOAD_INTERVAL_SECONDS - time.monotonic())
            await self._read(self._reads)

    async def run(self) -> None:
        """Until cancelled: read the keys again whenever woken (`changed`, `listening`), and at
        least every REFRESH_SECONDS; while the database is away, every second until it answers."""
        background = self._reads.execution_options(background="signing keys")
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), REFRESH_SECONDS)
            self._wake.clear()  # woken again during the read: read again after it
            try:
                async with self._reloading:
                    await self._read(background)
            except Exception as failure:
                if not is_unavailable(failure):
                    logger.exception("could not read the signing keys")
                await asyncio.sleep(RELOAD_INTERVAL_SECONDS)
                self._wake.set()

    def changed(self, _payload: str, /) -> None:
        """A notification on keys.CHANNEL: a key was retired or made."""
        self._wake.set()

    def listening(self, listening: bool, /) -> None:
        """Listening started: a notification may have been missed while it had not."""
        if listening:
            self._wake.set()

    async def _read(self, engine: AsyncEngine) -> None:
        reading = time.monotonic()  # keys published later are not in what this reads
        async with engine.connect() as connection:
            found = await keys.published_keys(connection, self.lifetime)
        for kid in found.unusable.keys() - self._unusable:
            logger.error("signing key %s skipped: %s", kid, found.unusable[kid])
        self._unusable = frozenset(found.unusable)
        self._keys = {
            key.kid: _Verifier(
                KeySet([key.key]),
                None if key.retired_at is None else key.retired_at.timestamp(),
            )
            for key in found.published
        }
        self._loaded_at = reading
        self._verified.retain(
            {kid: verifier.accepted_until(self.lifetime) for kid, verifier in self._keys.items()}
        )
