"""The floor: bare Starlette + asyncpg endpoints that run the data SQL Sinergi runs for the
page (a) and national aggregate (c) scenarios and return the same JSON. Sinergi's throughput
is reported as a ratio to it.

It does nothing else: no token, no GraphQL parsing or validation, no rate limit, no audit,
so the gap to it is the whole price of the API layer.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# Scenario (a): the statement Sinergi runs for the page (tests/test_bench_floor.py keeps them
# equal), with the arguments it binds for a province-62 client. PostgreSQL writes the nodes' JSON.
PAGE = """SELECT CAST(coalesce(json_agg(json_build_object('nib', p.nib, 'name', p.name,
  'regency', CASE WHEN (r1.code IS NULL) THEN NULL ELSE json_build_object('name', r1.name,
  'province', CASE WHEN (r2.code IS NULL) THEN NULL ELSE json_build_object('name', r2.name) END)
  END, 'cooperative', CASE WHEN (c3.id IS NULL) THEN NULL ELSE json_build_object('name', c3.name)
  END) ORDER BY p.id) FILTER (WHERE p.n <= 50), '[]'::json) AS TEXT) AS coalesce_1,
  count(*) AS count_1, max(p.id) FILTER (WHERE p.n <= 50) AS anon_1,
  0 + (count(c3.id) FILTER (WHERE p.n <= 50)) AS anon_2,
  coalesce(bool_or(p.name IS NULL OR r1.code IS NOT NULL AND (r1.name IS NULL OR r2.code IS NOT
  NULL AND r2.name IS NULL) OR r1.code IS NULL OR c3.id IS NOT NULL AND c3.name IS NULL)
  FILTER (WHERE p.n <= 50), false) AS coalesce_2
FROM (SELECT msmes.cooperative_id AS cooperative_id, msmes.id AS id, msmes.name AS name,
  msmes.nib AS nib, msmes.regency_code AS regency_code,
  row_number() OVER (ORDER BY msmes.id) AS n
FROM msmes
WHERE msmes.province_code = $1::VARCHAR AND msmes.province_code = $2::VARCHAR ORDER BY msmes.id
  LIMIT 51) AS p
LEFT OUTER JOIN regions AS r1 ON r1.code = p.regency_code
LEFT OUTER JOIN regions AS r2 ON r2.code = nullif(left(r1.code, $3::INTEGER), $4::VARCHAR)
LEFT OUTER JOIN cooperatives AS c3 ON c3.id = p.cooperative_id AND c3.province_code = $5::VARCHAR"""


def page_arguments(province: str) -> tuple[str, str, int, str, str]:
    """PAGE's arguments: the filter's province, the client's, and how a regency names its
    province (its code's first two characters, unless that is the country)."""
    return province, province, 2, "ID", province


# Scenario (c): the statement Sinergi runs for msmeFigures(groupBy: [PROVINCE, SCALE]).
AGGREGATE = """SELECT province_code, scale, GROUPING(province_code) AS g0, GROUPING(scale) AS g1,
                      CAST(coalesce(sum(n), 0) AS bigint) AS count,
                      CASE WHEN sum(turnover_n) > 0 THEN sum(turnover_sum) END AS turnover_sum
                 FROM msme_rollup_regency GROUP BY CUBE(province_code, scale)"""


async def page(request: Request) -> Response:
    pool: asyncpg.Pool = request.state.pool
    province = request.query_params.get("province", "62")
    async with pool.acquire() as connection:
        nodes = await connection.fetchval(PAGE, *page_arguments(province))
    body = b'{"data":{"msmes":{"nodes":' + nodes.encode() + b"}}}"
    return Response(body, media_type="application/json")


async def aggregate(request: Request) -> Response:
    """The same cells as Sinergi's answer, without suppression (a pure function of them)."""
    pool: asyncpg.Pool = request.state.pool
    async with pool.acquire() as connection:
        rows = await connection.fetch(AGGREGATE)
    cells = [
        {
            "key": [
                {"value": None if row["g0"] else row["province_code"]},
                {"value": None if row["g1"] else row["scale"]},
            ],
            "count": row["count"],
            "turnoverSum": None if row["turnover_sum"] is None else str(row["turnover_sum"]),
        }
        for row in rows
    ]
    body = {"data": {"msmeFigures": cells}}
    return Response(orjson.dumps(body), media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b"ok")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    pool = await asyncpg.create_pool(url, min_size=4, max_size=10)
    yield {"pool": pool}
    await pool.close()


app = Starlette(
    routes=[Route("/page", page), Route("/aggregate", aggregate), Route("/healthz", healthz)],
    lifespan=lifespan,
)
