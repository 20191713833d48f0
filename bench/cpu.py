"""CPU per request, Sinergi's and PostgreSQL's, for one scenario under wrk.

    .venv/bin/python -m bench.cpu eligibility [--workers 1] [--duration 10] [--rate 30] [--floor]

Throughput on two shared cores says little about where the time goes; CPU seconds per request,
split between the server's processes and PostgreSQL's, say what a change saved and on which
side. Run it before and after a change, alternating, on the same machine. Uses the population
and the database `bench.run` uses (run that, or `bench.generate`, first); PostgreSQL must run
on this machine, since its processes are measured.

`--floor` serves the scenario from the floor (bench/floor.py) instead. `--rate` spreads the 32
connections' requests out to about that many a second, after a few seconds at full speed to
warm both servers up: the latency a partner sees at the pace it checks, rather than with every
connection always busy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.run import (
    AGGREGATE,
    ELIGIBILITY,
    FLOOR_PORT,
    PAGE,
    REQUEST_SCRIPT,
    SINERGI_PORT,
    _client,
    _cpu_seconds_by_pid,
    _eligible_nib,
    _milliseconds,
    _postgres,
    _preflight,
    _server,
    _token,
    floor_command,
    sinergi_command,
)

CONNECTIONS = 32
WARM_UP_SECONDS = 5


@dataclass(frozen=True)
class Scenario:
    document: str
    org_kind: str
    jurisdiction: str
    floor_path: str | None
    """Where the floor serves it (POSTed the GraphQL body when `floor_posts`), if it does."""
    floor_posts: bool = False


SCENARIOS = {
    "page": Scenario(PAGE, "province", "62", "/page?province=62"),
    "aggregate": Scenario(AGGREGATE, "ministry", "ID", "/aggregate"),
    "eligibility": Scenario(ELIGIBILITY, "bumd", "62", "/eligibility", floor_posts=True),
    "typename": Scenario("{ __typename }", "province", "62", None),
}


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    return sum(_cpu_seconds_by_pid(processes).values())


def _wrk(url: str, duration: int, body: str, token: str, rate: float | None) -> str:
    """wrk's report; with `rate`, each connection pauses CONNECTIONS / rate on average."""
    pause = {} if rate is None else {"PAUSE_MS": str(round(1000 * CONNECTIONS / rate))}
    script = str(REQUEST_SCRIPT)
    return subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", "-s", script, url],
        env={**os.environ, "BODY": body, "TOKEN": token, **pause},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rate", type=float, help="requests a second (default: flat out)")
    parser.add_argument("--floor", action="store_true", help="measure the floor instead")
    args = parser.parse_args()
    os.environ.setdefault("SINERGI_HOME", str(Path.home() / ".local/share/sinergi-bench"))

    from sinergi.database import resolve_url
    from sinergi.settings import Settings

    url = resolve_url(Settings.from_env())
    scenario = SCENARIOS[args.scenario]
    if args.floor and scenario.floor_path is None:
        sys.exit(f"the floor does not serve {args.scenario}")
    variables = {"nib": _eligible_nib(url)} if args.scenario == "eligibility" else {}
    body = json.dumps({"query": scenario.document, "variables": variables})
    client = None
    if args.floor:
        command, port, path = floor_command(args.workers), FLOOR_PORT, scenario.floor_path
        body = body if scenario.floor_posts else ""
    else:
        kind, jurisdiction = scenario.org_kind, scenario.jurisdiction
        client = _client(url, f"bench-cpu-{kind}", kind, jurisdiction)
        command, port, path = sinergi_command(args.workers), SINERGI_PORT, "/graphql"
    target = f"http://127.0.0.1:{port}{path}"
    with _server(command, url, port) as server:
        token = "" if client is None else _token(client)
        refused = _preflight(target, body or None, token)
        if refused:
            sys.exit(f"{args.scenario} does not answer cleanly: {refused}")
        if args.rate is not None:
            _wrk(target, WARM_UP_SECONDS, body, token, None)
        workers = [server, *server.children(recursive=True)]
        server_before, postgres_before = _cpu_seconds(workers), _cpu_seconds(_postgres())
        output = _wrk(target, args.duration, body, token, args.rate)
        server_seconds = _cpu_seconds(workers) - server_before
        postgres_seconds = _cpu_seconds(_postgres()) - postgres_before
    done = re.search(r"(\d+) requests in", output)
    if done is None or int(done.group(1)) == 0:
        sys.exit(f"wrk completed no request:\n{output}")
    requests = int(done.group(1))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    print(
        f"{args.scenario}{' (floor)' if args.floor else ''}, {args.workers} worker(s): "
        f"{rate.group(1) if rate else '?'} requests/s, "
        f"p50 {_milliseconds(output, 50)} ms, p90 {_milliseconds(output, 90)} ms, "
        f"p99 {_milliseconds(output, 99)} ms; "
        f"CPU per request: server {1000 * server_seconds / requests:.3f} ms, "
        f"PostgreSQL {1000 * postgres_seconds / requests:.3f} ms"
    )


if __name__ == "__main__":
    main()
