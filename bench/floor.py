"""The floor: bare Starlette + asyncpg endpoints that answer each request of the bench
(`{ __typename }`, an MSME by NIB, a page of 50, national figures, an eligibility check) with
the same JSON as Sinergi. Sinergi's throughput is reported as a ratio to it.

It does nothing else: no token, no GraphQL parsing or validation, no rate limit, no audit,
so the gap to it is the whole price of the API layer. For eligibility it also says what no
server can beat on the machine: a check reads the business and stores the decision, whoever
serves it. Its connections are planned as Sinergi's are (db.engine.PLANNER_SETTINGS).

For `{ __typename }`, the lookup, the page and the eligibility check it runs the data SQL
Sinergi runs, written once here with the function that gives its arguments;
tests/test_bench_floor.py fails when Sinergi runs another statement or other arguments for
them. National figures are not Sinergi's statement: the floor runs what an API without figure
releases runs, a CUBE over the live rollup table, while Sinergi reads its published release
(another statement, with more columns) and, as the bench asks one identical table over and
over, answers almost every request from its figure cache without any SQL. That row's ratio to
the floor compares a cache with a query, not two ways of running one statement.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from db.driver import Row
from db.engine import PLANNER_SETTINGS
from domain.eligibility import MSME, EligibilityFacts, LenderAttestation, evaluate
from domain.ruleset import RuleSet
from resolvers.calendar import today
from resolvers.eligibility import registry_facts, results_of

# `{ __typename }`: Sinergi runs no statement for it beyond its token check (which the floor,
# having no token, leaves out), so neither does the floor.
TYPENAME = b'{"data":{"__typename":"Query"}}'

# An MSME by NIB with its regency's name, for a province-62 client: the statement Sinergi runs,
# in which PostgreSQL writes the MSME's JSON, its regency joined.
LOOKUP = """SELECT CAST(json_build_object('nib', p.nib, 'name', p.name, 'regency', CASE WHEN
  (r1.code IS NULL) THEN NULL ELSE json_build_object('name', r1.name) END) AS TEXT)
  AS json_build_object_1, ARRAY[]::text[], p.name IS NULL OR r1.code IS NOT NULL
  AND r1.name IS NULL OR r1.code IS NULL AS anon_1, 0, 0, 0
FROM (SELECT msmes.id AS id, msmes.name AS name, msmes.nib AS nib,
  msmes.regency_code AS regency_code FROM msmes
  WHERE msmes.nib = $1::VARCHAR AND msmes.province_code = $2::VARCHAR) AS p
LEFT OUTER JOIN LATERAL (SELECT regions.code AS code, regions.name AS name FROM regions
  WHERE regions.code = p.regency_code LIMIT 1) AS r1 ON true"""


def lookup_arguments(nib: str, province: str) -> tuple[str, str]:
    """LOOKUP's arguments: the NIB asked for and the client's province."""
    return nib, province


# The page of 50: the statement Sinergi runs for the page (tests/test_bench_floor.py keeps them
# equal), with the arguments it binds for a province-62 client. PostgreSQL writes the nodes' JSON.
PAGE = """SELECT CAST(coalesce(json_agg(json_build_object('nib', p.nib, 'name', p.name,
  'regency', CASE WHEN (r1.code IS NULL) THEN NULL ELSE json_build_object('name', r1.name,
  'province', CASE WHEN (r2.code IS NULL) THEN NULL ELSE json_build_object('name', r2.name) END)
  END, 'cooperative', CASE WHEN (c3.id IS NULL) THEN NULL ELSE json_build_object('name', c3.name)
  END) ORDER BY p.id) FILTER (WHERE p.n <= 50), '[]'::json) AS TEXT) AS coalesce_1,
  count(*) AS count_1, max(p.id) FILTER (WHERE p.n <= 50) AS anon_1,
  ARRAY[]::text[],
  coalesce(bool_or(p.name IS NULL OR r1.code IS NOT NULL AND (r1.name IS NULL OR r2.code IS NOT
  NULL AND r2.name IS NULL) OR r1.code IS NULL OR c3.id IS NOT NULL AND c3.name IS NULL)
  FILTER (WHERE p.n <= 50), false) AS coalesce_2,
  CAST(coalesce(sum(CASE WHEN (c3.id IS NULL) THEN 0 ELSE 1 END) FILTER (WHERE p.n <= 50), 0)
  AS BIGINT) AS coalesce_3, 0, 0
FROM (SELECT msmes.cooperative_id AS cooperative_id, msmes.id AS id, msmes.name AS name,
  msmes.nib AS nib, msmes.regency_code AS regency_code,
  row_number() OVER (ORDER BY msmes.id) AS n
FROM msmes
WHERE msmes.province_code = $1::VARCHAR AND msmes.province_code = $2::VARCHAR ORDER BY msmes.id
  LIMIT 51) AS p
