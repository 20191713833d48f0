"""`sinergi demo-data` reloads cleanly whatever was recorded about the demo businesses since:
eligibility decisions, a guarantee and its status changes (what the README's examples create),
and it leaves real businesses' records and decisions alone."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import asyncpg
import pytest
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from auth import clients
from auth.scopes import OrgKind, Scope
from db.engine import async_url
from db.models import ELIGIBILITY_DECISIONS, GUARANTEE_STATUS_CHANGES, GUARANTEES, MSMES, TARGETS
from sinergi.app import create_app
from sinergi.cli import main
from sinergi.settings import Settings
from tests.support.cli import sinergi
from tests.support.clock import Clock
from tests.support.databases import as_service
from tests.support.demo_data import demo_clients
from tests.support.graphql import principal, run
from tests.support.http import Api
from tests.test_eligibility_api import CHECKED_ON, ISSUED_BY

CHECK = """
mutation Check($nib: String!) {
  checkEligibility(request: {
    nib: $nib, product: "JAMKRIDA_KTG_PRODUKTIF", loanAmount: "50000000", tenorMonths: 24,
    checkDate: "2026-01-15",
    attestation: {maxCollectibility: 1, hasOtherProductiveCredit: false,
                  feasibilityApproved: true, onNationalBlacklist: false}
  }) { id verdict }
}
"""
GUARANTEE = """
mutation Guarantee($decision: ID!) {
  recordGuarantee(guarantee: {decisionId: $decision, bank: "Bank Kalteng",
                              startsOn: "2026-01-20", endsOn: "2028-01-20"}) { id }
}
"""
DEFAULT = """
mutation Default($id: ID!) {
  changeGuaranteeStatus(guaranteeId: $id, status: DEFAULTED, effectiveOn: "2026-10-01") { status }
}
"""
CREATE = """
mutation {
  createMsme(input: {nib: "1234567890123", name: "Usaha Nyata", kbliCode: "10710",
                     region: "62.71", annualTurnover: "300000000", employees: 3}) { id }
}
"""


def _demo_data(url: str, *options: str) -> int:
    return _demo_data_said(url, *options)[0]


def _demo_data_said(url: str, *options: str) -> tuple[int, str]:
    """`sinergi demo-data` with `options` (40 businesses unless they say otherwise): its exit
    code and what it wrote to stderr."""
    said = io.StringIO()
    with (
        mock.patch.dict(os.environ, {"DATABASE_URL": url}),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(said),
    ):
        code = main(["demo-data", "--msmes", "40", *options])
    return code, said.getvalue()


def _count(url: str, table: Table) -> int:
    async def count() -> int:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as connection:
                query = select(func.count()).select_from(table)
                return int((await connection.execute(query)).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def _ok(answer: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]
    return data


def test_demo_data_reloads_after_eligibility_checks_and_guarantees(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _demo_data(fresh_url) == 0

    demo_clients(fresh_url)
    settings = Settings(rate_limit=1_000_000)
    with TestClient(create_app(settings, database_url=as_service(fresh_url))) as client:
        api = Api(client)
        real = _ok(api.graphql(CREATE, "demo-province-62"))
        assert real["createMsme"]["id"]
        clock = Clock(monkeypatch, CHECKED_ON)
        for nib in ("9990000000001", "1234567890123"):
            decision = _ok(api.graphql(CHECK, "demo-jamkrida-62", {"nib": nib}))
            assert decision["checkEligibility"]["id"]
        demo_decision = _ok(api.graphql(CHECK, "demo-jamkrida-62", {"nib": "9990000000002"}))
        guarantee = _ok(
            api.graphql(
                GUARANTEE,
                "demo-jamkrida-62",
                {"decision": demo_decision["checkEligibility"]["id"]},
            )
        )
        clock.day = ISSUED_BY
        _ok(api.graphql(DEFAULT, "demo-jamkrida-62", {"id": guarantee["recordGuarantee"]["id"]}))
    assert _count(fresh_url, ELIGIBILITY_DECISIONS) == 3

    assert _demo_data(fresh_url) == 0
    assert _count(fresh_url, GUARANTEES) == 0
    assert _count(fresh_url, GUARANTEE_STATUS_CHANGES) == 0
    assert _count(fresh_url, ELIGIBILITY_DECISIONS) == 1  # the real business's stays
    assert _demo_data(fresh_url) == 0  # and again, with nothing recorded in between


REAL_IN_THE_DEMO_RANGE = """
mutation {
  createMsme(input: {nib: "9997781000001", name: "Usaha Nyata 999", kbliCode: "10710",
                     region: "62.71", annualTurnover: "300000000", employees: 3,
                     owner: {nik: "6271011505907781", fullName: "Pemilik Nyata"}}) { id }
  createCooperative(input: {legalEntityNo: "AHU-9997781.AH.01.26.TAHUN 2021",
                            name: "Koperasi Nyata 999", type: PRODUSEN, region: "62.01",
                            membersMale: 30, membersFemale: 25}) { id }
  clash: createMsme(input: {nib: "9991000000045", name: "Usaha Nyata 9991", kbliCode: "10710",
                            region: "62.71", annualTurnover: "300000000", employees: 3}) { id }
}
"""
READ_REAL = """
{
  msme(nib: "9997781000001") { id name owner { nik } }
  cooperative(legalEntityNo: "AHU-9997781.AH.01.26.TAHUN 2021") { id }
}
"""
DEMO_ID = '{ msme(nib: "9990000000001") { id } }'


async def _listing_as_service(url: str) -> None:
    """Whoever holds the service's credentials can list no record as demo."""
    connection = await asyncpg.connect(as_service(url))
    try:
        for statement in (
            "INSERT INTO demo_msmes SELECT id FROM msmes WHERE nib = '9997781000001'",
            "DELETE FROM demo_msmes",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(statement)
    finally:
        await connection.close()


def test_demo_data_keeps_real_records_whose_identifiers_are_in_the_demo_range(
    fresh_url: str,
) -> None:
    """OSS draws NIBs at random, so a real business may hold a 999… NIB (and a cooperative an
    AHU-999… number): a reload deletes only what the demo loaded, and still replaces that."""
    assert _demo_data(fresh_url) == 0

    demo_clients(fresh_url)
    settings = Settings(rate_limit=1_000_000)
    with TestClient(create_app(settings, database_url=as_service(fresh_url))) as client:
        api = Api(client)
        created = _ok(api.graphql(REAL_IN_THE_DEMO_RANGE, "demo-province-62"))
        demo_before = _ok(api.graphql(DEMO_ID, "demo-province-62"))["msme"]["id"]
    asyncio.run(_listing_as_service(fresh_url))

    assert _demo_data(fresh_url) == 0
    assert _demo_data(fresh_url) == 0
    with TestClient(create_app(settings, database_url=as_service(fresh_url))) as client:
        api = Api(client)
        kept = _ok(api.graphql(READ_REAL, "demo-province-62"))
        demo_after = _ok(api.graphql(DEMO_ID, "demo-province-62"))["msme"]["id"]
    assert kept["msme"] == {
        "id": created["createMsme"]["id"],
        "name": "Usaha Nyata 999",
        "owner": {"nik": "6271011505907781"},
    }
    assert kept["cooperative"] == {"id": created["createCooperative"]["id"]}
    assert demo_after != demo_before  # the demo's own records were deleted and loaded again

    # A real record holding a number the demo loads (its 46th synthetic business's) stops it.
    code, said = _demo_data_said(fresh_url, "--msmes", "50")
    assert code == 2
    assert "a record the demo did not load holds one of the numbers it loads" in said
    assert "nothing was loaded or deleted" in said
    with TestClient(create_app(settings, database_url=as_service(fresh_url))) as client:
        assert _ok(Api(client).graphql(DEMO_ID, "demo-province-62"))["msme"]["id"] == demo_after


async def _register_a_real_client(url: str) -> None:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as connection:
            await clients.create(
                connection,
                client_id="dinas-7778",
                name="Dinas Koperasi (nyata)",
                org_kind="province",
                jurisdiction="62",
                scopes=None,
                purpose="pembinaan UMKM",
            )
            await clients.revoke(connection, "dinas-7778")  # revoked, its records stay real
    finally:
        await engine.dispose()


SSO_USER = "https://sso.example#dinas@province:62"
WRITTEN_BY_SSO = """
WITH written AS (
    INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code, regency_code,
                       district_code)
    VALUES ('7776200000001', 'Usaha Nyata', '10794', 'C', 'micro', '62', '62.71', '62.71.01')
    RETURNING id
)
INSERT INTO record_changes (client_id, organisation, record_kind, record_id, operation, version,
                            changes)
SELECT $1, 'Dinas Koperasi (SSO)', 'msme', id, 'create', 1, '{}' FROM written
"""
TRUSTED_SSO = '[{"issuer": "https://sso.example", "jwks_url": "https://sso.example/jwks",'
TRUSTED_SSO += ' "audience": "sinergi"}]'


SSO_READER = "https://sso.example#bank@bank:62"


async def _read_through_an_sso(url: str) -> None:
    """An audit entry of SSO_READER, as a read of personal data leaves (here, as the owner)."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
            " VALUES ($1, '{}', '{}', repeat('0', 64), md5(random()::text))",
            SSO_READER,
        )
    finally:
        await connection.close()


async def _written_through_an_sso(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(WRITTEN_BY_SSO, SSO_USER)
    finally:
        await connection.close()


def test_demo_data_refuses_a_database_with_clients_besides_the_demos(fresh_url: str) -> None:
    """A database with a real client serves real organisations: a synthetic population would
    join their records and figures, so `demo-data` refuses, loading nothing, unless told to. So
    does one whose users come through an SSO, who have no client row here: a server trusting
    one, a record one of its users wrote, or an audit entry of one that only read."""
    assert _demo_data(fresh_url) == 0
    before = _count(fresh_url, MSMES)

    with mock.patch.dict(os.environ, {"SINERGI_EXTERNAL_ISSUERS": TRUSTED_SSO}):
        code, said = _demo_data_said(fresh_url, "--msmes", "45")
    assert code == 2
    assert "clients besides the demo's ('https://sso.example')" in said
    assert _count(fresh_url, MSMES) == before

    # A partner that only reads through an SSO writes no record nor import: it is in the trail.
    asyncio.run(_read_through_an_sso(fresh_url))
    code, said = _demo_data_said(fresh_url, "--msmes", "45")
    assert code == 2
    assert f"clients besides the demo's ({SSO_READER!r})" in said
    assert _count(fresh_url, MSMES) == before

    asyncio.run(_written_through_an_sso(fresh_url))
    code, said = _demo_data_said(fresh_url, "--msmes", "45")
    assert code == 2
    assert f"clients besides the demo's ({SSO_USER!r}, {SSO_READER!r})" in said
    assert _count(fresh_url, MSMES) == before + 1

    asyncio.run(_register_a_real_client(fresh_url))
    code, said = _demo_data_said(fresh_url, "--msmes", "45")
    assert code == 2
    assert f"clients besides the demo's ('dinas-7778', {SSO_USER!r}, {SSO_READER!r})" in said
    assert "--alongside-clients" in said
    assert _count(fresh_url, MSMES) == before + 1

    assert _demo_data(fresh_url, "--msmes", "45", "--alongside-clients") == 0
    assert _count(fresh_url, MSMES) == before + 6


def test_demo_data_names_a_principal_the_trail_holds_escaped(fresh_url: str) -> None:
    """The service's role may add to the audit trail, so an insider holding its credentials
    chooses the ids `demo-data`'s refusal names: printed raw, a terminal escape in one would
    rewrite the operator's screen (or its title, or what a paste runs)."""
    forged = "bank\x1b]0;owned\x07\x1b[2J\u202e"

    async def write() -> None:
        connection = await asyncpg.connect(as_service(fresh_url))
        try:
            await connection.execute(
                "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
                " VALUES ($1, '{}', '{}', repeat('0', 64), md5(random()::text))",
                forged,
            )
        finally:
            await connection.close()

    asyncio.run(write())
    code, said = _demo_data_said(fresh_url)
    assert code == 2
    assert f"clients besides the demo's ({forged!r})" in said
    assert not {"\x1b", "\x07", "\u202e"}.intersection(said)
    # `clients reset-demo` refuses the same database, naming the same ids the same way.
    code, _, said = sinergi(fresh_url, "clients", "reset-demo")
    assert code == 2
    assert f"clients besides the demo's ({forged!r})" in said


PLANNED = """{
  volume: indicator(code: "KOP_PRODUKSI_VOLUME") {
    targets { jurisdiction { code } year kind value source } }
  producers: indicator(code: "KOP_PRODUSEN_JUMLAH") {
    realisations(jurisdiction: "62", year: 2025) { value reportedBy } }
}"""
REPORTED = """mutation { reportRealisation(report: {indicator: "KOP_PRODUSEN_JUMLAH",
  jurisdiction: "62", year: 2025, value: "1400", source: "Laporan Dinas Koperasi Kalteng"})
  { value } }"""


def test_demo_data_alongside_clients_keeps_their_targets_and_realisations(
    fresh_url: str, tmp_path: Path
) -> None:
    """Loaded alongside real clients, the demo replaced the target an operator had loaded for a
    key its own file has, and stored its realisation for a key a province had reported, noted
    now: the demo's figure read as the latest. What is stored is kept; the demo fills only what
    nobody has set."""
    path = tmp_path / "rpjmd.csv"
    path.write_text(
        "indicator,jurisdiction,year,kind,value,source\n"
        "KOP_PRODUKSI_VOLUME,62,2025,target,300000000000,RPJMD Kalteng 2025-2029\n",
        encoding="utf-8",
    )
    assert sinergi(fresh_url, "targets", "load", str(path))[0] == 0
    province = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.TARGETS_WRITE}))

    async def graphql(document: str) -> Any:
        engine = create_async_engine(async_url(as_service(fresh_url)))
        try:
            result = await run(engine, province, document)
        finally:
            await engine.dispose()
        assert result.errors is None, result.errors
        return result.data

    asyncio.run(graphql(REPORTED))
    before = asyncio.run(graphql(PLANNED))
    assert _demo_data(fresh_url, "--alongside-clients") == 0
    assert asyncio.run(graphql(PLANNED)) == before
    assert before["volume"]["targets"] == [
        {"jurisdiction": {"code": "62"}, "year": 2025, "kind": "target", "value": "300000000000",
         "source": "RPJMD Kalteng 2025-2029"}
    ]  # fmt: skip
    assert [row["value"] for row in before["producers"]["realisations"]] == ["1400"]


