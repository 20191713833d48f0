"""Run every benchmark scenario against Sinergi and the floor, and write bench/RESULTS.md.

    .venv/bin/python -m bench.run [--msmes 1000000] [--duration 20] [--workers 2]

Needs `wrk` (Debian: apt-get install wrk). Uses DATABASE_URL, or an embedded server under
SINERGI_HOME (default ~/.local/share/sinergi-bench, kept apart from the demo database).
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
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).parent
SINERGI_PORT, FLOOR_PORT = 8100, 8101
PAGE = """query Page { msmes(first: 50, filter: {region: "62"}) {
  nodes { nib name regency { name province { name } } cooperative { name } } } }"""
AGGREGATE = "{ msmeFigures(groupBy: [PROVINCE, SCALE]) { key { value } count turnoverSum } }"
ELIGIBILITY = """mutation { checkEligibility(input: {nib: "8000000000062",
  product: "JAMKRIDA_KTG_PRODUKTIF",
  loanAmount: "50000000", tenorMonths: 24, attestation: {maxCollectibility: 1,
  hasOtherProductiveCredit: false, feasibilityApproved: true, onNationalBlacklist: false,
  hasNpwp: true}}) { decision } }"""


@dataclass
class Measurement:
    scenario: str
    target: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mb: float


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
    while not stop.is_set():
        try:
            workers = process.children(recursive=True) or [process]
            peak[0] = max(peak[0], *(w.memory_info().rss / 2**20 for w in workers))
        except psutil.Error:
            pass
        time.sleep(0.2)


def _milliseconds(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


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
    stop, peak = threading.Event(), [0.0]
    sampler = threading.Thread(target=_peak_rss, args=(process, stop, peak))
    sampler.start()
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if body is not None:
        command += ["-s", str(HERE / "scenarios" / "post.lua")]
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
    return Measurement(
        scenario,
        target,
        float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        _milliseconds(re.search(r"50%\s+(\S+)", output).group(1)),  # type: ignore[union-attr]
        _milliseconds(re.search(r"99%\s+(\S+)", output).group(1)),  # type: ignore[union-attr]
        int(errors.group(1)) if errors else 0,
        peak[0],
    )


def _import_rate(url: str, rows: int) -> Measurement:
    """Scenario (d): a CSV of `rows` new MSMEs through `sinergi import msmes`."""
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
    started = time.perf_counter()
    _sinergi("import", "msmes", str(path), "--jurisdiction", "62", url=url)
    elapsed = time.perf_counter() - started
    return Measurement("(d) bulk import", "sinergi", rows / elapsed, elapsed * 1000, 0, 0, 0)


def _markdown(results: list[Measurement], command: str) -> str:
    floor = {m.scenario: m.requests_per_second for m in results if m.target == "floor"}
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; Python {platform.python_version()}; "
        f"{platform.platform()}",
        "",
        "| scenario | target | requests/s | p50 ms | p99 ms | errors | peak RSS MB "
        "| ratio to floor |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in results:
        ratio = m.requests_per_second / floor[m.scenario] if m.scenario in floor else None
        lines.append(
            f"| {m.scenario} | {m.target} | {m.requests_per_second:,.0f} | {m.p50_ms:.2f} | "
            f"{m.p99_ms:.2f} | {m.errors} | {m.peak_rss_mb:.0f} | "
            f"{'' if ratio is None else f'{ratio:.2f}'} |"
        )
    return "\n".join(lines) + "\n"


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
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.generate",
            "--msmes",
            str(args.msmes),
            "--cooperatives",
            str(max(args.msmes * 13 // 100, 100)),
        ],
        env=_env(url),
        check=True,
    )
    province = _client(url, "bench-province", "province", "62")
    ministry = _client(url, "bench-ministry", "ministry", "ID")
    jamkrida = _client(url, "bench-jamkrida", "bumd", "62")
    sinergi = [
        str(Path(sys.executable).parent / "sinergi"),
        "serve",
        "--port",
        str(SINERGI_PORT),
        "--workers",
        str(args.workers),
    ]
    floor = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.floor:app",
        "--port",
        str(FLOOR_PORT),
        "--workers",
        str(args.workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    results: list[Measurement] = []
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
        page, aggregate, eligibility = (
            json.dumps({"query": q}) for q in (PAGE, AGGREGATE, ELIGIBILITY)
        )
        results.append(
            _wrk(
                "(a) page of 50",
                "sinergi",
                graphql,
                server,
                32,
                args.duration,
                page,
                tokens["province"],
            )
        )
        results.append(
            _wrk(
                "(b) eligibility",
                "sinergi",
                graphql,
                server,
                32,
                args.duration,
                eligibility,
                tokens["jamkrida"],
            )
        )
        results.append(
            _wrk(
                "(c) national aggregate",
                "sinergi",
                graphql,
                server,
                8,
                args.duration,
                aggregate,
                tokens["ministry"],
            )
        )
    with _server(floor, url, FLOOR_PORT) as server:
        results.append(
            _wrk(
                "(a) page of 50",
                "floor",
                f"http://127.0.0.1:{FLOOR_PORT}/page?province=62&first=50",
                server,
                32,
                args.duration,
            )
        )
    results.append(_import_rate(url, args.import_rows))
    command = "python -m bench.run " + " ".join(sys.argv[1:])
    (HERE / "RESULTS.md").write_text(_markdown(results, command), encoding="utf-8")
    print(_markdown(results, command))


if __name__ == "__main__":
    main()
