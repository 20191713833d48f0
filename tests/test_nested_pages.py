"""A record's participations and the histories of records are pages, as the cost counts them.

Each grows with every write (a participation under any role, a change per update), so answered
whole they let one writer make every reader of the record download all of it, while the cost
estimate counted twenty or fifty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.graphql import principal, run
from tests.support.statements import recorded_statements
from tests.test_limits import _cost

KALTENG = principal(OrgKind.PROVINCE, "62")
LEGAL_NO = "AHU-7779901.AH.01.26.TAHUN 2021"
MANY = 25


@pytest.fixture(scope="module")
async def engine(reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


async def _answer(engine: AsyncEngine, document: str) -> Any:
    result = await run(engine, KALTENG, document)
    assert result.errors is None, result.errors
    return result.data


@pytest.fixture(scope="module")
async def cooperative(engine: AsyncEngine) -> str:
    """A cooperative with MANY participations, MANY changes, and a participation with MANY."""
    created = await _answer(
        engine,
        f"""mutation {{ createCooperative(input: {{legalEntityNo: "{LEGAL_NO}",
            name: "Koperasi Produsen Halaman", type: PRODUSEN, region: "62.01",
            membersMale: 30, membersFemale: 25, businessVolume: "1500000000"}}) {{ id }} }}""",
    )
    record: str = created["createCooperative"]["id"]
    added = await _answer(
        engine,
        "mutation { "
        + " ".join(
            f'p{n}: addParticipation(input: {{programmeId: "PR-MMM", cooperativeId: "{record}", '
            f'role: "role-{n:02d}"}}) {{ id }}'
            for n in range(MANY)
        )
        + " }",
    )
    participation = added["p0"]["id"]
    await _answer(
        engine,
        "mutation { "
        + " ".join(
            f'c{n}: updateCooperative(id: "{record}", version: {n}, '
            f"changes: {{membersFemale: {25 + n}}}) {{ version }}"
            for n in range(1, MANY)
        )
        + " "
        + " ".join(
            f'd{n}: updateParticipation(id: "{participation}", version: {n}, '
            f'changes: {{detail: "batch {n}"}}) {{ version }}'
            for n in range(1, MANY)
        )
        + " }",
    )
    return record


def _of(data: Any) -> Any:
    return data["cooperative"]


def _lookup(selection: str) -> str:
    return f'{{ cooperative(legalEntityNo: "{LEGAL_NO}") {{ {selection} }} }}'


async def test_participations_and_histories_answer_the_default_page(
    engine: AsyncEngine, cooperative: str
) -> None:
    """Resolved field by field (the history is guarded, so the selection is not compiled)."""
    found = _of(
        await _answer(
            engine,
            _lookup("changes { version } participations { role changes { version } }"),
        )
    )
    # A history answers its end: the latest twenty, in the order they happened.
    assert [change["version"] for change in found["changes"]] == list(range(MANY - 19, MANY + 1))
    assert [p["role"] for p in found["participations"]] == [f"role-{n:02d}" for n in range(20)]
    latest = found["participations"][0]["changes"]
    assert [change["version"] for change in latest] == list(range(MANY - 19, MANY + 1))


async def test_a_page_of_them_is_as_large_as_first_asks_and_no_larger(
    engine: AsyncEngine, cooperative: str
) -> None:
    found = _of(
        await _answer(
            engine,
            _lookup(
                "changes(first: 100) { version } "
                "participations(first: 100) { role changes(first: 2) { version } }"
            ),
        )
    )
    assert len(found["changes"]) == MANY
    assert len(found["participations"]) == MANY
    assert [change["version"] for change in found["participations"][0]["changes"]] == [
        MANY - 1,
        MANY,
    ]
    for field in ("changes", "participations"):
        refused = await run(
            engine,
            KALTENG,
            _lookup(f"{field}(first: 101) {{ __typename }}"),
        )
        (error,) = refused.errors
        assert error.extensions["code"] == "BAD_USER_INPUT"
        assert error.message.startswith("first: must be between 1 and 100")


@pytest.mark.parametrize("first", ["", "(first: 3)"])
async def test_a_compiled_record_pages_its_participations_in_its_one_statement(
    engine: AsyncEngine, cooperative: str, first: str
) -> None:
    with recorded_statements(engine) as statements:
        found = _of(
            await _answer(
                engine,
                _lookup(f"participations{first} {{ role }}"),
            )
        )
    assert len(found["participations"]) == (3 if first else 20)
    (read,) = [sql for sql in statements if "participations" in sql]
    assert "json_agg" in read


@pytest.mark.parametrize(("first", "page"), [("", 20), ("(first: 100)", 100)])
def test_each_is_costed_by_the_page_it_answers(first: str, page: int) -> None:
    query = (
        f"{{ msmes(first: 10) {{ nodes {{ changes{first} {{ version }} "
        f"participations{first} {{ role changes{first} {{ version }} }} }} }} }}"
    )
    # msmes, nodes, an MSME's changes and participations, each page's items, a participation's
    # changes and theirs: every list counted as long as the page it answers
    assert _cost(query, {}) == 1 + 10 + 10 + 10 * page + 10 + 10 * page + 10 * page + 10 * page**2