VOLUME_TARGET = (
    (TARGETS.c.indicator_code == "KOP_PRODUKSI_VOLUME")
    & (TARGETS.c.jurisdiction == "62")
    & (TARGETS.c.year == 2025)
    & (TARGETS.c.kind == "target")
)
"""The stored target of the demo's file's row for KOP_PRODUKSI_VOLUME in Kalteng, 2025."""


def test_demo_data_updates_its_own_targets_to_a_new_edition(fresh_url: str) -> None:
    """The demo's targets were inserted only where none was stored, so a new edition of its
    targets.csv never reached a database it had loaded before: its own stored targets (the
    same source as its file's) are brought to the file's values; an operator's of another source
    are kept (the test above)."""

    async def stored(value: int | None = None) -> Decimal:
        engine = create_async_engine(async_url(fresh_url))
        try:
            async with engine.begin() as connection:
                if value is not None:  # as an earlier edition of the demo's file stored it
                    await connection.execute(
                        update(TARGETS).where(VOLUME_TARGET).values(value=value)
                    )
                result: Decimal = (
                    await connection.execute(select(TARGETS.c.value).where(VOLUME_TARGET))
                ).scalar_one()
                return result
        finally:
            await engine.dispose()

    assert _demo_data(fresh_url) == 0
    current = asyncio.run(stored())
    assert asyncio.run(stored(1)) == 1
    assert _demo_data(fresh_url) == 0
    assert asyncio.run(stored()) == current == Decimal("222000000000")


