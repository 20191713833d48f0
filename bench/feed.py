"""The change feed's bench row: how fast a backlog drains, and how soon a change reaches a
subscriber while the bench's read load runs.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/sinergi_feed_bench \\
        .venv/bin/python -m bench.feed [--backlog 100000] [--changes 200] [--workers 1]

Uses a database of its own (migrated here; never the shared bench database): the backlog is
written into it as new Kalimantan Tengah MSMEs, a third with an owner, in transactions of 2,000
(each owner is a change of its own, so the feed then holds about `--backlog` changes for a
province client). Then, against `sinergi serve`:

- **drain**: a province client with pii:read pulls `msmeChanges(first: 1000)` from no cursor
  until nothing is left, over HTTP, one page after another; changes/s is entries ÷ wall time.
- **push latency**: the same client subscribes over graphql-transport-ws while wrk asks the
  bench's page of 50 (bench.run's `page` request) on 32 connections; a writer commits one
  change every 0.2 s; the latency of each is from its COMMIT returning to its page arriving.

Prints the results as a Markdown table row for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import websockets

from bench.run import (
    PAGE,
    SINERGI_PORT,
    _cpu_seconds_by_pid,
    _libpq,
    _server,
    _sinergi,
    _tree,
    cpu_seconds_spent,
    postgres_serving,
    wrk,
)

BACKLOG = """
INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code, regency_code,
                   employees, annual_turnover, turnover_year)
SELECT '77' || lpad(g::text, 11, '0'), 'Feed Bench ' || g, '10794', 'C', 'micro', '62',
       (SELECT code FROM regions WHERE parent_code = '62' ORDER BY code OFFSET g % 14 LIMIT 1),
       1 + g % 9, 10000000 + g, 2025
  FROM generate_series($1::bigint, $2::bigint) AS g
"""
OWNERS = """
INSERT INTO msme_owners (msme_id, nik, full_name)
SELECT id, '627101' || '0101' || '90' || lpad((id % 10000)::text, 4, '0'), 'Pemilik ' || id
  FROM msmes
 WHERE nib BETWEEN '77' || lpad($1::bigint::text, 11, '0')
                 AND '77' || lpad($2::bigint::text, 11, '0')
   AND id % 3 = 0
