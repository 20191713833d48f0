"""CPU per request, Sinergi's and PostgreSQL's, for one scenario under wrk.

    .venv/bin/python -m bench.cpu eligibility [--workers 1] [--duration 10]

Throughput on two shared cores says little about where the time goes; CPU seconds per request,
split between the server's processes and PostgreSQL's, say what a change saved and on which
side. Run it before and after a change, alternating, on the same machine. Uses the population
and the database `bench.run` uses (run that, or `bench.generate`, first); PostgreSQL must run
on this machine, since its processes are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psutil

from bench.run import (
    AGGREGATE,
    ELIGIBILITY,
    HERE,
    PAGE,
    SINERGI_PORT,
    _client,
    _cpu_seconds_by_pid,
    _eligible_nib,
    _env,
    _milliseconds,
    _postgres,
    _preflight,
    _server,
    _token,
)

# scenario -> (document, client kind, jurisdiction)
SCENARIOS = {
    "page": (PAGE, "province", "62"),
    "aggregate": (AGGREGATE, "ministry", "ID"),
    "eligibility": (ELIGIBILITY, "bumd", "62"),
    "typename": ("{ __typename }", "province", "62"),
}


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    return sum(_cpu_seconds_by_pid(processes).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("SINERGI_HOME", str(Path.home() / ".local/share/sinergi-bench"))

    from sinergi.database import resolve_url
    from sinergi.settings import Settings

    url = resolve_url(Settings.from_env())
    document, org_kind, jurisdiction = SCENARIOS[args.scenario]
    variables = {"nib": _eligible_nib(url)} if args.scenario == "eligibility" else {}
    client = _client(url, f"bench-cpu-{org_kind}", org_kind, jurisdiction)
    serve = [str(Path(sys.executable).parent / "sinergi"), "serve", "--port", str(SINERGI_PORT)]
    with _server([*serve, "--workers", str(args.workers)], url, SINERGI_PORT) as server:
        token = _token(client)
        body = json.dumps({"query": document, "variables": variables})
        graphql = f"http://127.0.0.1:{SINERGI_PORT}/graphql"
        refused = _preflight(graphql, body, token)
        if refused:
            sys.exit(f"{args.scenario} does not answer cleanly: {refused}")
        workers = [server, *server.children(recursive=True)]
        server_before, postgres_before = _cpu_seconds(workers), _cpu_seconds(_postgres())
        script = str(HERE / "scenarios" / "post.lua")
        output = subprocess.run(
            ["wrk", "-t2", "-c32", f"-d{args.duration}s", "--latency", "-s", script, graphql],
            env={**_env(url), "BODY": body, "TOKEN": token},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        server_seconds = _cpu_seconds(workers) - server_before
        postgres_seconds = _cpu_seconds(_postgres()) - postgres_before
    done = re.search(r"(\d+) requests in", output)
    if done is None or int(done.group(1)) == 0:
        sys.exit(f"wrk completed no request:\n{output}")
    requests = int(done.group(1))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    print(
        f"{args.scenario}, {args.workers} worker(s): "
        f"{rate.group(1) if rate else '?'} requests/s, "
        f"p50 {_milliseconds(output, 50)} ms, p99 {_milliseconds(output, 99)} ms; "
        f"CPU per request: server {1000 * server_seconds / requests:.3f} ms, "
        f"PostgreSQL {1000 * postgres_seconds / requests:.3f} ms"
    )


if __name__ == "__main__":
    main()
