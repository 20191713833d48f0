"""What clients see of a personal field added the way a developer adds one: run in a copy of the
source tree whose declaration (domain.records.OwnerDraft) has the field and whose migrations add
its column (tests/test_personal_fields.py makes that copy). Migrates the database given, loads
the reference data, then writes and reads an MSME's owner over HTTP as the demo Kalimantan
Tengah province with and without `pii:read`, and prints what it saw (answers and statements) as
JSON (to the file named second) for the test to judge."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from db.engine import async_url
from db.migrate import upgrade
from db.seed import load_reference
from domain.register_csv import draft_from_cells
from sinergi.demo import SEED_DATA
from sinergi.demo_mode import register_demo_clients
from sinergi.settings import Settings
from tests.support.databases import TEST_SERVICE
from tests.support.http import Api, served
from tests.support.statements import recorded_statements

PROVINCE = "demo-province-62"
WITHOUT_PII = "records:read records:write"
OWNER = {"nik": "6271995204880001", "fullName": "Sri Rahayu", "email": "sri@contoh.id"}
NEW_EMAIL = "sri.rahayu@contoh.id"
IMPORTED_EMAIL = "budi@contoh.id"
ROW = {
    "name": "Keripik Kelakai Uji",
    "kbliCode": "10794",
    "region": "62.71",
    "capital": "150000000",
    "annualTurnover": "240000000",
    "turnoverYear": 2025,
}
CREATE = """mutation Create($input: CreateMsmeInput!) {
  createMsme(input: $input) { id version owner { email } } }"""
UPDATE = """mutation Update($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) { version } }"""
IMPORT = """mutation Import($rows: [MsmeImportRow!]!) {
  importMsmes(mode: ALL_OR_NOTHING, rows: $rows) { created errors { field reason } } }"""
READ = """query {name}($nib: String!) {{
  msme(nib: $nib) {{
    name owner {{ nik fullName email }}
    changes {{ operation personalDataChanged fields {{ field before after }} }}
  }}
}}"""
FEED = "query {name} {{ msmeChanges(first: 100) {{ entries {{ change record }} }} }}"


async def _prepare(url: str) -> None:
    engine = create_async_engine(async_url(url))
    async with engine.begin() as connection:
        await load_reference(connection, SEED_DATA, targets=False)
    await register_demo_clients(engine)
    await engine.dispose()


def _sent(api: Api, document: str, token: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = api.post({"query": document, "variables": variables}, token)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _observed(api: Api, document: str, token: str, variables: dict[str, Any]) -> dict[str, Any]:
    with recorded_statements() as statements:
        answer = _sent(api, document, token, variables)
    return {"answer": answer, "statements": statements}


def scenario(url: str) -> dict[str, Any]:
    upgrade(url, service_role=TEST_SERVICE)
    asyncio.run(_prepare(url))
    # A process of its own, beyond conftest's lifting of the demo secret's refusal: served as
    # `serve --dev` serves the demo clients it logs in as.
    with served(url, Settings(rate_limit=1_000_000, dev=True)) as api:
        pii = api.token(PROVINCE)
        plain = api.token(PROVINCE, scope=WITHOUT_PII)
        created = _sent(
            api, CREATE, pii, {"input": {**ROW, "nib": "7770000000001", "owner": OWNER}}
        )
        record = created["data"]["createMsme"]
        changes = {"owner": {**OWNER, "email": NEW_EMAIL}}
        updated = _sent(
            api, UPDATE, pii, {"id": record["id"], "version": record["version"], "changes": changes}
        )
        owner = {"nik": "6271991503850001", "fullName": "Budi", "email": IMPORTED_EMAIL}
        imported = _sent(
            api, IMPORT, pii, {"rows": [{**ROW, "nib": "7770000000002", "owner": owner}]}
        )
        cells = {"nib": "7770000000003", "owner_nik": OWNER["nik"], "owner_email": "x@contoh.id"}
        csv_draft, unread = draft_from_cells(cells)
        return {
            "csv_email": None if unread else csv_draft.owner.email,  # type: ignore[union-attr]
            "created": created,
            "updated": updated,
            "imported": imported,
            "without": _observed(
                api, READ.format(name="WithoutPii"), plain, {"nib": "7770000000001"}
            ),
            "with": _observed(api, READ.format(name="WithPii"), pii, {"nib": "7770000000001"}),
            "imported_with": _observed(
                api, READ.format(name="ImportedWithPii"), pii, {"nib": "7770000000002"}
            ),
            "feed_without": _observed(api, FEED.format(name="FeedWithoutPii"), plain, {}),
            "feed_with": _observed(api, FEED.format(name="FeedWithPii"), pii, {}),
        }


if __name__ == "__main__":
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        json.dump(scenario(sys.argv[1]), out)
