"""Nothing after a write's commit turns it into an error answer: a write note renewed after
the commit (`Context._renew_note`) that fails in any way (an outage, a statement or lock
timeout behind another's lock) is logged, and the committed write is answered as done. Told
INTERNAL or "send it again", its client would apply it twice."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from db.queries import rate_limits
from sinergi.settings import Settings
from tests.support.http import Api, served

CLIENT = "demo-province-62"
LOOKUP = '{ msme(nib: "9990000000002") { id version name } }'
UPDATE = """
mutation($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) { id version name }
}
"""


def test_a_committed_write_whose_note_cannot_be_renewed_is_answered_as_done(
    api: Api, demo_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    noted = rate_limits.note_write
    calls: list[str] = []

    async def failing_after_the_first(connection: AsyncConnection, client_id: str) -> Any:
        calls.append(client_id)
        if len(calls) > 1:  # the renewal after the commit
            raise RuntimeError("canceling statement due to lock timeout")
        return await noted(connection, client_id)

    # A window of 0: every committed write renews its client's note.
    settings = Settings(rate_limit=1_000_000, read_your_writes_seconds=0)
    with served(demo_url, settings) as quick:
        record = quick.graphql(LOOKUP, CLIENT)["data"]["msme"]
        monkeypatch.setattr(rate_limits, "note_write", failing_after_the_first)
        changes = {"name": record["name"] + " Baru"}
        variables = {"id": record["id"], "version": record["version"], "changes": changes}
        with caplog.at_level(logging.WARNING):
            answer = quick.graphql(UPDATE, CLIENT, variables)
        monkeypatch.setattr(rate_limits, "note_write", noted)
        assert len(calls) == 2, "noted before the write, renewed after it"
        assert "errors" not in answer, answer
        assert answer["data"]["updateMsme"]["name"] == changes["name"]
        assert "could not be noted again" in caplog.text
        back = {"id": record["id"], "version": record["version"] + 1, "changes": record}
        back["changes"] = {"name": record["name"]}
        assert "errors" not in quick.graphql(UPDATE, CLIENT, back)
