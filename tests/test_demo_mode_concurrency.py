"""Two `serve --dev` starting at once on one new database both come up: the second crashed with
a unique violation on the demo clients, both having found none and inserted them."""

from __future__ import annotations

import asyncio
import threading

from sinergi.demo_mode import DEMO_CLIENTS, prepare_demo
from tests.support.databases import run


def test_two_demo_preparations_at_once_both_succeed(module_reference_url: str) -> None:
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def prepare() -> None:
        start.wait()
        try:
            asyncio.run(prepare_demo(module_reference_url, load_population=False, wait_seconds=600))
        except BaseException as error:  # reported below, whatever it is
            failures.append(error)

    threads = [threading.Thread(target=prepare) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    rows = run(
        module_reference_url, "SELECT client_id FROM oauth_clients WHERE client_id LIKE 'demo-%'"
    )
    assert sorted(row["client_id"] for row in rows) == sorted(c[0] for c in DEMO_CLIENTS)
