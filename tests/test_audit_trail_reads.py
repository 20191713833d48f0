"""Every read of the audit trail is itself an entry of it, whatever it found.

`auditEntries(nik:)` named the person asked about only through the entries it returned, and a
page that returned none wrote no entry at all: a custodian could ask whether anyone received a
person's data without a trace, which `personalDataAccess(nik)` never allowed. Run over HTTP as
the demo custodian, `demo-walidata`.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.databases import run
from tests.support.http import Api

CUSTODIAN = "demo-walidata"
NOBODY = "1234567890123456"
"""A NIK no entry of the trail names."""


def _entries(demo_url: str, operation: str) -> list[tuple[dict[str, Any], list[str]]]:
    """The custodian's entries for `operation`, newest first: each entry and its subjects."""
    rows = run(
        demo_url,
        "SELECT entry::text AS entry, subjects FROM audit_log"
        " WHERE client_id = $1 AND entry ->> 'operation' = $2 ORDER BY seq DESC",
        CUSTODIAN,
        operation,
    )
    return [(json.loads(row["entry"]), list(row["subjects"])) for row in rows]


def test_asking_the_trail_about_a_person_it_does_not_name_is_recorded(
    api: Api, demo_url: str
) -> None:
    query = f'query TrailReadNobody {{ auditEntries(nik: "{NOBODY}") {{ seq }} }}'
    answer = api.graphql(query, CUSTODIAN)
    assert answer == {"data": {"auditEntries": []}}
    ((entry, subjects),) = _entries(demo_url, "TrailReadNobody")
    assert subjects == [NOBODY]
    assert entry["fields"]["Query.auditEntries"] == ["audit:read"]


def test_a_read_of_the_trail_that_finds_nothing_is_recorded(api: Api, demo_url: str) -> None:
    query = 'query TrailReadEmpty { auditEntries(first: 1, clientId: "nobody-at-all") { seq } }'
    answer = api.graphql(query, CUSTODIAN)
    assert answer == {"data": {"auditEntries": []}}
    ((entry, subjects),) = _entries(demo_url, "TrailReadEmpty")
    assert subjects == []
    assert entry["records"] == {}
