"""`sinergi audit verify`: walk the hash chain and name the first broken link."""

from __future__ import annotations

import asyncio

from db.engine import create_engine
from db.queries import audit


async def _verify(url: str) -> int:
    engine = create_engine(url, statement_timeout_ms=0)  # 0: no timeout for a full walk
    try:
        async with engine.connect() as connection:
            checked, broken = await audit.verify(connection)
    finally:
        await engine.dispose()
    if broken is None:
        print(f"audit chain intact: {checked} entries verified")
        return 0
    print(f"audit chain broken at entry {broken.seq}: {broken.reason}")
    return 1


def verify(url: str) -> int:
    return asyncio.run(_verify(url))
