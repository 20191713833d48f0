"""Figures filtered to a programme's participants, as a bank, a ministry or another province
would read them. Who takes part in a programme is not theirs to know (participations are
records), yet a bank knows its own applicant's regency, scale, KBLI section and founding year.
Were a cell of the filtered table published suppressed, its key would say that some participant
has those attributes: the demo grant PR-BANPROD-22 has one recipient, and a table by regency
and scale (or section and founding year, or regency and activity) showed the one cell its
recipient makes, so the bank learnt that its applicant got the grant, and from a missing cell
that another did not. A cell, or a part of one, too small to show is now left out as an empty
one is: the grant's tables look exactly like those of a programme no business takes part in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import Principal
from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.graphql import principal, run

GRANT = "PR-BANPROD-22"
"""A Kalteng grant whose only recipient is the demo MSME 9990000000001."""
NOBODY = "PR-KOPPROD-62"
"""A programme no MSME takes part in."""
RECIPIENT = "9990000000001"
BUMD = principal(OrgKind.BUMD, "62")
MINISTRY = principal(OrgKind.MINISTRY, "ID")
KALBAR = principal(OrgKind.PROVINCE, "61")
KALTENG = principal(OrgKind.PROVINCE, "62")
GROUPINGS = (["REGENCY", "SCALE"], ["KBLI_SECTION", "ESTABLISHED_YEAR"], ["REGENCY", "ACTIVE"], [])


@pytest.fixture(scope="module")
async def engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


async def _recipient(engine: AsyncEngine) -> dict[str, str]:
    """The attributes the bank knows of its applicant, as figure keys spell them."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT regency_code, scale, kbli_section, is_active,"
                    " extract(year FROM established_on)::int AS year FROM msmes WHERE nib = :nib"
                ),
                {"nib": RECIPIENT},
            )
        ).one()
    return {
        "REGENCY": row.regency_code,
        "SCALE": row.scale,
        "KBLI_SECTION": row.kbli_section,
        "ACTIVE": "true" if row.is_active else "false",
        "ESTABLISHED_YEAR": str(row.year),
    }


async def _figures(
    engine: AsyncEngine, who: Principal, group_by: list[str], given: str, root: str = "msme"
) -> list[dict[str, Any]]:
    document = (
        f"{{ {root}Figures(groupBy: [{', '.join(group_by)}], filter: {{{given}}}) "
        "{ key { dimension value } suppressed count } }"
    )
    result = await run(engine, who, document)
    assert result.errors is None, result.errors
    cells: list[dict[str, Any]] = result.data[f"{root}Figures"]
    return cells


@pytest.mark.parametrize("who", [BUMD, MINISTRY, KALBAR], ids=["bumd", "ministry", "kalbar"])
@pytest.mark.parametrize("group_by", GROUPINGS, ids=lambda g: "-".join(g) or "total")
async def test_a_lone_participant_leaves_no_trace_for_those_who_may_not_read_it(
    engine: AsyncEngine, who: Principal, group_by: list[str]
) -> None:
    """The grant's table is the table of a programme nobody takes part in, by any grouping
    and also with the recipient's attributes as filters: no cell, no key, no total."""
    recipient = await _recipient(engine)
    grant = await _figures(engine, who, group_by, f'programme: "{GRANT}"')
    assert grant == await _figures(engine, who, group_by, f'programme: "{NOBODY}"')
    assert grant == []
    narrowed = (
        f'programme: "{GRANT}", region: "{recipient["REGENCY"]}", '
        f'scale: {recipient["SCALE"].upper()}, kbliSection: "{recipient["KBLI_SECTION"]}"'
    )
    assert await _figures(engine, who, group_by, narrowed) == []


@pytest.mark.parametrize("who", [BUMD, MINISTRY], ids=["bumd", "ministry"])
async def test_a_lone_cooperative_participant_leaves_no_trace_either(
    engine: AsyncEngine, who: Principal
) -> None:
    """PR-LATIH-64 trained the board of one Kaltim cooperative."""
    given = 'programme: "PR-LATIH-64"'
    assert await _figures(engine, who, ["REGENCY", "TYPE"], given, "cooperative") == []


