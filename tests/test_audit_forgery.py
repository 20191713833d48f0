"""Audit entries forged with the service's database credentials alone (never the audit key):
each is named by `sinergi audit verify`, and sealing goes on past it (migration 0051).

The service's role may INSERT into `audit_log`, and the sealer sealed whatever the table held:
an insider could add an entry saying that another agency received a person's data, and verify
called the trail intact. Every entry the service writes now carries its MAC under a key derived
from the audit key, over its content and a random nonce.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from auth.scopes import OrgKind
from db import provision
from db.engine import autocommit, create_engine
from db.migrate import upgrade
from db.queries.audit import AuditWriter
from db.seals import (
    MAC_MISMATCH,
    MAC_MISSING,
    UnsignableEntry,
    entry_key,
    entry_mac,
    new_nonce,
)
from sinergi.audit_sealer import AuditSealer
from tests.support.audit_trail import (
    ENTRIES,
    KEY,
    Trail,
    chained_by_hand,
    sealed_trail,
    verify,
    written_past_the_checks,
)
from tests.support.databases import (
    TEST_OWNER,
    TEST_PASSWORD,
    TEST_SERVICE,
    as_service,
    drop_database,
)
from tests.support.databases import run as sql
from tests.support.graphql import SCHEMA, principal, request_context

CUSTODIAN = principal(OrgKind.CUSTODIAN, "ID")
VICTIM = "6271995204880001"
KALBAR = principal(OrgKind.PROVINCE, "61")
FORGED = (
    '{"operation":"MsmeByNib","organisation":"Dinas Koperasi dan UKM Provinsi Kalimantan'
    ' Barat","purpose":"PEMBINAAN","records":{"msme":1},"personalFields":["Owner.nik"]}'
)
INSERT = "INSERT INTO audit_log (client_id, entry, subjects) VALUES ($1, $2::jsonb, $3)"
INSERT_SIGNED = (
    "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
    " VALUES ($1, $2::jsonb, $3, $4, $5)"
)


@pytest.fixture
def trail(fresh_url: str, tmp_path: Path) -> Trail:
    """`ENTRIES` entries written by the service and sealed, as test_audit_tampering's."""
    return sealed_trail(fresh_url, tmp_path / "audit-checkpoints.jsonl")


def _as_service(trail: Trail, statement: str, *arguments: Any) -> list[asyncpg.Record]:
    """What whoever holds the service's database credentials may run."""
    return sql(as_service(trail.owner_url), statement, *arguments)


def _seal(trail: Trail) -> None:
    """The next sealing round of `serve`."""

    async def run() -> None:
        engine = create_engine(as_service(trail.owner_url), statement_timeout_ms=10_000)
        try:
            await AuditSealer(engine, KEY, trail.checkpoints, 1).publish()
        finally:
            await engine.dispose()

    asyncio.run(run())


async def _genuine(url: str, count: int, *, extra: dict[str, Any] | None = None) -> None:
    """`count` entries written as requests write them: the custodian asking who received a
    person's data, through the schema, signed by the service's writer with the trail's key;
    and `extra`, appended as an entry of its own."""
    engine = create_engine(as_service(url), statement_timeout_ms=10_000)
    try:
        writer = AuditWriter(autocommit(engine), KEY)
        for _ in range(count):
            context = request_context(engine, CUSTODIAN, audit_writer=writer)
            document = f'{{ personalDataAccess(nik: "{VICTIM}") {{ clientId }} }}'
            result = await SCHEMA.execute(document, context_value=context)
            assert result.errors is None, result.errors
        if extra is not None:
            subjects = [VICTIM, "6171000000000001", VICTIM]
            await writer.append(client_id=KALBAR.client_id, entry=extra, subjects=subjects)
    finally:
        await engine.dispose()


def test_an_entry_inserted_without_a_mac_is_refused_or_sealed_past_and_named(
    trail: Trail, caplog: pytest.LogCaptureFixture
) -> None:
    """The service's role cannot store it; the owner, who can switch the trigger off, can,
    and verify names it."""
    with pytest.raises(asyncpg.CheckViolationError, match="carries no MAC"):
        _as_service(trail, INSERT, KALBAR.client_id, FORGED, [VICTIM])
    unsigned = (KALBAR.client_id, [VICTIM], None, None, FORGED)
    asyncio.run(written_past_the_checks(trail.owner_url, chained_by_hand("$5::jsonb"), unsigned))
    with caplog.at_level(logging.ERROR, logger="sinergi.audit"):
        _seal(trail)
    forged = ENTRIES + 1
    assert f"audit entry {forged} {MAC_MISSING}: sealed past it" in caplog.text
    # Sealing went on: a genuine entry after the forged one is sealed too.
    asyncio.run(_genuine(trail.owner_url, 1))
    _seal(trail)
    verified = verify(trail)
    assert verified.returncode == 1, verified.stdout
    assert f"audit chain broken at entry {forged}: {MAC_MISSING}\n" in verified.stdout
    assert "audit chain broken" not in verified.stdout.replace(
        f"audit chain broken at entry {forged}", ""
    )