LEFT OUTER JOIN LATERAL (SELECT regions.code AS code, regions.name AS name FROM regions
  WHERE regions.code = p.regency_code LIMIT 1) AS r1 ON true
LEFT OUTER JOIN LATERAL (SELECT regions.code AS code, regions.name AS name FROM regions
  WHERE regions.code = nullif(left(r1.code, $3::INTEGER), $4::VARCHAR) LIMIT 1) AS r2 ON true
LEFT OUTER JOIN LATERAL (SELECT cooperatives.id AS id, cooperatives.name AS name
  FROM cooperatives WHERE cooperatives.id = p.cooperative_id
  AND cooperatives.province_code = $5::VARCHAR LIMIT 1) AS c3 ON true"""


def page_arguments(province: str) -> tuple[str, str, int, str, str]:
    """PAGE's arguments: the filter's province, the client's, and how a regency names its
    province (its code's first two characters, unless that is the country)."""
    return province, province, 2, "ID", province


# National figures, as an API without figure releases would answer msmeFigures(groupBy:
# [PROVINCE, SCALE]): a CUBE over the live rollup table. Not Sinergi's statement (it reads its
# published release, and in the bench mostly its figure cache); no test compares the two.
AGGREGATE = """SELECT province_code, scale, GROUPING(province_code) AS g0, GROUPING(scale) AS g1,
                      CAST(coalesce(sum(n), 0) AS bigint) AS count,
                      CASE WHEN sum(turnover_n) > 0 THEN sum(turnover_sum) END AS turnover_sum
                 FROM msme_rollup_regency GROUP BY CUBE(province_code, scale)"""


async def typename(request: Request) -> Response:
    return Response(TYPENAME, media_type="application/json")


async def msme(request: Request) -> Response:
    pool: asyncpg.Pool = request.state.pool
    async with pool.acquire() as connection:
        row = await connection.fetchrow(
            LOOKUP, *lookup_arguments(request.query_params["nib"], "62")
        )
    node = b"null" if row is None else row[0].encode()
    return Response(b'{"data":{"msme":' + node + b"}}", media_type="application/json")


async def page(request: Request) -> Response:
    pool: asyncpg.Pool = request.state.pool
    province = request.query_params.get("province", "62")
    async with pool.acquire() as connection:
        nodes = await connection.fetchval(PAGE, *page_arguments(province))
    body = b'{"data":{"msmes":{"nodes":' + nodes.encode() + b"}}}"
    return Response(body, media_type="application/json")


async def aggregate(request: Request) -> Response:
    """The same cells as Sinergi's answer, exact (disclosure control is a pure function of them)."""
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


# Eligibility: the statements Sinergi runs to check an MSME by NIB for a Kalimantan Tengah
# partner (tests/test_bench_floor.py keeps them equal): the business's facts with the version of
# the product's rules in force, then the decision, stored. The terms are bench.run's ELIGIBILITY.
FACTS = """SELECT msmes.id, msmes.nib, msmes.sku_number, msmes.province_code, msmes.regency_code,
  msmes.established_on,
  msmes.capital, msmes.annual_turnover, msmes.is_active, (SELECT msme_owners.nik
  FROM msme_owners WHERE msme_owners.msme_id = msmes.id) AS owner_nik, EXISTS (SELECT *
  FROM participations, programmes WHERE participations.msme_id = msmes.id
  AND participations.status = $1::VARCHAR AND programmes.id = participations.programme_id
  AND programmes.kind = $2::VARCHAR) AS programme_credit, EXISTS (SELECT * FROM guarantees
  WHERE guarantees.msme_id = msmes.id AND guarantees.guarantor_client_id = $3::VARCHAR
  AND guarantees.province_code = $4::VARCHAR AND guarantees.status = $5::VARCHAR) AS defaulted,
  in_force.ruleset_version
FROM (SELECT (SELECT eligibility_rulesets.version FROM eligibility_rulesets
  WHERE eligibility_rulesets.product = $6::VARCHAR
  AND eligibility_rulesets.effective_from <= $7::DATE
  ORDER BY eligibility_rulesets.effective_from DESC, eligibility_rulesets.loaded_at DESC
  LIMIT $8::INTEGER) AS ruleset_version)
  AS in_force LEFT OUTER JOIN msmes ON msmes.nib = $9::VARCHAR
  AND msmes.province_code = $10::VARCHAR"""
STORE = """INSERT INTO eligibility_decisions (client_id, organisation, msme_id, cooperative_id,
  subject_key, province_code, regency_code, loan_amount, tenor_months, product, ruleset_version,
  check_date, facts, verdict, results, coverage_amount, estimated_fee, subject_nik) SELECT
  $1::VARCHAR AS
  client_id, $2::VARCHAR AS organisation, $3::BIGINT AS msme_id, $4::BIGINT AS cooperative_id,
  $5::VARCHAR AS subject_key, $6::VARCHAR AS province_code, $7::VARCHAR AS regency_code,
  $8::BIGINT AS loan_amount, $9::SMALLINT AS tenor_months, $10::VARCHAR AS product,
  $11::VARCHAR AS ruleset_version, $12::DATE AS check_date, CAST($13::VARCHAR AS JSONB) AS facts,
  $14::VARCHAR AS verdict, CAST($15::VARCHAR AS JSONB) AS results, $16::BIGINT AS
  coverage_amount, $17::BIGINT AS estimated_fee, $18::VARCHAR AS subject_nik
  WHERE $3::BIGINT IS NULL OR pg_try_advisory_xact_lock_shared(hashtext($19::VARCHAR))
  RETURNING eligibility_decisions.id, eligibility_decisions.client_id,
  eligibility_decisions.organisation, eligibility_decisions.msme_id,
  eligibility_decisions.cooperative_id, eligibility_decisions.subject_key,
  eligibility_decisions.province_code, eligibility_decisions.regency_code,
  eligibility_decisions.loan_amount, eligibility_decisions.tenor_months,
  eligibility_decisions.product, eligibility_decisions.ruleset_version,
  eligibility_decisions.check_date, eligibility_decisions.verdict,
  eligibility_decisions.coverage_amount,
  eligibility_decisions.estimated_fee, eligibility_decisions.decided_at,
  eligibility_decisions.reviewed_verdict, eligibility_decisions.reviewer,
  eligibility_decisions.review_reason, eligibility_decisions.reviewed_by_client,
  eligibility_decisions.reviewed_at, eligibility_decisions.subject_nik"""
PRODUCT, LOAN_AMOUNT, TENOR_MONTHS = "JAMKRIDA_KTG_PRODUKTIF", 50_000_000, 24
ATTESTATION = LenderAttestation(
    max_collectibility=1,
    has_other_productive_credit=False,
    feasibility_approved=True,
    on_national_blacklist=False,
    has_npwp=True,
)
FLOOR_CLIENT = "bench-floor"
_RULES: dict[str, RuleSet] = {}


def facts_arguments(nib: str, on: date, province: str, client_id: str) -> tuple[Any, ...]:
    """FACTS' arguments, as Sinergi binds them for the client `client_id` of `province`."""
    return (
        "active",
        "subsidised_credit",
        client_id,
        province,
        "defaulted",
        PRODUCT,
        on,
        1,
        nib,
        province,
    )


async def eligibility(request: Request) -> Response:
    """The decision Sinergi would store for the check, answered with its verdict."""
    pool: asyncpg.Pool = request.state.pool
    nib = orjson.loads(await request.body())["variables"]["nib"]
    on = today()
    async with pool.acquire() as connection:
        row = Row(await connection.fetchrow(FACTS, *facts_arguments(nib, on, "62", FLOOR_CLIENT)))
        rules = _RULES.get(row.ruleset_version)
        if rules is None:
            document = await connection.fetchval(
                "SELECT document FROM eligibility_rulesets WHERE product = $1 AND version = $2",
                PRODUCT,
                row.ruleset_version,
            )
            rules = _RULES[row.ruleset_version] = RuleSet.from_dict(orjson.loads(document))
        facts = EligibilityFacts(
            subject_kind=MSME,
            check_date=on,
            product=PRODUCT,
            loan_amount=LOAN_AMOUNT,
            tenor_months=TENOR_MONTHS,
            attestation=ATTESTATION,
            **registry_facts(MSME, row),
        )
        decision = evaluate(facts, rules)
        stored = await connection.fetchrow(
            STORE,
            FLOOR_CLIENT,
            FLOOR_CLIENT,
            row.id,
            None,
            nib,
            row.province_code,
            row.regency_code,
            LOAN_AMOUNT,
            TENOR_MONTHS,
            decision.product,
            decision.ruleset_version,
            on,
            orjson.dumps(facts.to_dict()).decode(),
            decision.decision.value,
            orjson.dumps(results_of(decision)).decode(),
            decision.coverage_amount,
            decision.estimated_fee,
            row.owner_nik,
            "sinergi.import",  # the import lock (db/writes/msmes.py), shared while it stores
        )
    body = {"data": {"checkEligibility": {"verdict": stored["verdict"]}}}
    return Response(orjson.dumps(body), media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b"ok")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    pool = await asyncpg.create_pool(url, min_size=4, max_size=10, server_settings=PLANNER_SETTINGS)
    yield {"pool": pool}
    await pool.close()


app = Starlette(
    routes=[
        Route("/typename", typename),
        Route("/msme", msme),
        Route("/page", page),
        Route("/aggregate", aggregate),
        Route("/eligibility", eligibility, methods=["POST"]),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
