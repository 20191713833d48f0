"""Run every benchmark scenario against Sinergi and the floor, and write bench/RESULTS.md.

    .venv/bin/python -m bench.run [--msmes 1000000] [--duration 20] [--workers 2]

Needs `wrk` (Debian: apt-get install wrk). Uses DATABASE_URL, or an embedded server under
SINERGI_HOME (default ~/.local/share/sinergi-bench, kept apart from the demo database).
The population is generated only when the database does not already hold it.
A scenario whose feature is not in this build (no `checkEligibility` in the schema, no
`sinergi import`) is reported as pending rather than measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).parent
NOTES = "<!-- notes: everything below this line is kept when bench.run rewrites the file -->"
SINERGI_PORT, FLOOR_PORT = 8100, 8101
REQUEST_SCRIPT = HERE / "scenarios" / "request.lua"
PAGE = """query Page { msmes(first: 50, filter: {region: "62"}) {
  nodes { nib name regency { name province { name } } cooperative { name } } } }"""
AGGREGATE = "{ msmeFigures(groupBy: [PROVINCE, SCALE]) { key { value } count turnoverSum } }"
ELIGIBILITY = """mutation Check($nib: String!) { checkEligibility(request: {nib: $nib,
  product: "JAMKRIDA_KTG_PRODUKTIF", loanAmount: "50000000", tenorMonths: 24,
  attestation: {maxCollectibility: 1, hasOtherProductiveCredit: false,
  feasibilityApproved: true, onNationalBlacklist: false, hasNpwp: true}}) { verdict } }"""
VERSIONS = ("strawberry-graphql", "starlette", "uvicorn", "uvloop", "sqlalchemy", "asyncpg")


@dataclass
class Measurement:
    scenario: str
    target: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mb: float
    connections: int = 0
    note: str = ""


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "SINERGI_RATE_LIMIT": str(10**9),
        "SINERGI_ENV": "production",
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


def _psql(url: str, query: str) -> str:
    """One value from the database, as text."""
    import asyncio

    import asyncpg

    async def fetch() -> str:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
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
        response = httpx.get(url, timeout=30)
    else:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    errors = response.json().get("errors")
    return f"errors: {json.dumps(errors)[:200]}" if errors else ""


@contextmanager
def _server(command: list[str], url: str, port: int) -> Iterator[psutil.Process]:
    process = subprocess.Popen(command, env=_env(url), stdout=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(30)


def _peak_rss(process: psutil.Process, stop: threading.Event, peak: list[float]) -> None:
    """The largest resident set of any one serving process (each worker is its own process)."""
    while not stop.is_set():
        try:
            workers = process.children(recursive=True) or [process]
            peak[0] = max(peak[0], *(w.memory_info().rss / 2**20 for w in workers))
        except psutil.Error:
            pass
        time.sleep(0.2)


def _milliseconds(output: str, percentile: int) -> float | None:
    """A latency percentile from wrk's --latency table; None when wrk has none to give (every
    request timed out: wrk then prints "-nan")."""
    found = re.search(rf"\b{percentile}%\s+([\d.]+)(us|ms|s|m)\b", output)
    if found is None:
        return None
    value, unit = found.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def _wrk(
    scenario: str,
    target: str,
    url: str,
    process: psutil.Process,
    connections: int,
    duration: int,
    body: str | None = None,
    token: str = "",
) -> Measurement:
    refused = _preflight(url, body, token)
    if refused:
        return Measurement(scenario, target, 0, 0, 0, 0, 0, connections, f"not measured: {refused}")
    stop, peak = threading.Event(), [0.0]
    sampler = threading.Thread(target=_peak_rss, args=(process, stop, peak))
    sampler.start()
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if body is not None:
        command += ["-s", str(REQUEST_SCRIPT)]
    output = subprocess.run(
        [*command, url],
        env={**os.environ, "BODY": body or "", "TOKEN": token},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stop.set()
    sampler.join()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    p50, p99 = _milliseconds(output, 50), _milliseconds(output, 99)
    if p50 is None or p99 is None:
        print(output, file=sys.stderr)
        note = "not measured: wrk reported no latencies (its output is on stderr)"
        return Measurement(scenario, target, 0, 0, 0, 0, peak[0], connections, note)
    return Measurement(
        scenario,
        target,
        float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        p50,
        p99,
        int(errors.group(1)) if errors else 0,
        peak[0],
        connections,
    )


def _import_rate(url: str, rows: int) -> Measurement:
    """Scenario (d): a CSV of `rows` new MSMEs through `sinergi import msmes`."""
    scenario = "(d) bulk import"
    if not _has_command(url, "import", "msmes"):
        return Measurement(scenario, "sinergi", 0, 0, 0, 0, 0, note="pending: no `sinergi import`")
    _psql(url, "DELETE FROM msmes WHERE nib LIKE '7%'")
    # The rows an earlier run imported are gone from the index too, as a new register's NIBs
    # would be, and the planner knows the table as it is.
    _psql(url, "VACUUM (ANALYZE) msmes")
    path = Path(tempfile.gettempdir()) / "sinergi-bench-import.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(
            "nib,name,kbli,region,district,established,capital,turnover,turnover_year,employees\n"
        )
        for index in range(rows):
            handle.write(
                f"{7_000_000_000_000 + index},Usaha Impor {index},10794,62.71,,2020-01-01,"
                f"{100_000_000 + index},{200_000_000 + index},2025,3\n"
            )
    stop, busy = threading.Event(), _cpu_seconds_by_pid(_postgres())
    sampler = threading.Thread(target=_sample_postgres, args=(stop, busy))
    sampler.start()
    before = dict(busy)
    started = time.perf_counter()
    try:
        _sinergi("import", "msmes", str(path), "--jurisdiction", "62", url=url)
    except subprocess.CalledProcessError as failure:
        errors = [line for line in failure.stderr.splitlines() if "Error:" in line]
        note = f"failed: {(errors or ['see stderr'])[-1][-200:]}"
        return Measurement(scenario, "sinergi", 0, 0, 0, 0, 0, note=note)
    finally:
        stop.set()
        sampler.join()
    elapsed = time.perf_counter() - started
    backend = max(seconds - before.get(pid, 0.0) for pid, seconds in busy.items())
    note = (
        f"{rows:,} rows in {elapsed:.1f} s (rows/s in the requests/s column); the import's "
        f"PostgreSQL backend alone was busy {backend:.1f} s, a ceiling of "
        f"{rows / backend:,.0f} rows/s"
    )
    return Measurement(scenario, "sinergi", rows / elapsed, 0, 0, 0, 0, note=note)


def _postgres() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]


def _cpu_seconds_by_pid(processes: list[psutil.Process]) -> dict[int, float]:
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:  # a backend that ended since it was listed
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def _sample_postgres(stop: threading.Event, seconds: dict[int, float]) -> None:
    """Each PostgreSQL process's CPU seconds as last seen before `stop`: a backend's total is
    gone once it exits, so it is read while it runs."""
    while not stop.is_set():
        seconds.update(_cpu_seconds_by_pid(_postgres()))
        time.sleep(0.1)


def _verdicts(results: list[Measurement]) -> list[str]:
    """Each target of issue 8 against this run: met, missed, or not measured."""
    by = {
        (m.scenario, m.target): m
        for m in results
        if not m.note.startswith(("not measured", "pending", "failed"))
    }
    page, floor = by.get(("(a) page of 50", "sinergi")), by.get(("(a) page of 50", "floor"))
    eligibility = by.get(("(b) eligibility", "sinergi"))
    eligibility_floor = by.get(("(b) eligibility", "floor"))
    aggregate = by.get(("(c) national aggregate", "sinergi"))
    imported = by.get(("(d) bulk import", "sinergi"))
    rss = max((m.peak_rss_mb for m in results if m.target == "sinergi"), default=0.0)
    checks = [
        (
            "(a) page ≥ 0.7 × floor",
            None if not (page and floor) else page.requests_per_second / floor.requests_per_second,
            lambda value: value >= 0.7,
            "{:.2f} × floor",
        ),
        (
            "(b) eligibility p99 ≤ 15 ms at 32 connections",
            eligibility and eligibility.p99_ms,
            lambda value: value <= 15,
            "p99 {:.1f} ms"
            + (
                ""
                if eligibility_floor is None
                else f" (the floor's: {eligibility_floor.p99_ms:.1f} ms)"
            ),
        ),
        (
            "(c) national aggregate p50 ≤ 10 ms",
            aggregate and aggregate.p50_ms,
            lambda value: value <= 10,
            "p50 {:.2f} ms",
        ),
        (
            "(d) import ≥ 50,000 rows/s",
            imported and imported.requests_per_second,
            lambda value: value >= 50_000,
            "{:,.0f} rows/s",
        ),
        ("server RSS < 250 MB", rss or None, lambda value: value < 250, "peak {:.0f} MB"),
    ]
    lines = ["| target | this run | verdict |", "| --- | --- | --- |"]
    for name, value, holds, shown in checks:
        if value is None:
            lines.append(f"| {name} | — | not measured |")
        else:
            lines.append(
                f"| {name} | {shown.format(value)} | {'met' if holds(value) else 'MISSED'} |"
            )
    return lines


def _markdown(results: list[Measurement], command: str, url: str, msmes: int) -> str:
    floor = {m.scenario: m.requests_per_second for m in results if m.target == "floor"}
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        models = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in VERSIONS)
    cooperatives = _psql(url, "SELECT count(*) FROM cooperatives")
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}` (run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {models[0] if models else cpu}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; {platform.platform()}",
        "",
        f"Software: Python {platform.python_version()}; "
        f"{_psql(url, 'SHOW server_version')} PostgreSQL; {versions}; "
        f"{subprocess.run(['wrk', '-v'], capture_output=True, text=True).stdout.split()[1]} wrk",
        "",
        f"Population: {msmes:,} MSMEs, {cooperatives} "
        "cooperatives. The machine is shared (other work ran on the same two cores), so "
        "absolute numbers are noisy: compare only ratios measured in the same run.",
        "",
        "| scenario | target | conns | requests/s | p50 ms | p99 ms | non-2xx | peak RSS MB "
        "| ratio to floor | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in results:
        ratio = m.requests_per_second / floor[m.scenario] if floor.get(m.scenario) else None
        lines.append(
            f"| {m.scenario} | {m.target} | {m.connections or ''} | {m.requests_per_second:,.0f} "
            f"| {m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.errors} | {m.peak_rss_mb:.0f} | "
            f"{'' if ratio is None or m.target == 'floor' else f'{ratio:.2f}'} | {m.note} |"
        )
    return "\n".join([*lines, "", "## Targets", "", *_verdicts(results)]) + "\n"


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


def _migrated(url: str) -> bool:
    return _psql(url, "SELECT to_regclass('msmes') IS NOT NULL") == "True"


def _eligible_nib(url: str) -> str:
    """A bench MSME in Kalimantan Tengah, the Jamkrida client's jurisdiction."""
    return _psql(
        url,
        "SELECT nib FROM msmes WHERE province_code = '62' AND nib LIKE '8%' ORDER BY id LIMIT 1",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--msmes", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--import-rows", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("SINERGI_HOME", str(Path.home() / ".local/share/sinergi-bench"))

    from sinergi.database import resolve_url
    from sinergi.settings import Settings

    url = resolve_url(Settings.from_env())
    _generate(url, args.msmes)
    province = _client(url, "bench-province", "province", "62")
    ministry = _client(url, "bench-ministry", "ministry", "ID")
    jamkrida = _client(url, "bench-jamkrida", "bumd", "62")
    sinergi, floor = sinergi_command(args.workers), floor_command(args.workers)
    results: list[Measurement] = []
    page, aggregate = (json.dumps({"query": q}) for q in (PAGE, AGGREGATE))
    eligibility = json.dumps({"query": ELIGIBILITY, "variables": {"nib": _eligible_nib(url)}})
    with _server(floor, url, FLOOR_PORT) as server:
        base = f"http://127.0.0.1:{FLOOR_PORT}"
        results.append(
            _wrk(
                "(a) page of 50",
                "floor",
                f"{base}/page?province=62",
                server,
                32,
                args.duration,
            )
        )
        results.append(
            _wrk("(c) national aggregate", "floor", f"{base}/aggregate", server, 8, args.duration)
        )
        results.append(
            _wrk(
                "(b) eligibility",
                "floor",
                f"{base}/eligibility",
                server,
                32,
                args.duration,
                eligibility,
            )
        )
    with _server(sinergi, url, SINERGI_PORT) as server:
        tokens = {
            name: _token(client)
            for name, client in (
                ("province", province),
                ("ministry", ministry),
                ("jamkrida", jamkrida),
            )
        }
        graphql = f"http://127.0.0.1:{SINERGI_PORT}/graphql"
        for scenario, body, token, connections in (
            ("(a) page of 50", page, tokens["province"], 32),
            ("(c) national aggregate", aggregate, tokens["ministry"], 8),
            ("(b) eligibility", eligibility, tokens["jamkrida"], 32),
        ):
            results.append(
                _wrk(scenario, "sinergi", graphql, server, connections, args.duration, body, token)
            )
    results.append(_import_rate(url, args.import_rows))
    command = ".venv/bin/python -m bench.run " + " ".join(sys.argv[1:])
    report = _markdown(results, command, url, args.msmes)
    path = HERE / "RESULTS.md"
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    notes = previous[previous.index(NOTES) :] if NOTES in previous else NOTES + "\n"
    path.write_text(f"{report}\n{notes}", encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