def test_a_mac_copied_onto_other_content_is_named(trail: Trail) -> None:
    (genuine,) = _as_service(trail, "SELECT entry_mac FROM audit_log WHERE seq = 1")
    fresh = uuid.uuid4().hex
    _as_service(trail, INSERT_SIGNED, KALBAR.client_id, FORGED, [VICTIM], genuine[0], fresh)
    _seal(trail)
    verified = verify(trail)
    assert verified.returncode == 1, verified.stdout
    assert f"audit chain broken at entry {ENTRIES + 1}: {MAC_MISMATCH}\n" in verified.stdout


def test_a_mac_and_nonce_copied_onto_other_content_is_refused(trail: Trail) -> None:
    (genuine,) = _as_service(trail, "SELECT entry_mac, entry_nonce FROM audit_log WHERE seq = 1")
    with pytest.raises(asyncpg.UniqueViolationError):
        _as_service(trail, INSERT_SIGNED, KALBAR.client_id, FORGED, [VICTIM], *genuine)


REPLAY = (
    "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
    " SELECT client_id, entry, subjects, entry_mac, entry_nonce FROM audit_log WHERE seq = 2"
)


def test_a_genuine_entry_replayed_is_refused_and_named(trail: Trail) -> None:
    """The service's role cannot store the copy (the nonce is unique); the owner, who can drop
    the constraint, can, and verify names the copy with the entry it copies."""
    with pytest.raises(asyncpg.UniqueViolationError):
        _as_service(trail, REPLAY)
    sql(trail.owner_url, "ALTER TABLE audit_log DROP CONSTRAINT uq_audit_log_entry_nonce")
    _as_service(trail, REPLAY)
    _seal(trail)
    verified = verify(trail)
    assert verified.returncode == 1, verified.stdout
    assert (
        f"audit chain broken at entry {ENTRIES + 1}: repeats entry 2's nonce: a copy of a genuine"
        " entry (replayed)\n"
    ) in verified.stdout


def test_genuine_entries_verify_clean(trail: Trail) -> None:
    """Whatever an entry holds, its MAC is over what PostgreSQL gives back: keys jsonb reorders,
    text beyond ASCII, the database's own `|` separator, subjects repeated and unsorted."""
    extra = {"operation": "x", "z": {"b": [1, "ü|"], "a": None}, "records": {"msme": 2}}
    asyncio.run(_genuine(trail.owner_url, 3, extra=extra))
    _seal(trail)
    verified = verify(trail)
    assert verified.returncode == 0, verified.stdout
    assert "audit chain intact" in verified.stdout


def test_entries_from_before_macs_verify_and_none_may_follow_them(
    server_url: str, tmp_path: Path
) -> None:
    """Entries written before migration 0051 carry no MAC, and verify takes them, up to the
    boundary it recorded. After it, an entry without one, as an instance of the previous release
    still running writes it, is refused: its request fails, rather than the entry being named
    by verify, for good, as not written by the service."""
    name = f"sinergi_macs_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(
            provision.ensure_database(
                server_url, name, owner=TEST_OWNER, service=TEST_SERVICE, password=TEST_PASSWORD
            )
        )
        url = provision.with_role(server_url, TEST_OWNER, name, TEST_PASSWORD)
        upgrade(url, "0050")  # granted at head: today's grants name columns 0050 lacks
        for n in range(3):
            sql(url, INSERT, "before-macs", f'{{"n": {n}}}', [])
        upgrade(url, service_role=TEST_SERVICE)
        (boundary,) = sql(url, "SELECT from_seq FROM audit_entry_macs")
        assert boundary[0] == 4
        trail_ = Trail(url, tmp_path / "checkpoints.jsonl")
        asyncio.run(_genuine(url, 1))
        _seal(trail_)
        verified = verify(trail_)
        assert verified.returncode == 0, verified.stdout
        assert "audit chain intact: 4 entries verified, 4 sealed" in verified.stdout
        with pytest.raises(asyncpg.CheckViolationError, match="older than migration 0051"):
            sql(as_service(url), INSERT, "after-macs", '{"n": 9}', [])
        _seal(trail_)
        assert verify(trail_).returncode == 0
    finally:
        asyncio.run(drop_database(server_url, name))


UNSIGNABLE = {
    "a float jsonb rewrites": ({"f": 1e16}, "entry.f"),
    "negative zero": ({"f": -0.0}, "entry.f"),
    "a float in a list": ({"z": {"b": [1, 0.5]}}, "entry.z.b[1]"),
    "a float in a tuple": ({"z": ("s", 0.5)}, "entry.z[1]"),
    "a key that is no string": ({"s": "t", "z": {1: "one"}}, "entry.z"),
}