"""
PULL = """query Drain($after: String) { msmeChanges(after: $after, first: 1000) {
  entries { id change record } endCursor hasMore } }"""
SUBSCRIBE = """subscription Follow($after: String) { msmeChanges(after: $after) {
  entries { id change record } endCursor } }"""
PORT = SINERGI_PORT + 10
"""Not bench.run's ports (SINERGI_BENCH_PORT and the two after it): that bench may be running
beside this one."""
BASE = f"http://127.0.0.1:{PORT}"


async def _write_backlog(url: str, changes: int) -> int:
    """New MSMEs (and owners for a third) in transactions of 2,000; the feed's entry count.
    Those an earlier run wrote are kept, so the bench runs again on the same database, draining
    the same backlog (and the earlier runs' pushed changes)."""
    connection = await asyncpg.connect(url)
    try:
        written = await connection.fetchval("SELECT count(*) FROM msmes WHERE nib LIKE '77%'")
        first = written + 1
        msmes = changes * 3 // 4  # each third has an owner: 3/4 + 1/4 ≈ the changes asked for
        while first <= msmes:
            last = min(first + 1999, msmes)
            async with connection.transaction():
                await connection.execute(BACKLOG, first, last)
                await connection.execute(OWNERS, first, last)
            first = last + 1
        # Statistics, as bench.generate leaves them and autovacuum would (this machine's server
        # runs without it): with none, the planner reads a page's whole scan range and sorts it.
        await connection.execute("VACUUM ANALYZE change_log, msmes, msme_owners")
        count: int = await connection.fetchval("SELECT count(*) FROM change_log")
        return count
    finally:
        await connection.close()


def _token(client: tuple[str, str]) -> str:
    response = httpx.post(
        f"{BASE}/oauth/token", data={"grant_type": "client_credentials"}, auth=client
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def drain(token: str) -> tuple[int, float]:
    entries, after = 0, None
    started = time.perf_counter()
    with httpx.Client(timeout=120) as client:
        while True:
            answer = client.post(
                f"{BASE}/graphql",
                json={"query": PULL, "variables": {"after": after}},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            page = answer["data"]["msmeChanges"]
            entries += len(page["entries"])
            after = page["endCursor"]
            if not page["hasMore"]:
                return entries, time.perf_counter() - started


async def _head(token: str) -> str:
    async with httpx.AsyncClient(timeout=120) as client:
        after = None
        while True:
            answer = await client.post(
                f"{BASE}/graphql",
                json={"query": PULL, "variables": {"after": after}},
                headers={"Authorization": f"Bearer {token}"},
            )
            page = answer.json()["data"]["msmeChanges"]
            after = page["endCursor"]
            if not page["hasMore"]:
                return str(after)


async def push_latencies(url: str, token: str, changes: int) -> list[float]:
    """Seconds from each change's COMMIT to its arrival at the subscriber."""
    committed: dict[str, float] = {}
    arrived: dict[str, float] = {}
    uri = f"ws://127.0.0.1:{PORT}/graphql"
    protocol = websockets.Subprotocol("graphql-transport-ws")
    async with websockets.connect(uri, subprotocols=[protocol]) as socket:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await socket.send(json.dumps(init))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        payload = {"query": SUBSCRIBE, "variables": {"after": await _head(token)}}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))

        async def write() -> None:
            connection = await asyncpg.connect(url)
            try:
                ids = [
                    str(row["id"])
                    for row in await connection.fetch(
                        "SELECT id FROM msmes WHERE province_code = '62' ORDER BY id LIMIT $1",
                        changes,
                    )
                ]
                for key in ids:
                    await connection.execute(
                        "UPDATE msmes SET employees = employees + 1, version = version + 1"
                        " WHERE id = $1",
                        int(key),
                    )
                    committed[key] = time.perf_counter()
                    await asyncio.sleep(0.2)
            finally:
                await connection.close()

        writer = asyncio.create_task(write())
        while len(arrived) < changes:
            message = json.loads(await asyncio.wait_for(socket.recv(), 30))
            now = time.perf_counter()
            assert message["type"] == "next", message
            for entry in message["payload"]["data"]["msmeChanges"]["entries"]:
                arrived.setdefault(entry["id"], now)
        await writer
    # A page may arrive before the writer's COMMIT has returned to it: no wait at all.
    return [max(0.0, arrived[key] - committed[key]) for key in committed]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    from sinergi.database import resolve_url
    from sinergi.settings import Settings

    url = resolve_url(Settings.from_env())
    _sinergi("migrate", url=url)
    backlog = asyncio.run(_write_backlog(_libpq(url), args.backlog))
    print(f"backlog: {backlog:,} changes", flush=True)
    created = _sinergi(
        "clients",
        "create",
        "--name",
        "bench-feed",
        "--org-kind",
        "province",
        "--jurisdiction",
        "62",
        "--scopes",
        "records:read pii:read",
        "--purpose",
        "benchmark",
        "--json",
        url=url,
    )
    client = (json.loads(created)["client_id"], json.loads(created)["client_secret"])
    sinergi = str(Path(sys.executable).parent / "sinergi")
    command = [sinergi, "serve", "--port", str(PORT), "--workers", str(args.workers)]
    with _server(command, url, PORT) as server:
        token = _token(client)
        processes = [*_tree(server), *postgres_serving(url)]
        before = _cpu_seconds_by_pid(processes)
        drained, seconds = drain(token)
        spent = cpu_seconds_spent(before, _cpu_seconds_by_pid(processes))
        print(f"drain: {drained:,} changes in {seconds:.1f} s, {spent:.1f} CPU s", flush=True)
        load: list[str] = []
        body = json.dumps({"query": PAGE})
        duration = int(args.changes * 0.2) + 15
        reader = threading.Thread(
            target=lambda: load.append(
                wrk(f"{BASE}/graphql", body, token, connections=32, duration=duration)
            )
        )
        reader.start()
        time.sleep(3)
        latencies = asyncio.run(push_latencies(_libpq(url), token, args.changes))
        reader.join()
    requests = next(line for line in load[0].splitlines() if "Requests/sec" in line).split()[-1]
    print(
        "| change feed | "
        f"{drained:,} changes drained in {seconds:.1f} s: **{drained / seconds:,.0f} changes/s**; "
        f"server and PostgreSQL CPU {spent * 1e6 / drained:.0f} µs a change "
        f"({drained / spent:,.0f} changes per CPU second) | "
        f"push p50 {_percentile(latencies, 0.5) * 1000:.0f} ms, "
        f"**p99 {_percentile(latencies, 0.99) * 1000:.0f} ms**, "
        f"max {max(latencies) * 1000:.0f} ms over {len(latencies)} changes "
        f"(mean {statistics.mean(latencies) * 1000:.0f} ms), "
        f"page-of-50 load {requests} requests/s |"
    )


if __name__ == "__main__":
    main()
