"""bench/RESULTS.md from the measurements of a run: the rounds, Sinergi's ratios to
PostGraphile and the floor, and a verdict per target of issue 18."""

from __future__ import annotations

import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil

FLOOR, SINERGI, POSTGRAPHILE_SERVER = "floor", "Sinergi", "PostGraphile"
IMPORT, BARE_COPY = "(d) bulk import", "bare COPY"
"""The import's row, and the row of a bare COPY of the same rows its target is judged against
(a Measurement of that scenario and target, rows/s as its requests/s)."""
PARTNER_RATE = 30
"""Checks a second: the pace at which a partner checks eligibility."""


@dataclass
class Measurement:
    scenario: str
    target: str
    """The server measured (or, for the import, what imported)."""
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mb: float
    connections: int = 0
    note: str = ""
    round: int = 0
    """The round it was measured in; 0 outside the rounds (the import)."""
    server_cpu_ms: float | None = None
    """CPU time of the server's processes per request answered."""
    postgres_cpu_ms: float | None = None
    """CPU time of PostgreSQL's processes serving the database, per request answered."""

    @property
    def measured(self) -> bool:
        """Whether its numbers measure the request: not when it failed or was skipped, nor
        when any request erred (a server answering 401s or dropping connections is quick, and
        would be judged on the speed of its failures)."""
        return not self.errors and not self.note.startswith(("not measured", "pending", "failed"))


def _ratios(results: list[Measurement], request: str, versus: str) -> dict[int, float | None]:
    """Sinergi's requests/s over `versus`'s for `request`, by round (None: not both measured)."""
    rates = {
        (m.target, m.round): m.requests_per_second
        for m in results
        if m.scenario == request and m.measured and m.requests_per_second > 0
    }
    rounds = sorted({m.round for m in results if m.round})
    return {
        r: rates[SINERGI, r] / rates[versus, r]
        if (SINERGI, r) in rates and (versus, r) in rates
        else None
        for r in rounds
    }


def _p99s(results: list[Measurement], request: str) -> dict[int, float | None]:
    """Sinergi's p99 for `request`, by round."""
    p99 = {
        m.round: m.p99_ms
        for m in results
        if m.scenario == request and m.target == SINERGI and m.measured
    }
    return {r: p99.get(r) for r in sorted({m.round for m in results if m.round})}


@dataclass(frozen=True)
class Target:
    """One of issue 18's targets: a value per round (or one for the run), judged on their
    median."""

    name: str
    values: dict[int, float | None]
    holds: Callable[[float], bool]
    shown: str
    """How a value reads, a format string."""
    aside: str = ""


def _targets(results: list[Measurement]) -> list[Target]:
    by = {(m.scenario, m.target): m for m in results if m.measured and not m.round}
    imported, copied = by.get((IMPORT, "sinergi")), by.get((IMPORT, BARE_COPY))
    rss = {
        server: max((m.peak_rss_mb for m in results if m.target == server), default=0.0)
        for server in (SINERGI, POSTGRAPHILE_SERVER, FLOOR)
    }
    typename, lookup = "`{ __typename }`", "MSME by NIB"
    at_pace = f"eligibility at {PARTNER_RATE}/s"
    return [
        Target(
            "MSME by NIB ≥ 1.0 × PostGraphile",
            _ratios(results, lookup, POSTGRAPHILE_SERVER),
            lambda v: v >= 1.0,
            "{:.2f}",
        ),
        Target(
            "page of 50 ≥ 1.0 × PostGraphile (aim: 1.5 ×)",
            _ratios(results, "page of 50", POSTGRAPHILE_SERVER),
            lambda v: v >= 1.0,
            "{:.2f}",
        ),
        Target(
            "`{ __typename }` with a token ≥ 0.5 × PostGraphile's",
            _ratios(results, typename, POSTGRAPHILE_SERVER),
            lambda v: v >= 0.5,
            "{:.2f}",
        ),
        Target(
            "national figures ≥ 100 × PostGraphile",
            _ratios(results, "national figures", POSTGRAPHILE_SERVER),
            lambda v: v >= 100,
            "{:,.0f}",
        ),
        Target(
            "eligibility ≥ 0.8 × floor",
            _ratios(results, "eligibility", FLOOR),
            lambda v: v >= 0.8,
            "{:.2f}",
        ),
        Target(
            f"eligibility p99 ≤ 15 ms at {PARTNER_RATE} checks/s",
            _p99s(results, at_pace),
            lambda v: v <= 15,
            "{:.1f} ms",
        ),
        Target(
            "import ≥ 0.5 × bare COPY",
            {
                0: imported.requests_per_second / copied.requests_per_second
                if imported and copied
                else None
            },
            lambda v: v >= 0.5,
            "{:.2f}",
            "" if copied else "no bare COPY of the same rows in this run",
        ),
        Target(
            "RSS < 250 MB per process",
            {0: rss[SINERGI] or None},
            lambda v: v < 250,
            "{:.0f} MB",
            f"PostGraphile {rss[POSTGRAPHILE_SERVER]:.0f} MB, floor {rss[FLOOR]:.0f} MB",
        ),
    ]