def test_demo_data_takes_a_target_loaded_with_its_own_source_for_its_own(
    fresh_url: str, tmp_path: Path
) -> None:
    """A target is told the demo's by its source alone: an operator who loaded the very
    document the demo cites, quoted as the demo's file quotes it, sees the demo's value in its
    place, as the README says (it promised such a target was kept)."""
    cited = "Rakortek Perencanaan 2025 (Kemendagri, Bappenas and KemenKopUKM, online, 25 Feb 2025)"
    path = tmp_path / "rakortek.csv"
    path.write_text(
        "indicator,jurisdiction,year,kind,value,source\n"
        f'KOP_PRODUKSI_VOLUME,62,2025,target,300000000000,"{cited}"\n',
        encoding="utf-8",
    )
    assert sinergi(fresh_url, "targets", "load", str(path))[0] == 0

    async def stored() -> Any:
        engine = create_async_engine(async_url(fresh_url))
        try:
            async with engine.connect() as connection:
                query = select(TARGETS.c.value, TARGETS.c.source).where(VOLUME_TARGET)
                return tuple((await connection.execute(query)).one())
        finally:
            await engine.dispose()

    assert asyncio.run(stored()) == (Decimal("300000000000"), cited)
    assert _demo_data(fresh_url, "--alongside-clients") == 0
    assert asyncio.run(stored()) == (Decimal("222000000000"), cited)
