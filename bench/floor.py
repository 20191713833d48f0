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

PAGE = """SELECT id, nib, name, regency_code, cooperative_id FROM msmes
           WHERE province_code = $1 ORDER BY id LIMIT $2"""
REGIONS = "SELECT code, level, name, parent_code FROM regions WHERE code = ANY($1::varchar[])"
COOPERATIVES = """SELECT id, name FROM cooperatives
                   WHERE id = ANY($1::bigint[]) AND province_code = $2"""
# Scenario (c): the statement Sinergi runs for msmeFigures(groupBy: [PROVINCE, SCALE]).
AGGREGATE = """SELECT province_code, scale, GROUPING(province_code) AS g0, GROUPING(scale) AS g1,
                      CAST(coalesce(sum(n), 0) AS bigint) AS count,
                      CASE WHEN sum(turnover_n) > 0 THEN sum(turnover_sum) END AS turnover_sum
                 FROM msme_rollup_regency GROUP BY CUBE(province_code, scale)"""


async def page(request: Request) -> Response:
    pool: asyncpg.Pool = request.state.pool
    province = request.query_params.get("province", "62")
    size = int(request.query_params.get("first", "50"))
    async with pool.acquire() as connection:
        rows = await connection.fetch(PAGE, province, size + 1)
        rows = rows[:size]
        regencies = {
            r["code"]: r
            for r in await connection.fetch(REGIONS, list({row["regency_code"] for row in rows}))
        }
        provinces = {
            r["code"]: r
            for r in await connection.fetch(REGIONS, list({code[:2] for code in regencies}))
        }
        cooperative_ids = list({row["cooperative_id"] for row in rows if row["cooperative_id"]})
        cooperatives = {
            r["id"]: r for r in await connection.fetch(COOPERATIVES, cooperative_ids, province)
        }
    nodes: list[dict[str, Any]] = []
    for row in rows:
        regency = regencies[row["regency_code"]]
        cooperative = cooperatives.get(row["cooperative_id"])
        nodes.append(
            {
                "nib": row["nib"],
                "name": row["name"],
                "regency": {
                    "name": regency["name"],
                    "province": {"name": provinces[regency["code"][:2]]["name"]},
                },
                "cooperative": None if cooperative is None else {"name": cooperative["name"]},
            }
        )
    body = {"data": {"msmes": {"nodes": nodes}}}
    return Response(orjson.dumps(body), media_type="application/json")


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