def _verdicts(results: list[Measurement]) -> list[str]:
    """Each target of issue 18 against this run: met, missed, or not measured."""
    lines = [
        "| target | per round | median | verdict | note |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for target in _targets(results):
        values = [v for v in target.values.values() if v is not None]
        rounds = ", ".join(
            "—" if v is None else target.shown.format(v) for v in target.values.values()
        )
        if not values:
            lines.append(f"| {target.name} | {rounds} | — | not measured | {target.aside} |")
            continue
        median = statistics.median(values)
        verdict = "met" if target.holds(median) else "MISSED"
        lines.append(
            f"| {target.name} | {rounds} | {target.shown.format(median)} | {verdict} "
            f"| {target.aside} |"
        )
    return lines


def _rate(per_second: float) -> str:
    """Requests a second, with the decimals that matter below ten."""
    return f"{per_second:,.0f}" if per_second >= 10 else f"{per_second:.2f}"


def _microseconds(milliseconds: float | None) -> str:
    return "" if milliseconds is None else f"{1000 * milliseconds:,.0f}"


def _rows(measurements: list[Measurement]) -> list[str]:
    lines = [
        "| request | server | conns | requests/s | p50 ms | p99 ms | errors | server CPU µs "
        "| PostgreSQL CPU µs | peak RSS MB | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in measurements:
        lines.append(
            f"| {m.scenario} | {m.target} | {m.connections or ''} | {_rate(m.requests_per_second)} "
            f"| {m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.errors} | {_microseconds(m.server_cpu_ms)} "
            f"| {_microseconds(m.postgres_cpu_ms)} | {m.peak_rss_mb:.0f} | {m.note} |"
        )
    return lines


def markdown(
    results: list[Measurement],
    *,
    command: str,
    software: str,
    population: str,
    duration: int,
    warm_up: int,
) -> str:
    """RESULTS.md, but for its hand-written notes."""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        models = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}` (run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {models[0] if models else platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; {platform.platform()}",
        "",
        f"Software: {software}",
        "",
        f"Population: {population}. The machine is shared "
        "(other work ran on the same two cores), so absolute numbers are noisy: compare only "
        "ratios measured in the same round.",
        "",
        "Each round starts the servers, then asks each request of each server in turn, the "
        f"order rotating from round to round: wrk for {duration} s after {warm_up} s "
        "unmeasured at the same load. CPU per request is the CPU time of the server's "
        "processes, and of PostgreSQL's processes serving this database (alive at both ends "
        "of the measurement), over the requests answered. Errors are non-2xx answers and "
        "socket errors (connect, read, write, timeout); a measurement with any is not "
        "measured: it gets no ratio and no verdict.",
    ]
    rounds = sorted({m.round for m in results if m.round})
    for number in rounds:
        measured = [m for m in results if m.round == number]
        order = ", ".join(dict.fromkeys(m.target for m in measured))
        lines += ["", f"## Round {number} ({order})", "", *_rows(measured)]
    lines += [
        "",
        "## Sinergi's requests/s ÷ PostGraphile's and ÷ the floor's, round by round",
        "",
        "| request | ÷ PostGraphile | ÷ floor |",
        "| --- | --- | --- |",
    ]
    for request in dict.fromkeys(m.scenario for m in results if m.round):
        if request.startswith("eligibility at"):
            continue  # paced: its throughput is the pace; its latency is judged below
        lines.append(
            f"| {request} | {_listed(_ratios(results, request, POSTGRAPHILE_SERVER))} "
            f"| {_listed(_ratios(results, request, FLOOR))} |"
        )
    outside = [m for m in results if not m.round]
    if outside:
        lines += ["", "## Bulk import", "", *_rows(outside)]
    lines += [
        "",
        "## Targets (issue 18)",
        "",
        "Judged on the median of the rounds' values.",
        "",
        *_verdicts(results),
    ]
    return "\n".join(lines) + "\n"


def _listed(ratios: dict[int, float | None]) -> str:
    return ", ".join("—" if r is None else f"{r:,.2f}" for r in ratios.values())
