"""A national-scale population made by PostgreSQL itself (generate_series), deterministic.

Bench records use identifiers no real or demo record has (NIB 8…, legal entity AHU-8…), are
spread over all 514 regencies and cities, and mix scales like the national register (§6 of
domain.md: about 96% micro). One million MSMEs take well under a minute on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.engine import create_engine
from db.migrate import upgrade
from db.seed import load_reference
from sinergi.database import resolve
from sinergi.demo import SEED_DATA
from sinergi.settings import Settings

CLEAR = [
    "DELETE FROM msmes WHERE nib LIKE '8%'",
    "DELETE FROM cooperatives WHERE legal_entity_no LIKE 'AHU-8%'",
]

COOPERATIVES = """
WITH places AS (
    SELECT code, left(code, 2) AS province, row_number() OVER (ORDER BY code) - 1 AS idx
      FROM regions WHERE level IN ('regency', 'city')
), counted AS (SELECT count(*) AS n FROM places)
INSERT INTO cooperatives (legal_entity_no, name, tier, type, province_code, regency_code,
                          members_male, members_female, business_volume, assets, book_year,
                          last_rat_date, last_rat_book_year, status)
SELECT 'AHU-8' || lpad(g::text, 9, '0') || '.AH.01.26.TAHUN 2020',
       'Koperasi Bench ' || g, 'primary',
       (ARRAY['produsen','konsumen','konsumen','produsen','jasa','pemasaran','simpan_pinjam'])
           [1 + (g * 37) % 7],
       p.province, p.code,
       10 + (g * 13) % 500, 10 + (g * 17) % 500,
       50000000 + ((g::bigint * 2654435761) % 15000) * 1000000,
       50000000 + ((g::bigint * 40503) % 20000) * 1000000,
       2024, date '2025-03-15', CASE WHEN g % 10 < 7 THEN 2024 ELSE 2019 END,
       CASE WHEN g % 10 < 7 THEN 'active' ELSE 'inactive' END
  FROM generate_series(1::bigint, :cooperatives) AS g CROSS JOIN counted
  JOIN places p ON p.idx = (g * 7919) % counted.n
"""

MSMES = """
WITH places AS (
    SELECT code, left(code, 2) AS province, row_number() OVER (ORDER BY code) - 1 AS idx
      FROM regions WHERE level IN ('regency', 'city')
), counted AS (SELECT count(*) AS n FROM places),
codes AS (
    SELECT k.code, s.section, row_number() OVER (ORDER BY k.code) - 1 AS idx
      FROM kbli_codes k
      JOIN kbli_sections s ON left(k.code, 2)::int BETWEEN s.first_division AND s.last_division
), code_count AS (SELECT count(*) AS n FROM codes),
coops AS (SELECT min(id) AS first_id, count(*) AS n FROM cooperatives
           WHERE legal_entity_no LIKE 'AHU-8%'),
drawn AS (
    SELECT g, (g * 2654435761) % 1000 AS size_draw
      FROM generate_series(1::bigint, :msmes) AS g
)
INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code, regency_code,
                   established_on, capital, annual_turnover, turnover_year, employees,
                   cooperative_id, is_active)
SELECT '8' || lpad(d.g::text, 12, '0'),
       'Usaha Bench ' || d.g,
       c.code, c.section,
       CASE WHEN d.size_draw < 960 THEN 'micro' WHEN d.size_draw < 995 THEN 'small'
            ELSE 'medium' END,
       p.province, p.code,
       date '2000-01-01' + ((d.g * 97) % 9000)::int,
       CASE WHEN d.size_draw < 960 THEN 5000000 + (d.g * 7) % 900 * 1000000
            WHEN d.size_draw < 995 THEN 1100000000 + (d.g * 7) % 3800 * 1000000
            ELSE 5100000000 + (d.g * 7) % 4800 * 1000000 END,
       CASE WHEN d.size_draw < 960 THEN 20000000 + (d.g * 11) % 1900 * 1000000
            WHEN d.size_draw < 995 THEN 2100000000 + (d.g * 11) % 12800 * 1000000
            ELSE 15100000000 + (d.g * 11) % 34800 * 1000000 END,
       2025,
       1 + (d.g * 3) % 30,
       CASE WHEN d.g % 5 = 0 THEN coops.first_id + (d.g * 31) % coops.n END,
       d.g % 17 <> 0
  FROM drawn d CROSS JOIN counted CROSS JOIN code_count CROSS JOIN coops
  JOIN places p ON p.idx = (d.g * 7919) % counted.n
  JOIN codes c ON c.idx = (d.g * 104729) % code_count.n
"""

OWNERS = """
INSERT INTO msme_owners (msme_id, nik, full_name, sex, phone)
SELECT id, replace(regency_code, '.', '') || '99' || lpad((1 + id % 28)::text, 2, '0')
           || lpad((1 + id % 12)::text, 2, '0') || '80' || lpad((id % 10000)::text, 4, '0'),
       'Pemilik Bench ' || id, CASE WHEN id % 2 = 0 THEN 'F' ELSE 'M' END,
       '+62812' || lpad((id % 100000000)::text, 8, '0')
  FROM msmes WHERE nib LIKE '8%'
"""


async def generate(connection: AsyncConnection, *, msmes: int, cooperatives: int) -> None:
    await load_reference(connection, SEED_DATA)
    for statement in CLEAR:
        await connection.execute(text(statement))
    await connection.execute(text(COOPERATIVES), {"cooperatives": cooperatives})
    await connection.execute(text(MSMES), {"msmes": msmes})
    await connection.execute(text(OWNERS))


async def _main(url: str, msmes: int, cooperatives: int) -> None:
    engine = create_engine(url, statement_timeout_ms=3_600_000)  # bulk statements, minutes
    started = time.perf_counter()
    async with engine.begin() as connection:
        await generate(connection, msmes=msmes, cooperatives=cooperatives)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE"))
    await engine.dispose()
    print(
        f"generated {msmes:,} MSMEs and {cooperatives:,} cooperatives "
        f"in {time.perf_counter() - started:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--msmes", type=int, default=1_000_000)
    parser.add_argument("--cooperatives", type=int, default=130_000)
    args = parser.parse_args()
    url = resolve(Settings.from_env()).owner_url  # it loads data and registers clients
    upgrade(url)
    asyncio.run(_main(url, args.msmes, args.cooperatives))


if __name__ == "__main__":
    main()
