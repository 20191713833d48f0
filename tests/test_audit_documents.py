"""An audit entry's `documentHash` is the sha256 of the document the client sent, over a
WebSocket as over HTTP, so the custodian can find the document a delivery answered.

A subscription's entries hashed the operation printed alone, without its fragments: a hash that
matched no document sent, nor the registered one a client subscribed to by hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any
from unittest import mock

from sinergi.cli import main
from tests.support.clients import registered
from tests.support.databases import run
from tests.support.http import Api

WATCH = """subscription FragmentWatch {
  msmeChanges { entries { ...Change } endCursor }
}

fragment Change on ChangeEntry { id change }
"""
REGISTERED = WATCH.replace("FragmentWatch", "RegisteredWatch")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _delivered(api: Api, client: tuple[str, str], payload: dict[str, Any]) -> None:
    """The first page of the feed, from its start, delivered (and so audited)."""
    with api.socket(client) as socket:
        socket.send_json({"id": "1", "type": "subscribe", "payload": payload})
        answer = socket.receive_json()
        assert answer["type"] == "next", answer
        assert answer["payload"]["data"]["msmeChanges"]["entries"]


def _document_hash(url: str, client_id: str, operation: str) -> str:
    (row,) = run(
        url,
        "SELECT entry ->> 'documentHash' AS hash FROM audit_log"
        " WHERE client_id = $1 AND entry ->> 'operation' = $2 ORDER BY seq DESC LIMIT 1",
        client_id,
        operation,
    )
    return str(row["hash"])


def test_a_subscription_with_fragments_is_audited_under_the_hash_of_the_document_sent(
    api: Api, demo_url: str
) -> None:
    client = registered(demo_url, "Langganan fragmen", purpose="audit test", scopes="records:read")
    _delivered(api, client, {"query": WATCH})
    assert _document_hash(demo_url, client[0], "FragmentWatch") == _sha256(WATCH)


def test_a_subscription_by_hash_is_audited_under_the_registered_documents_hash(
    api: Api, demo_url: str, tmp_path: Path
) -> None:
    client = registered(demo_url, "Langganan hash", purpose="audit test", scopes="records:read")
    file = tmp_path / "watch.graphql"
    file.write_text(REGISTERED)
    printed = io.StringIO()
    with (
        mock.patch.dict(os.environ, {"DATABASE_URL": demo_url}),
        contextlib.redirect_stdout(printed),
    ):
        assert main(["clients", "trust", client[0], str(file), "--json"]) == 0
    (trusted,) = json.loads(printed.getvalue())
    by_hash = {"persistedQuery": {"version": 1, "sha256Hash": trusted["sha256"]}}
    _delivered(api, client, {"extensions": by_hash})
    assert _document_hash(demo_url, client[0], "RegisteredWatch") == trusted["sha256"]
