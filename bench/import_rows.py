"""The import against a bare COPY of the same rows, alone: bench.run's scenario (d) without its
rounds, so a change to the import can be measured in a minute instead of twenty.

    .venv/bin/python -m bench.import_rows [--rows 20000] [--times 1]

Uses the database `bench.run` uses (DATABASE_URL, or the embedded server), as it is: run
`bench.run` or `bench.generate` first. Each time imports the rows (removing an earlier run's
first), then COPYs the same records, and prints both rates, their ratio and the verdict on
issue 18's target (import ≥ 0.5 × bare COPY); with `--times` above 1, the median ratio too.
Nothing is written to RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from bench.run import import_rates

TARGET = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--times", type=int, default=1, help="import and COPY this many times")
    args = parser.parse_args()
    os.environ.setdefault("SINERGI_HOME", str(Path.home() / ".local/share/sinergi-bench"))

    from sinergi.database import resolve
    from sinergi.settings import Settings

    url = resolve(Settings.from_env()).owner_url
    ratios = []
    for _ in range(args.times):
        measured = import_rates(url, args.rows)
        for m in measured:
            print(f"{m.target:>9}: {m.requests_per_second:8,.0f} rows/s  {m.note}", flush=True)
        if len(measured) == 2:
            ratio = measured[0].requests_per_second / measured[1].requests_per_second
            ratios.append(ratio)
            print(f"    ratio: {ratio:.2f} (target ≥ {TARGET})", flush=True)
    if ratios:
        median = statistics.median(ratios)
        verdict = "met" if median >= TARGET else "MISSED"
        print(f"import ≥ {TARGET} × bare COPY: median {median:.2f} of {len(ratios)}: {verdict}")


if __name__ == "__main__":
    main()