async def test_the_province_of_the_participant_still_sees_it_exactly(engine: AsyncEngine) -> None:
    """Kalteng reads its own records and their participations: its view is exempt, and
    unchanged, nationally as in its own region."""
    recipient = await _recipient(engine)
    for given in (f'programme: "{GRANT}"', f'programme: "{GRANT}", region: "62"'):
        cells = await _figures(engine, KALTENG, ["REGENCY", "SCALE"], given)
        shown = {tuple(part["value"] for part in cell["key"]): cell for cell in cells}
        cell = shown[(recipient["REGENCY"], recipient["SCALE"])]
        assert (cell["suppressed"], cell["count"]) == (False, 1)
        assert shown[(None, None)]["count"] == 1


async def _lone_business(engine: AsyncEngine) -> tuple[str, str]:
    """A Kaltim regency and KBLI section with one business of the register (which the public NIB
    register names), outside every reader's jurisdiction here."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT regency_code, kbli_section FROM msmes WHERE province_code = '64'"
                    " GROUP BY 1, 2 HAVING count(*) = 1 ORDER BY 1, 2 LIMIT 1"
                )
            )
        ).one()
    return row.regency_code, row.kbli_section


@pytest.mark.parametrize("who", [BUMD, MINISTRY, KALBAR], ids=["bumd", "ministry", "kalbar"])
async def test_a_lone_business_scale_leaves_no_trace(engine: AsyncEngine, who: Principal) -> None:
    """A scale is its owner's finances (a turnover band), not the register's: a cell's key alone
    said it. The lone business of a regency and section answered `suppressed` to its own
    scale's filter and 0 to the others', and showed one suppressed `{small}` cell by scale; a
    province by founding year and scale read the scale of most of its businesses. Cells of a
    scale too few to show are now left out, as a programme's are: every scale answers alike."""
    regency, section = await _lone_business(engine)
    given = f'region: "{regency}", kbliSection: "{section}"'
    answers = [
        await _figures(engine, who, [], f"{given}, scale: {scale}")
        for scale in ("MICRO", "SMALL", "MEDIUM", "LARGE")
    ]
    assert all(answer == answers[0] for answer in answers), answers
    for group_by, filtered in [(["SCALE"], given), (["ESTABLISHED_YEAR", "SCALE"], 'region: "64"')]:
        cells = await _figures(engine, who, group_by, filtered)
        assert not any(cell["suppressed"] for cell in cells), (group_by, cells)


async def test_the_province_of_a_lone_business_still_sees_its_scale(engine: AsyncEngine) -> None:
    """Kaltim reads its own records: its view is exempt, and unchanged."""
    regency, section = await _lone_business(engine)
    given = f'region: "{regency}", kbliSection: "{section}"'
    cells = await _figures(engine, principal(OrgKind.PROVINCE, "64"), ["SCALE"], given)
    assert [cell["count"] for cell in cells if cell["key"][0]["value"] is not None] == [1]


GRADUATIONS = """{ graduations(year: 2025, groupBy: [REGENCY, FROM_SCALE, TO_SCALE], region: "62") {
  key { value } suppressed count } }"""


@pytest.mark.parametrize("who", [BUMD, MINISTRY, KALBAR], ids=["bumd", "ministry", "kalbar"])
async def test_a_lone_graduate_leaves_no_trace_either(engine: AsyncEngine, who: Principal) -> None:
    """Whose sales passed a threshold in a year is a past turnover band of each business: a cell
    of a regency's graduates too few to show is left out, key and all, as a programme's is, so
    no reader learns that some business there (one it may know) grew. Kalteng sees them all."""
    result = await run(engine, who, GRADUATIONS)
    assert result.errors is None, result.errors
    assert not any(cell["suppressed"] for cell in result.data["graduations"])
    own = await run(engine, KALTENG, GRADUATIONS)
    assert own.errors is None, own.errors
    assert own.data["graduations"]
    assert not any(cell["suppressed"] for cell in own.data["graduations"])
