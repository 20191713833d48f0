"""A figure table served from the cache is never from a release older than the one its process
reads: keyed on the document, variables and caller alone, a table cached before a release was
served under the next one for as long as the cache kept it, while `figureRelease` (never
cached) already named the new release, so a dashboard storing "figures as of release N" stored
release N-1's numbers under N's label."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from sinergi.settings import Settings
from tests.support.demo_data import demo_clients, release_figures
from tests.support.http import Api, served

CACHE_SECONDS = 60
"""Far longer than the test: a table it sees afresh was not let go by its time running out."""
FIGURES = """msmeFigures(groupBy: [PROVINCE], filter: {kbliSection: "F"}) {
  key { value } suppressed count turnoverSum }"""
CREATE = "mutation($input: CreateMsmeInput!) { createMsme(input: $input) { id } }"
MINISTRY, KALBAR = "demo-ministry", "demo-province-61"


@pytest.fixture(scope="module")
def api(module_reference_url: str) -> Iterator[Api]:
    """The demo clients and no business (so section F's cells are this module's own), served
    with a figure cache far longer than the test."""
    demo_clients(module_reference_url)
    settings = Settings(
        rate_limit=1_000_000,
        figures_cache_seconds=CACHE_SECONDS,
        read_your_writes_seconds=CACHE_SECONDS,
    )
    with served(module_reference_url, settings) as served_api:
        yield served_api


def _contractors(api: Api, first: int, count: int) -> None:
    """`count` construction businesses in Pontianak (61.71), created by Kalbar."""
    for n in range(first, first + count):
        business = {
            "nib": f"6141011{n:06d}",
            "name": f"Kontraktor Rilis {n}",
            "kbliCode": "41011",
            "region": "61.71",
            "annualTurnover": str(20_000_000_000 + n * 1_000),
            "capital": "8000000000",
        }
        answer = api.graphql(CREATE, KALBAR, {"input": business})
        assert "errors" not in answer, answer


def _answer(api: Api, query: str) -> dict[str, Any]:
    answer = api.graphql(query, MINISTRY)
    assert "errors" not in answer, answer
    return dict(answer["data"])


def _figures(api: Api) -> list[dict[str, Any]]:
    return list(_answer(api, f"{{ {FIGURES} }}")["msmeFigures"])


def _release_and_figures(api: Api) -> tuple[int, list[dict[str, Any]]]:
    """The release number and the table, in one request: never answered from the cache."""
    answer = _answer(api, f"{{ figureRelease {{ number }} {FIGURES} }}")
    return answer["figureRelease"]["number"], answer["msmeFigures"]


def test_a_cached_table_is_never_from_an_older_release(api: Api, module_reference_url: str) -> None:
    _contractors(api, 0, 20)
    made = release_figures(module_reference_url).number
    first = _figures(api)  # cached from here on
    assert _release_and_figures(api) == (made, first)
    _contractors(api, 20, 20)
    made = release_figures(module_reference_url).number
    # Asked of the process that has just read the new release, the table is the new release's.
    number, fresh = _release_and_figures(api)
    assert number == made
    assert fresh != first
    assert _figures(api) == fresh
    # Told of the next release by its notification, with no request reading it in between.
    _contractors(api, 40, 20)
    made = release_figures(module_reference_url).number
    deadline = time.monotonic() + 5
    while (table := _figures(api)) == fresh and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _release_and_figures(api) == (made, table)