@pytest.mark.parametrize(("entry", "where"), UNSIGNABLE.values(), ids=UNSIGNABLE.keys())
def test_an_entry_jsonb_would_not_give_back_as_written_is_refused_as_it_is_signed(
    entry: dict[Any, Any], where: str
) -> None:
    """Stored, `1e16` comes back as `10000000000000000` and `-0.0` as `0.0`: its MAC would fail
    and read as tampering. Refused when signed, naming where, so a change writing one fails in
    the tests."""
    with pytest.raises(UnsignableEntry, match=rf"audit entry refused: {re.escape(where)} "):
        entry_mac(entry_key(KEY), new_nonce(), "x", entry, [])
    assert entry_mac(entry_key(KEY), new_nonce(), "x", {"n": 1, "b": [True, None, "s"]}, [])


BEYOND_ASCII = "\u00e9" * 64  # as many characters as a MAC has hex digits
NOT_WRITTEN_BY_THE_SERVICE = {
    "a MAC beyond ASCII": (BEYOND_ASCII, None, "entry_mac_shape"),
    "a MAC in capitals": ("A" * 64, None, "entry_mac_shape"),
    "a MAC cut short": ("0" * 63, None, "entry_mac_shape"),
    "a nonce beyond ASCII": (None, "\u00e9" * 32, "entry_nonce_shape"),
    "a nonce with a newline after it": (None, new_nonce() + "\n", "entry_nonce_shape"),
    "a UUID for a nonce": (None, str(uuid.uuid4()), "entry_nonce_shape"),
}


@pytest.mark.parametrize(
    ("mac", "nonce", "check"),
    NOT_WRITTEN_BY_THE_SERVICE.values(),
    ids=NOT_WRITTEN_BY_THE_SERVICE.keys(),
)
def test_the_database_refuses_a_mac_or_nonce_of_a_shape_the_service_never_writes(
    trail: Trail, mac: str | None, nonce: str | None, check: str
) -> None:
    """A MAC is 64 lowercase hex digits, a nonce 32 (migration 0052); and a seal 64."""
    with pytest.raises(asyncpg.CheckViolationError, match=f"ck_audit_log_{check}"):
        _as_service(
            trail,
            INSERT_SIGNED,
            KALBAR.client_id,
            FORGED,
            [VICTIM],
            mac or "0" * 64,
            nonce or new_nonce(),
        )
    asyncio.run(_genuine(trail.owner_url, 1))  # an entry not sealed yet, to seal
    with pytest.raises(asyncpg.CheckViolationError, match="ck_audit_seals_mac_shape"):
        _as_service(
            trail, "INSERT INTO audit_seals (seq, mac) VALUES ($1, $2)", ENTRIES + 1, BEYOND_ASCII
        )


def test_a_mac_beyond_ascii_stored_before_the_check_is_sealed_past_and_named(
    server_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored before migration 0052 refused it, as the service's role could: it made every
    sealing round fail (`hmac.compare_digest` refuses a str beyond ASCII), logged as the
    database being away, and `audit verify` crash without naming it. The migration leaves it
    stored (the trail is append-only); sealing goes on past it and verify names it."""
    name = f"sinergi_macshape_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(
            provision.ensure_database(
                server_url, name, owner=TEST_OWNER, service=TEST_SERVICE, password=TEST_PASSWORD
            )
        )
        url = provision.with_role(server_url, TEST_OWNER, name, TEST_PASSWORD)
        upgrade(url, "0051")
        forged = [KALBAR.client_id, FORGED, [VICTIM], BEYOND_ASCII, new_nonce()]
        sql(url, INSERT_SIGNED, *forged)
        upgrade(url, service_role=TEST_SERVICE)
        planted = Trail(url, tmp_path / "checkpoints.jsonl")
        asyncio.run(_genuine(url, 2))
        with caplog.at_level(logging.WARNING, logger="sinergi.audit"):
            _seal(planted)
        assert f"audit entry 1 {MAC_MISMATCH}: sealed past it" in caplog.text
        assert "could not seal" not in caplog.text
        assert "sealing the audit trail failed" not in caplog.text
        verified = verify(planted)
        assert verified.returncode == 1, verified.stdout
        assert f"audit chain broken at entry 1: {MAC_MISMATCH}\n" in verified.stdout
        assert "audit chain broken" not in verified.stdout.replace(
            "audit chain broken at entry 1:", ""
        )
        assert "the newest checkpoint covers entries to 3," in verified.stdout  # sealed past 1
    finally:
        asyncio.run(drop_database(server_url, name))
