"""Per-client request limits that hold across every process serving the API."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import JSONResponse

from db.errors import is_unavailable
from db.queries import rate_limits

RETRY_AFTER_SECONDS = 5


def service_unavailable() -> JSONResponse:
    error = {
        "message": "the database is unavailable; retry shortly",
        "extensions": {"code": "SERVICE_UNAVAILABLE"},
    }
    return JSONResponse(
        {"errors": [error]}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


@dataclass(frozen=True, slots=True)
class Admission:
    refusal: JSONResponse | None
    """None when the request may go on; otherwise the 429 (or, database gone, 503) to send."""
    wrote_recently: bool = False
    """The client wrote within the read-your-writes window: its reads go to the primary."""
    write_noted: bool = False
    """The client's write note is fresh: this request's writes need not renew it."""


class RateLimiter:
    def __init__(
        self, *, per_window: int, window_seconds: int, read_your_writes_seconds: int = 10
    ) -> None:
        self.per_window = per_window
        self.window = rate_limits.Window(window_seconds, read_your_writes_seconds)

    async def admit(self, autocommit_engine: AsyncEngine, hit: rate_limits.Hit) -> Admission:
        """Judge a request by its count, which the token check made on the primary (so the
        limit holds across every process)."""
        if random.random() < 0.001:  # noqa: S311 (spreading clean-up, not security)
            try:
                async with autocommit_engine.connect() as connection:
                    await rate_limits.purge(connection)
            except Exception as failure:
                if not is_unavailable(failure):
                    raise
                return Admission(service_unavailable())
        if hit.hits <= self.per_window:
            return Admission(None, hit.wrote_recently, hit.write_noted)
        retry_after = max(1, math.ceil(hit.seconds_left))
        error = {
            "message": f"rate limit of {self.per_window} requests per "
            f"{self.window.seconds} s exceeded; retry in {retry_after} s",
            "extensions": {
                "code": "RATE_LIMITED",
                "limit": self.per_window,
                "windowSeconds": self.window.seconds,
                "retryAfter": retry_after,
            },
        }
        refusal = JSONResponse(
            {"errors": [error]}, status_code=429, headers={"Retry-After": str(retry_after)}
        )
        return Admission(refusal)
