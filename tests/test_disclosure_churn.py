"""A province that may write records attacks a national figure cell holding other provinces'
businesses: it knows its own part of the cell exactly, and it can move its own records in and
out of the cell as often as it likes. Were the cell's noise keyed on all its records, each move
would draw the noise afresh, and averaging (national minus own) over many moves would give the
other businesses' values. Its own part is published exactly instead, and the others' perturbed
with a key of their records alone, which it cannot move. Moves show in perturbed figures only
at the next figure release (db/releases.py); the tests make one after each.

Other writers' moves are another's to make, and each would draw the others' noise afresh: a
ministry reading the nation less the provinces it is shown would average the readings down to
a hidden part. They show only at the next release, however many there are in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sinergi.settings import Settings
from tests.support.demo_data import demo_clients, release_figures
from tests.support.http import Api, served

CREATE = "mutation($input: CreateMsmeInput!) { createMsme(input: $input) { id } }"
FIGURES = """query($filter: MsmeFilter) {
  msmeFigures(groupBy: [SCALE], filter: $filter) {
    key { value } suppressed count turnoverSum capitalSum
  }
}"""
KALTENG, KALBAR = "demo-province-62", "demo-province-61"
# Each perturbed part below holds 10 records or more: noise of at most 5 never takes it under
# k (5), so no cell a test reads is hidden, whatever keys the records drew.


@pytest.fixture(scope="module")
def api(module_reference_url: str) -> Iterator[Api]:
    demo_clients(module_reference_url)
    # No figure cache: each table is computed afresh from the records as they are.
    settings = Settings(rate_limit=1_000_000, figures_cache_seconds=0)
    with served(module_reference_url, settings) as served_api:
        yield served_api


@pytest.fixture(scope="module")
def release(module_reference_url: str) -> Callable[[], object]:
    """Make a figure release now: what perturbed figures read from then on."""
    return lambda: release_figures(module_reference_url)


def _create(api: Api, client: str, n: int, region: str, kbli: str, millions: int) -> None:
    """An MSME of `region`, with turnover and capital of about `millions` million rupiah."""
    business = {
        "nib": f"{region[:2]}{kbli}{n:06d}",
        "name": f"Usaha Uji {n}",
        "kbliCode": kbli,
        "region": region,
        "annualTurnover": str(millions * 1_000_000 + n * 1_000),
        "capital": str(millions * 400_000),
    }
    answer = api.graphql(CREATE, client, {"input": business})
    assert "errors" not in answer, answer


def _cell(api: Api, client: str, scale: str, **filter: str) -> dict[str, Any]:
    answer = api.graphql(FIGURES, client, {"filter": filter})
    assert "errors" not in answer, answer
    (cell,) = (c for c in answer["data"]["msmeFigures"] if c["key"][0]["value"] == scale)
    return dict(cell)


def _others(api: Api, kbli_section: str, scale: str) -> tuple[int, int, int]:
    """The national cell as Kalteng is shown it, less Kalteng's own exact part: what it learns
    of the other provinces' businesses."""
    national = _cell(api, KALTENG, scale, kbliSection=kbli_section)
    own = _cell(api, KALTENG, scale, kbliSection=kbli_section, region="62")
    assert not national["suppressed"]
    assert not own["suppressed"]
    return (
        national["count"] - own["count"],
        int(national["turnoverSum"]) - int(own["turnoverSum"]),
        int(national["capitalSum"]) - int(own["capitalSum"]),
    )


def test_moving_its_own_records_into_a_national_cell_draws_no_new_noise(
    api: Api, release: Callable[[], object]
) -> None:
    for n in range(12):  # other provinces' small retailers (KBLI 47111, section G)
        _create(api, KALBAR, n, "61.71", "47111", 4_000)
    for n in range(3):
        _create(api, KALTENG, n, "62.71", "47111", 5_000)
    release()
    others = _others(api, "G", "small")
    ministry = _cell(api, "demo-ministry", "small", kbliSection="G")
    for n in range(3, 6):  # one more of its own each time: each time a new set of records
        _create(api, KALTENG, n, "62.71", "47111", 5_000)
        release()
        assert _others(api, "G", "small") == others
        assert _cell(api, "demo-ministry", "small", kbliSection="G") != ministry  # a new draw
        ministry = _cell(api, "demo-ministry", "small", kbliSection="G")


def test_its_own_records_do_not_lift_another_business_over_the_threshold(
    api: Api, release: Callable[[], object]
) -> None:
    """One medium manufacturer in Kalbar and five of Kalteng's own: five of the six records are
    Kalteng's, but the one other is still a cell of one business, and stays hidden: in a table
    by scale, left out as if it held none, its own part alone shown."""
    _create(api, KALBAR, 100, "61.71", "10710", 30_000)
    for n in range(100, 105):
        _create(api, KALTENG, n, "62.71", "10710", 30_000)
    release()
    own = _cell(api, KALTENG, "medium", kbliSection="C", region="62")
    assert (own["count"], own["suppressed"]) == (5, False)
    national = _cell(api, KALTENG, "medium", kbliSection="C")
    assert not national["suppressed"]
    assert (national["count"], national["turnoverSum"]) == (5, own["turnoverSum"])


def test_a_narrowed_token_cannot_draw_the_others_noise_again_either(
    api: Api, release: Callable[[], object]
) -> None:
    """The same client asks for a token of `aggregates:read` alone, which reads no records, so
    its own part is perturbed too: on a key of its own. The national cell less its own region's
    cell (the same own records, the same key) is the others' part, unmoved by its moves."""
    narrow = api.token(KALTENG, scope="aggregates:read")

    def cell(**filter: str) -> dict[str, Any]:
        answer = api.post({"query": FIGURES, "variables": {"filter": filter}}, narrow).json()
        assert "errors" not in answer, answer
        (found,) = (c for c in answer["data"]["msmeFigures"] if c["key"][0]["value"] == "small")
        assert not found["suppressed"]
        return dict(found)

    def others() -> tuple[int, int]:
        national, own = cell(kbliSection="I"), cell(kbliSection="I", region="62")
        return national["count"] - own["count"], int(national["turnoverSum"]) - int(
            own["turnoverSum"]
        )

    for n in range(200, 212):  # other provinces' small restaurants (KBLI 56101, section I)
        _create(api, KALBAR, n, "61.71", "56101", 4_000)
    for n in range(200, 210):
        _create(api, KALTENG, n, "62.71", "56101", 5_000)
    release()
    seen = others()
    for n in range(210, 213):
        _create(api, KALTENG, n, "62.71", "56101", 5_000)
        release()
        assert others() == seen
