"""A module's own demo data: a small population and the demo clients, in a database the module
may write to without disturbing another's."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import create_async_engine

from db import releases
from db.engine import async_url
from sinergi import demo
from sinergi.demo_mode import register_demo_clients


def load_demo(url: str, *, msmes: int, seed: int) -> None:
    """`msmes` demo MSMEs (drawn with `seed`) and the demo clients, loaded as the owner at
    `url`."""

    async def load() -> None:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.begin() as connection:
                await demo.load(connection, msmes=msmes, seed=seed)
            await register_demo_clients(engine)
        finally:
            await engine.dispose()

    asyncio.run(load())
    release_figures(url)


def release_figures(url: str) -> releases.Release:
    """A figure release of the database at `url` made now, as the owner (`sinergi figures
    release`; the service may not have one made within the hour): perturbed figures read what
    it copied until the next."""

    made = asyncio.run(releases.release_now(url))
    assert made is not None, "another release was being made"
    return made


def demo_clients(url: str) -> None:
    """The demo clients alone, registered as the owner at `url`: for a module that brings its own
    records."""

    async def register() -> None:
        engine = create_async_engine(async_url(url))
        try:
            await register_demo_clients(engine)
        finally:
            await engine.dispose()

    asyncio.run(register())
