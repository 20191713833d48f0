"""What the cell-key method costs in accuracy and time, on the population of a database.

For every cell of a set of national tables (MSMEs and cooperatives, read as the API reads them:
from the rollups), the published count and sums are compared with the exact ones; the mean
absolute relative error is reported by cell size. Cells made of the same records appear in
several tables with the same value, so each is counted once. Then the time to build and
publish the national table by province and scale is measured, with and without perturbation.

    DATABASE_URL=postgresql://…/sinergi_bench .venv/bin/python -m bench.disclosure
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.engine import create_engine
from db.queries import aggregates, cooperatives, msmes
from db.queries.aggregates import Figures, GroupRow
from domain.cellkey import Perturbation
from domain.suppression import Cell, publish
from resolvers.aggregates import cell_sums
from sinergi.database import resolve_url
from sinergi.settings import Settings

MSME_TABLES = (
    ["province"],
    ["regency"],
    ["province", "scale"],
    ["regency", "scale"],
    ["province", "kbli_section"],
    ["province", "established_year"],
    ["regency", "kbli_section", "scale"],
    ["province", "scale", "active"],
)
COOPERATIVE_TABLES = (["province", "type"], ["regency", "type"], ["province", "status"])
BANDS = ((1, 9), (10, 99), (100, 999), (1_000, 9_999), (10_000, None))


@dataclass
class Errors:
    counts: list[float]
    sums: list[float]


def _cells(rows: Sequence[GroupRow], figures: Figures) -> list[Cell]:
    return [
        Cell(
            row.key,
            row.measures["count"],
            row.measures["key_sum"],
            cell_sums(row.measures, figures.sums),
        )
        for row in rows
    ]


async def _collect(connection: AsyncConnection) -> dict[tuple[int, int], Cell]:
    """Every distinct non-empty cell, by (count, key sum): the same records give the same."""
    cells: dict[tuple[int, int], Cell] = {}
    tables = [
        (aggregates.msme_figures(msmes.MsmeFilter(), group_by), group_by)
        for group_by in MSME_TABLES
    ] + [
        (aggregates.cooperative_figures(cooperatives.CooperativeFilter(), group_by), group_by)
        for group_by in COOPERATIVE_TABLES
    ]
    for figures, group_by in tables:
        rows = await aggregates.grouped(connection, figures, group_by=group_by)
        for cell in _cells(rows, figures):
            if cell.count:
                cells[(cell.count, cell.key_sum)] = cell
    return cells


def _band(count: int) -> tuple[int, int | None]:
    return next(
        band for band in BANDS if count >= band[0] and (band[1] is None or count <= band[1])
    )


def _errors(
    cells: Sequence[Cell], perturbation: Perturbation
) -> dict[tuple[int, int | None], Errors]:
    found: dict[tuple[int, int | None], Errors] = {band: Errors([], []) for band in BANDS}
    for cell in cells:
        errors = found[_band(cell.count)]
        errors.counts.append(
            abs(perturbation.count(cell.count, cell.key_sum) - cell.count) / cell.count
        )
        for name, summed in cell.sums.items():
            if summed.total:
                noisy = perturbation.total(summed.total, summed.squares, summed.key_sum, name)
                errors.sums.append(abs(noisy - summed.total) / summed.total)
    return found


async def _timed(
    connection: AsyncConnection, perturbation: Perturbation, rounds: int
) -> tuple[int, dict[str, float]]:
    """The national table by province and scale: its cells, and the median milliseconds of its
    statement and of publishing its cells exact or perturbed."""
    group_by = ["province", "scale"]
    figures = aggregates.msme_figures(msmes.MsmeFilter(), group_by)
    times: dict[str, list[float]] = {"statement": [], "exact": [], "perturbed": []}
    for _ in range(rounds):
        started = time.perf_counter()
        rows = await aggregates.grouped(connection, figures, group_by=group_by)
        times["statement"].append(time.perf_counter() - started)
        for name, protected in (("exact", False), ("perturbed", True)):
            started = time.perf_counter()
            cells = [
                Cell(c.key, c.count, c.key_sum, c.sums, protected) for c in _cells(rows, figures)
            ]
            publish(cells, k=5, perturbation=perturbation, averages=figures.averages)
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    return len(rows), medians


async def main(url: str, perturbation: Perturbation, rounds: int) -> None:
    engine = create_engine(url, statement_timeout_ms=600_000)
    async with engine.connect() as connection:
        population = await connection.scalar(text("SELECT count(*) FROM msmes"))
        cells = list((await _collect(connection)).values())
        print(f"population: {population} MSMEs; {len(cells)} distinct non-empty cells")
        print(f"parameters: {perturbation}")
        print("cells (businesses) | cells | count MARE | sums MARE")
        for band, errors in _errors(cells, perturbation).items():
            label = f"{band[0]}+" if band[1] is None else f"{band[0]}-{band[1]}"
            count = statistics.fmean(errors.counts) if errors.counts else float("nan")
            sums = statistics.fmean(errors.sums) if errors.sums else float("nan")
            print(f"{label:>18} | {len(errors.counts):5} | {count:10.4%} | {sums:9.4%}")
        large = [cell for cell in cells if cell.count >= 100]
        mare = statistics.fmean(
            abs(perturbation.count(c.count, c.key_sum) - c.count) / c.count for c in large
        )
        print(f"cells of 100 or more businesses: {len(large)}, count MARE {mare:.4%}")
        cells_in_table, timed = await _timed(connection, perturbation, rounds)
        print(
            f"province x scale ({cells_in_table} cells), p50: statement "
            f"{timed['statement']:.2f} ms; publishing exact {timed['exact']:.2f} ms, "
            f"perturbed {timed['perturbed']:.2f} ms"
        )
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    settings = Settings.from_env()
    url = resolve_url(settings)  # starts the embedded server when DATABASE_URL is unset
    asyncio.run(main(url, settings.perturbation, parser.parse_args().rounds))
