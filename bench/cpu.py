"""CPU per request, Sinergi's and PostgreSQL's, for one scenario under wrk.

    .venv/bin/python -m bench.cpu eligibility [--workers 1] [--duration 10] [--rate 30] [--floor]

Throughput on two shared cores says little about where the time goes; CPU seconds per request,
split between the server's processes and PostgreSQL's, say what a change saved and on which
side. Run it before and after a change, alternating, on the same machine. Uses the population
and the database `bench.run` uses (run that, or `bench.generate`, first); PostgreSQL must run
on this machine, since its processes are measured (those serving the bench database, as
bench.run counts them). Each measurement follows a few seconds at full speed, unmeasured, to
warm the server and its pool up.

`--floor` serves the scenario from the floor (bench/floor.py) instead. `--rate` spreads the 32
connections' requests out to about that many a second: the latency a partner sees at the pace
it checks, rather than with every connection always busy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.run import (
    AGGREGATE,
    ELIGIBILITY,
    FLOOR_PORT,
    LOOKUP,
    PAGE,
    SINERGI_PORT,
    TYPENAME,
    WARM_UP_SECONDS,
    _client,
    _cpu_seconds_by_pid,
    _eligible_nib,
    _milliseconds,
    _preflight,
    _server,
    _token,
    _tree,
    cpu_seconds_spent,
    floor_command,
    postgres_serving,
    sinergi_command,
    wrk,
    wrk_errors,
)

CONNECTIONS = 32


@dataclass(frozen=True)
class Scenario:
    document: str
    org_kind: str
    jurisdiction: str
    floor_path: str
    """Where the floor serves it (POSTed the GraphQL body when `floor_posts`); `{nib}` stands
    for the MSME's NIB."""
    floor_posts: bool = False
    by_nib: bool = False
    """The document takes the NIB of a Kalimantan Tengah MSME as `$nib`."""


SCENARIOS = {
    "page": Scenario(PAGE, "province", "62", "/page?province=62"),
    "aggregate": Scenario(AGGREGATE, "ministry", "ID", "/aggregate"),
    "eligibility": Scenario(
        ELIGIBILITY, "bumd", "62", "/eligibility", floor_posts=True, by_nib=True
    ),
    "lookup": Scenario(LOOKUP, "province", "62", "/msme?nib={nib}", by_nib=True),
    "typename": Scenario(TYPENAME, "province", "62", "/typename"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rate", type=float, help="requests a second (default: flat out)")
    parser.add_argument("--floor", action="store_true", help="measure the floor instead")
    args = parser.parse_args()
    os.environ.setdefault("SINERGI_HOME", str(Path.home() / ".local/share/sinergi-bench"))

    from sinergi.database import resolve
    from sinergi.settings import Settings

    url = resolve(Settings.from_env()).owner_url  # it loads data and registers clients
    scenario = SCENARIOS[args.scenario]
    nib = _eligible_nib(url)
    variables = {"nib": nib} if scenario.by_nib else {}
    body = json.dumps({"query": scenario.document, "variables": variables})
    client = None
    if args.floor:
        path = scenario.floor_path.format(nib=nib)
        command, port = floor_command(args.workers), FLOOR_PORT
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
        # Unmeasured, so that the pools are full: a PostgreSQL backend that starts during the
        # measurement is not counted.
        wrk(target, body, token, connections=CONNECTIONS, duration=WARM_UP_SECONDS)
        workers = _tree(server)
        server_before = _cpu_seconds_by_pid(workers)
        postgres_before = _cpu_seconds_by_pid(postgres_serving(url))
        output = wrk(
            target, body, token, connections=CONNECTIONS, duration=args.duration, rate=args.rate
        )
        server_seconds = cpu_seconds_spent(server_before, _cpu_seconds_by_pid(workers))
        postgres_seconds = cpu_seconds_spent(
            postgres_before, _cpu_seconds_by_pid(postgres_serving(url))
        )
    done = re.search(r"(\d+) requests in", output)
    if done is None or int(done.group(1)) == 0:
        sys.exit(f"wrk completed no request:\n{output}")
    errors = wrk_errors(output)
    if errors:
        sys.exit(f"not measured: {errors:,} errors (a failing request is quick):\n{output}")
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
