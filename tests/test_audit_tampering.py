"""`sinergi audit verify` against an insider with the owner's rights, who can switch the
append-only triggers off: each way of rewriting the trail is caught, at each entry it touched.

Entries are written as the service writes them and sealed as `serve` seals them (with a key of
the test's own, held outside the database), then tampered with as the owner, then verified by
the command operators run.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import secrets
from pathlib import Path
from typing import Any
from unittest import mock

import asyncpg
import pytest
from prometheus_client import REGISTRY

from auth.scopes import OrgKind
from db.engine import create_engine
from db.queries import audit_seals
from sinergi import checkpoint_file
from sinergi.cli import main
from tests.support.audit_trail import (
    ENTRIES,
    KEY,
    Trail,
    append,
    as_owner,
    sealed_trail,
    verify,
    written_for_tampering,
)
from tests.support.databases import as_service
from tests.support.graphql import principal, run
from tests.support.syslog import as_daemon_writes, collector

CUSTODIAN = principal(OrgKind.CUSTODIAN, "ID")


@pytest.fixture
def trail(fresh_url: str, tmp_path: Path) -> Trail:
    return sealed_trail(fresh_url, tmp_path / "audit-checkpoints.jsonl")


# Re-chain every entry from `seq` on with the database's own hash function, as an insider
# covering tracks would: the unkeyed chain then checks out.
RECOMPUTE_FROM_3 = """
DO $$
DECLARE
    r record;
    previous text;
BEGIN
    SELECT hash INTO previous FROM audit_log WHERE seq = 2;
    FOR r IN SELECT * FROM audit_log WHERE seq >= 3 ORDER BY seq LOOP
        UPDATE audit_log
           SET prev_hash = previous,
               hash = audit_log_hash(previous, r.seq, r.at, r.client_id, r.entry, r.subjects)
         WHERE seq = r.seq
        RETURNING hash INTO previous;
    END LOOP;
END $$
"""


def test_an_untouched_trail_verifies(trail: Trail) -> None:
    intact = verify(trail)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert f"intact: {ENTRIES} entries verified, {ENTRIES} sealed (0 written" in intact.stdout
    assert "sealed (0 written since the last seal), 1 checkpoint\n" in intact.stdout
    assert f"{trail.checkpoints}: the newest checkpoint covers entries to {ENTRIES}, at " in (
        intact.stdout
    )


def test_entries_written_since_the_last_seal_are_not_an_error(trail: Trail) -> None:
    asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 2, seal=False))
    intact = verify(trail)
    assert intact.returncode == 0, intact.stdout
    assert f"{ENTRIES + 2} entries verified, {ENTRIES} sealed (2 written since" in intact.stdout


def test_sealing_stops_at_an_entry_rewritten_before_its_seal_and_counts_it(
    trail: Trail,
) -> None:
    """The metric an operator alerts on: an entry rewritten before it was sealed is never
    sealed, nor is any after it."""
    asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 2, seal=False))
    as_owner(trail, """UPDATE audit_log SET entry = '{"n": 99}' WHERE seq = 7""")
    refusals = "sinergi_audit_seal_refusals_total"
    before = REGISTRY.get_sample_value(refusals) or 0.0
    asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 0, seal=True))
    assert REGISTRY.get_sample_value(refusals) == before + 1  # (other apps here refuse none)
    broken = verify(trail)
    assert "broken at entry 7: content does not match its hash" in broken.stdout


def test_sealing_goes_on_past_a_seal_the_service_role_wrote_and_counts_it(
    trail: Trail, caplog: pytest.LogCaptureFixture
) -> None:
    """An insider with the service's credentials may insert seals (the sealer does, as that
    role) but cannot make one the key reproduces. Sealing stopped at such a seal for good, one
    INSERT leaving every later entry unsealed, and `audit verify` called the genuine entry under
    it rewritten. The sealer now names it, counts it, and seals on from the seal the key makes
    of that entry; verify names the seal, not the entry. Another process, starting with the
    newest seal built on that one, takes the chain up there too."""
    asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 1, seal=False))

    async def forge() -> None:
        connection = await asyncpg.connect(as_service(trail.owner_url))
        try:
            await connection.execute(
                "INSERT INTO audit_seals (seq, mac) VALUES ($1, $2)", ENTRIES + 1, "0" * 64
            )
        finally:
            await connection.close()

    asyncio.run(forge())
    unsettled = verify(trail)  # nothing sealed after it tells a forged seal from a rewrite
    assert f"broken at entry {ENTRIES + 1}: does not match its seal: rewritten with its" in (
        unsettled.stdout
    )
    assert "or its seal not made with the audit key" in unsettled.stdout
    checkpoints = trail.checkpoints.read_text()
    refusals = "sinergi_audit_seal_refusals_total"
    before = REGISTRY.get_sample_value(refusals) or 0.0
    with caplog.at_level("ERROR", logger="sinergi.audit"):
        for _ in range(2):  # each a process of its own: the second finds entry 8 sealed last
            asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 1, seal=True))
    assert REGISTRY.get_sample_value(refusals) == before + 2
    assert f"audit entry {ENTRIES + 1}'s seal was not made with the audit key" in caplog.text
    assert "sealing stopped" not in caplog.text

    assert asyncio.run(_sealed_and_written(trail)) == (ENTRIES + 3, ENTRIES + 3)
    added = trail.checkpoints.read_text().removeprefix(checkpoints)
    assert f'"seq":{ENTRIES + 3},' in added.replace(" ", "")
    broken = verify(trail)
    assert broken.returncode == 1
    forged = (
        f"broken at entry {ENTRIES + 1}: its seal was not made with the audit key (written"
        " with the service's credentials); the entry itself matches its chain and MAC"
    )
    assert forged in broken.stdout
    assert "rewritten" not in broken.stdout
    assert "Is every" not in broken.stdout
    assert broken.stdout.count("broken at") == 1, broken.stdout


async def _sealed_and_written(trail: Trail) -> tuple[int, int]:
    """The newest entry sealed, and the newest written."""
    connection = await asyncpg.connect(trail.owner_url)
    try:
        row = await connection.fetchrow(
            "SELECT (SELECT max(seq) FROM audit_seals) AS sealed,"
            " (SELECT max(seq) FROM audit_log) AS written"
        )
        return row["sealed"], row["written"]
    finally:
        await connection.close()


def test_sealing_goes_on_past_a_forged_seal_of_an_entry_the_service_did_not_write(
    trail: Trail, caplog: pytest.LogCaptureFixture
) -> None:
    """With the service's credentials, an entry with a wrong MAC and a forged seal of it, in
    one transaction: the sealer refused to take the chain up from an entry failing its MAC, and
    stopped there for good, though without the forged seal it seals past such an entry and
    names it. It now does the same under a forged seal; verify names the seal and the MAC, and
    does not call the entry rewritten, which the seals the sealer built on it disprove."""

    async def forge() -> None:
        connection = await asyncpg.connect(as_service(trail.owner_url))
        try:
            async with connection.transaction():
                await connection.execute(
                    "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
                    " VALUES ('tamper-test', '{\"n\": 0}', '{}', $1, $2)",
                    "f" * 64,
                    "a" * 32,
                )
                await connection.execute(
                    "INSERT INTO audit_seals (seq, mac) VALUES ($1, $2)", ENTRIES + 1, "0" * 64
                )
        finally:
            await connection.close()

    asyncio.run(forge())
    with caplog.at_level("ERROR", logger="sinergi.audit"):
        for _ in range(2):
            asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 2, seal=True))
    assert "sealing stopped" not in caplog.text
    assert f"audit entry {ENTRIES + 1} does not match its MAC" in caplog.text
    assert asyncio.run(_sealed_and_written(trail)) == (ENTRIES + 5, ENTRIES + 5)
    broken = verify(trail)
    assert broken.returncode == 1
    assert (
        f"broken at entry {ENTRIES + 1}: its seal was not made with the audit key (written with"
        " the service's credentials), and the entry does not match its MAC"
    ) in broken.stdout
    assert "rewritten" not in broken.stdout
    assert broken.stdout.count("broken at") == 1, broken.stdout


def test_sealing_goes_on_past_more_forged_seals_than_it_reads_at_a_time(trail: Trail) -> None:
    """The sealer looked for the seal the key reproduces among the last `PARTITION` seals only,
    and took one more forged seal than that for a key not the trail's: sealing stopped for good,
    one statement of forged seals away."""
    forged = audit_seals.PARTITION + 1

    async def unsealed() -> None:
        engine = create_engine(as_service(trail.owner_url), statement_timeout_ms=10_000)
        try:
            async with engine.begin() as connection:
                await append(connection, forged, KEY)
        finally:
            await engine.dispose()

    asyncio.run(unsealed())
    asyncio.run(_seal_as_service(trail.owner_url, list(range(ENTRIES + 1, ENTRIES + 1 + forged))))
    asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 1, seal=True))
    assert asyncio.run(_sealed_and_written(trail)) == (ENTRIES + forged + 1,) * 2


# Seals the database refuses from the service's role (migration 0035), the trail standing at
# ENTRIES + 2 entries, sealed through ENTRIES: seals follow the newest one entry at a time, each
# of an entry written.
OUT_OF_PLACE = {
    "of an entry not yet written": ([ENTRIES + 14], f"the next seal is of entry {ENTRIES + 1}"),
    "skipping the next entry": ([ENTRIES + 2], f"the next seal is of entry {ENTRIES + 1}"),
    "with a gap between them": ([ENTRIES + 1, ENTRIES + 3], "one entry at a time"),
    "the next, of no entry": ([ENTRIES + 1, ENTRIES + 2, ENTRIES + 3], "there is no such entry"),
}


async def _seal_as_service(url: str, seqs: list[int]) -> None:
    """Seals of `seqs` written as the sealer writes a batch: one statement."""
    connection = await asyncpg.connect(as_service(url))
    try:
        await connection.execute(
            "INSERT INTO audit_seals (seq, mac)"
            " SELECT * FROM unnest(CAST($1 AS bigint[]), CAST($2 AS text[]))",
            seqs,
            ["d" * 64] * len(seqs),
        )
    finally:
        await connection.close()


@pytest.mark.parametrize(("seqs", "refusal"), OUT_OF_PLACE.values(), ids=OUT_OF_PLACE.keys())
def test_the_service_role_cannot_write_a_seal_out_of_place(
    trail: Trail, seqs: list[int], refusal: str
) -> None:
    """A seal written ahead of the trail was invisible to `audit verify` and, once the trail
    reached it, stopped sealing for good (seals are append-only). The sealer still seals."""
    asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 2, seal=False))
    with pytest.raises(asyncpg.CheckViolationError, match=refusal):
        asyncio.run(_seal_as_service(trail.owner_url, seqs))
    asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 0, seal=True))
    intact = verify(trail)
    assert intact.returncode == 0, intact.stdout
    assert f"{ENTRIES + 2} entries verified, {ENTRIES + 2} sealed (0 written" in intact.stdout


def test_a_seal_written_ahead_of_the_trail_is_named_at_once(
    trail: Trail, caplog: pytest.LogCaptureFixture
) -> None:
    """Written past migration 0035's trigger (as the owner, or before the migration): `audit
    verify` names it before the trail reaches it, and the sealer stops, saying where."""
    planted = 20  # ENTRIES + 14: ahead of the trail
    as_owner(trail, "INSERT INTO audit_seals (seq, mac) VALUES (20, repeat('d', 64))")
    asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 2, seal=False))
    broken = verify(trail)
    assert broken.returncode == 1
    lines = [line for line in broken.stdout.splitlines() if "broken" in line]
    assert lines == [
        f"audit chain broken at entry {planted}: sealed, but there is no such entry: a seal"
        " written ahead of the trail"
    ]
    refusals = "sinergi_audit_seal_refusals_total"
    before = REGISTRY.get_sample_value(refusals) or 0.0
    with caplog.at_level("ERROR", logger="sinergi.audit"):
        asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 0, seal=True))
    assert REGISTRY.get_sample_value(refusals) == before + 1
    assert f"audit entry {planted} has a seal but no entry: sealing stopped" in caplog.text


def test_a_rewritten_entry_is_named(trail: Trail) -> None:
    as_owner(trail, "UPDATE audit_log SET subjects = '{}' WHERE seq = 3")
    broken = verify(trail)
    assert broken.returncode == 1
    assert "broken at entry 3: content does not match its hash" in broken.stdout


def test_a_rewritten_entry_with_its_chain_recomputed_is_named(trail: Trail) -> None:
    as_owner(trail, "UPDATE audit_log SET subjects = '{}' WHERE seq = 3", RECOMPUTE_FROM_3)
    broken = verify(trail)
    assert broken.returncode == 1
    assert f"broken at entries 3 to {ENTRIES}: does not match its seal" in broken.stdout


def test_a_deleted_middle_entry_is_named(trail: Trail) -> None:
    as_owner(trail, "DELETE FROM audit_seals WHERE seq = 3", "DELETE FROM audit_log WHERE seq = 3")
    broken = verify(trail)
    assert broken.returncode == 1
    assert "broken at entry 3: missing: the sequence has a gap" in broken.stdout
    assert broken.stdout.count("broken at") == 1  # the entries after it still check out


def test_a_deleted_middle_entry_with_the_rest_renumbered_and_rechained_is_named(
    trail: Trail,
) -> None:
    as_owner(
        trail,
        "DELETE FROM audit_seals WHERE seq = (SELECT max(seq) FROM audit_seals)",
        "DELETE FROM audit_log WHERE seq = 3",
        "UPDATE audit_log SET seq = -seq WHERE seq > 3",
        "UPDATE audit_log SET seq = -seq - 1 WHERE seq < 0",
        RECOMPUTE_FROM_3,
    )
    broken = verify(trail)
    assert broken.returncode == 1
    assert f"broken at entries 3 to {ENTRIES - 1}: does not match its seal" in broken.stdout
    assert f"broken at entry {ENTRIES}: missing: a checkpoint of " in broken.stdout


def test_deleted_newest_entries_are_named(trail: Trail) -> None:
    as_owner(trail, "DELETE FROM audit_seals WHERE seq > 4", "DELETE FROM audit_log WHERE seq > 4")
    broken = verify(trail)
    assert broken.returncode == 1
    assert f"broken at entries 5 to {ENTRIES}: missing: a checkpoint of " in broken.stdout


def test_a_checkpoint_file_cut_short_is_caught_by_the_copy_syslog_received(
    fresh_url: str, tmp_path: Path
) -> None:
    """The host's root deletes the newest entries, with their seals, and cuts the checkpoint
    file back to before them: the file then vouches for the shortened trail; the copy a syslog
    collector received on another host does not."""
    trail = Trail(fresh_url, tmp_path / "audit-checkpoints.jsonl")
    with collector() as syslog:
        for count in (4, 2):
            asyncio.run(
                written_for_tampering(
                    fresh_url, trail.checkpoints, count, seal=True, syslog=syslog.address
                )
            )
        collected = tmp_path / "collector" / "sinergi-audit.log"
        collected.parent.mkdir()
        collected.write_text("".join(map(as_daemon_writes, syslog.received(2))))
    as_owner(trail, "DELETE FROM audit_seals WHERE seq > 4", "DELETE FROM audit_log WHERE seq > 4")
    first, _ = trail.checkpoints.read_text().splitlines(keepends=True)
    trail.checkpoints.write_text(first)

    fooled = verify(trail)
    assert fooled.returncode == 0  # the file alone vouches for the shortened trail
    assert f"{trail.checkpoints}: the newest checkpoint covers entries to 4, at " in fooled.stdout
    caught = verify(Trail(fresh_url, collected))
    assert caught.returncode == 1
    assert f"{collected}: the newest checkpoint covers entries to 6, at " in caught.stdout
    assert "broken at entries 5 to 6: missing: a checkpoint of " in caught.stdout


def test_deleted_seals_are_named(trail: Trail) -> None:
    """Dropping the seals to pass rewritten entries off as not yet sealed does not work."""
    as_owner(trail, "DELETE FROM audit_seals WHERE seq >= 4")
    broken = verify(trail)
    assert broken.returncode == 1
    assert f"broken at entries 4 to {ENTRIES}: its seal is missing" in broken.stdout


def test_a_checkpoint_not_signed_with_the_key_is_reported(trail: Trail) -> None:
    forged = checkpoint_file.read(trail.checkpoints, KEY).checkpoints[-1]
    checkpoint_file.append(trail.checkpoints, forged.signed_line(secrets.token_bytes(32)))
    reported = verify(trail)
    assert reported.returncode == 1
    assert f"{trail.checkpoints}:2: its signature does not match this key" in reported.stdout


def test_a_checkpoint_line_that_is_not_utf8_is_reported_and_the_rest_read(
    trail: Trail, tmp_path: Path
) -> None:
    """A byte that is not UTF-8 stopped `audit verify` with a UnicodeDecodeError traceback:
    no finding, and no other file read. It is one more malformed line now."""
    torn = tmp_path / "api-2.jsonl"
    torn.write_bytes(b'{"database": "\xff"}\n' + trail.checkpoints.read_bytes())
    out = io.StringIO()
    env = {"DATABASE_URL": as_service(trail.owner_url), "SINERGI_AUDIT_KEY": KEY.hex()}
    argv = ["audit", "verify", "--checkpoints", str(torn), "--checkpoints", str(trail.checkpoints)]
    with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(out):
        returncode = main(argv)
    assert returncode == 1
    said = out.getvalue()
    assert (
        f"checkpoint file: {torn}:1: malformed: 'utf-8' codec can't decode byte 0xff in"
        " position 14: invalid start byte" in said
    )
    assert f"audit chain intact: {ENTRIES} entries verified, {ENTRIES} sealed" in said
    assert "2 checkpoints" in said  # the torn file's good line, and the trail's own


UNREADABLE_LINES = {
    # hmac.compare_digest refuses text beyond ASCII: a TypeError, and verify stopped.
    "a signature beyond ASCII": (
        '"seq": 1, "at": "2026-01-01T00:00:00+00:00", "signature": "\u00e9"'
    ),
    "a number for a signature": '"seq": 1, "at": "2026-01-01T00:00:00+00:00", "signature": 7',
    # Read, but not to be encoded again to check the signature: past 64 bits, before year 1.
    "a seq past 64 bits": (
        '"seq": "99999999999999999999999", "at": "2026-01-01T00:00:00+00:00", "signature": "0"'
    ),
    "a time UTC cannot hold": '"seq": 1, "at": "0001-01-01T00:00:00+01:00", "signature": "0"',
}


def test_a_collectors_checkpoint_line_of_any_content_is_reported_and_the_rest_read(
    trail: Trail, tmp_path: Path
) -> None:
    """Whoever can send to the syslog collector (or write the file) can write any line there:
    each one verify cannot take is named by file and line number, as README promises, and the
    other lines and files are still read. One signature beyond ASCII stopped verify with a
    traceback."""
    collected = tmp_path / "sinergi-audit.log"
    prefix = "Dec  6 05:00:00 host sinergi-audit: "
    planted = [
        f'{prefix}{{"database": "x", "hash": "h", "mac": "m", {fields}}}\n'
        for fields in UNREADABLE_LINES.values()
    ]
    genuine = [f"{prefix}{line}" for line in trail.checkpoints.read_text().splitlines(True)]
    collected.write_text("".join([*planted, *genuine]))
    out = io.StringIO()
    env = {"DATABASE_URL": as_service(trail.owner_url), "SINERGI_AUDIT_KEY": KEY.hex()}
    argv = ["audit", "verify", "--checkpoints", str(collected)]
    with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(out):
        returncode = main(argv)
    said = out.getvalue()
    assert returncode == 1, said
    for number in (1, 2):
        assert f"{collected}:{number}: its signature does not match this key" in said
    assert f"{collected}:3: malformed: Integer exceeds 64-bit range" in said
    assert f"{collected}:4: malformed: date value out of range" in said
    assert f"audit chain intact: {ENTRIES} entries verified, {ENTRIES} sealed" in said
    assert f"{len(genuine)} checkpoint" in said


def test_another_key_fails_every_seal(trail: Trail) -> None:
    wrong = verify(trail, secrets.token_bytes(32))
    assert wrong.returncode == 1
    assert f"broken at entries 1 to {ENTRIES}: does not match its seal" in wrong.stdout


def test_a_break_planted_early_does_not_hide_a_later_one(trail: Trail) -> None:
    """An insider who rewrites entry 5 cannot cover it by also breaking entry 2 so that the walk
    stops there: every break is named, and the entries between them still check out."""
    as_owner(
        trail,
        "UPDATE audit_log SET subjects = '{}' WHERE seq = 2",
        "DELETE FROM audit_seals WHERE seq = 5",
        "DELETE FROM audit_log WHERE seq = 5",
    )
    broken = verify(trail)
    assert broken.returncode == 1
    lines = [line for line in broken.stdout.splitlines() if "broken" in line]
    assert lines == [
        "audit chain broken at entry 2: content does not match its hash",
        "audit chain broken at entry 5: missing: the sequence has a gap",
    ]


# Entries PostgreSQL stores but orjson, which reads them back, refuses: one was enough to stop
# sealing for good and crash `audit verify` (the trail being append-only, for ever).
UNREADABLE = {
    "a number beyond a double": '{"records": {"msme": 1e400}}',
    "a negative one": '{"records": {"msme": -1e400}}',
    "one written out in digits": '{"n": 1' + "0" * 400 + "}",
    "nesting past 1,024 levels": "[" * 1100 + "]" * 1100,
}


@pytest.mark.parametrize("entry", UNREADABLE.values(), ids=UNREADABLE.keys())
async def test_the_service_role_cannot_append_an_entry_its_readers_cannot_read(
    migrated_url: str, entry: str
) -> None:
    connection = await asyncpg.connect(as_service(migrated_url))
    try:
        with pytest.raises(asyncpg.CheckViolationError, match="audit entry refused"):
            await connection.execute(
                "INSERT INTO audit_log (client_id, entry, subjects) VALUES ($1, $2, '{}')",
                "demo-province-62",
                entry,
            )
    finally:
        await connection.close()


# Subjects PostgreSQL stores in a text[] but that are no list of NIKs: `audit_log_hash()` read
# past them ({A,NULL} hashed as {A}) and the custodian's reads failed on them (INTERNAL).
NOT_NIKS = {
    "a NULL": ("{6271995204880001,NULL}", "a subject is NULL"),
    "only a NULL": ("{NULL}", "a subject is NULL"),
    "an array of arrays": ("{{6271995204880001},{6271995204880002}}", "array of arrays"),
}


@pytest.mark.parametrize(("subjects", "refusal"), NOT_NIKS.values(), ids=NOT_NIKS.keys())
async def test_the_service_role_cannot_append_subjects_that_are_not_niks(
    migrated_url: str, subjects: str, refusal: str
) -> None:
    connection = await asyncpg.connect(as_service(migrated_url))
    try:
        with pytest.raises(asyncpg.CheckViolationError, match=refusal):
            await connection.execute(
                "INSERT INTO audit_log (client_id, entry, subjects)"
                " VALUES ($1, '{}', CAST($2::text AS text[]))",
                "demo-province-62",
                subjects,
            )
    finally:
        await connection.close()


@pytest.mark.parametrize("subjects", [NOT_NIKS["a NULL"][0], NOT_NIKS["an array of arrays"][0]])
def test_an_entry_stored_with_subjects_that_are_not_niks_is_read_around_and_named(
    trail: Trail, subjects: str
) -> None:
    """Stored before migration 0030: the custodian reads the trail, its NIKs without the NULL,
    and the read's own entry names it by its position; `audit verify` names the entry."""
    planted = ENTRIES + 1
    _plant(trail, '{"records": {"msme": 1}}', subjects)

    async def page() -> tuple[Any, asyncpg.Record | None]:
        connection = await asyncpg.connect(trail.owner_url)
        engine = create_engine(as_service(trail.owner_url), statement_timeout_ms=10_000)
        try:
            read = await run(engine, CUSTODIAN, "{ auditEntries(first: 2) { seq subjects } }")
            audited = await connection.fetchrow(
                "SELECT entry::text AS entry, subjects FROM audit_log ORDER BY seq DESC LIMIT 1"
            )
            return read, audited
        finally:
            await connection.close()
            await engine.dispose()

    read, audited = asyncio.run(page())
    assert audited is not None
    assert read.errors is None, read.errors
    shown = {entry["seq"]: entry["subjects"] for entry in read.data["auditEntries"]}
    niks = ["6271995204880001"] if "NULL" in subjects else ["6271995204880001", "6271995204880002"]
    assert shown == {planted: niks, planted - 1: [f"3171{ENTRIES - 1:012d}"]}
    assert (json.loads(audited["entry"])["positions"], audited["subjects"]) == (
        [planted - 1, planted],
        [],
    )
    broken = verify(trail)
    assert broken.returncode == 1
    assert f"broken at entry {planted}: its subjects are not a list of NIKs" in broken.stdout


async def test_entries_nest_32_levels_at_most(migrated_url: str) -> None:
    """The entries Sinergi writes nest three levels (`AccessPolicy.audit_entry`)."""
    connection = await asyncpg.connect(as_service(migrated_url))
    append = (
        "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
        " VALUES ('x', $1, '{}', repeat('0', 64), md5(random()::text))"
    )
    try:
        await connection.execute(append, "[" * 33 + "]" * 33)  # the innermost 32 levels below
        await connection.execute(append, '{"n": 1.7976931348623157e308}')  # the largest double
        with pytest.raises(asyncpg.CheckViolationError, match="deeper than 32 levels"):
            await connection.execute(append, "[" * 34 + "]" * 34)
    finally:
        await connection.close()


def _plant(trail: Trail, entry: str, subjects: str = "{}") -> None:
    """Append `entry` naming `subjects` (an array literal) chained as the trigger would, but
    past its checks: as the owner with the triggers off (or, the same, an entry stored before
    migrations 0024 and 0030 made them)."""
    literal = entry.replace("'", "''")
    as_owner(
        trail,
        f"""
        INSERT INTO audit_log (seq, at, client_id, entry, subjects, prev_hash, hash)
        SELECT last.seq + 1, now.at, 'planted', planted.entry, planted.subjects, last.hash,
               audit_log_hash(last.hash, last.seq + 1, now.at, 'planted', planted.entry,
                              planted.subjects)
          FROM (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS last,
               (SELECT clock_timestamp() AS at) AS now,
               (SELECT CAST('{literal}' AS jsonb) AS entry,
                       CAST('{subjects}' AS text[]) AS subjects) AS planted
        """,  # noqa: S608  # the entries written here
    )


@pytest.mark.parametrize(
    "entry",
    [UNREADABLE["a number beyond a double"], UNREADABLE["nesting past 1,024 levels"]],
    ids=["a number beyond a double", "nesting past 1,024 levels"],
)
def test_an_unreadable_entry_is_named_and_sealed_past(
    trail: Trail, entry: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Sealing seals past it, counting it as tampering; `audit verify` names it and checks every
    entry after it; the custodian reads the trail around it."""
    planted = ENTRIES + 1
    _plant(trail, entry)
    refusals = "sinergi_audit_seal_refusals_total"
    before = REGISTRY.get_sample_value(refusals) or 0.0
    with caplog.at_level("ERROR", logger="sinergi.audit"):
        asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 0, seal=True))
    assert REGISTRY.get_sample_value(refusals) == before + 1
    assert f"audit entry {planted} cannot be read" in caplog.text
    # Later entries are sealed on the planted one's seal (the newest when this round starts).
    asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 2, seal=True))
    assert REGISTRY.get_sample_value(refusals) == before + 1  # named once, when sealed past
    broken = verify(trail)
    assert broken.returncode == 1
    lines = [line for line in broken.stdout.splitlines() if "broken" in line]
    assert len(lines) == 1, broken.stdout
    assert lines[0].startswith(f"audit chain broken at entry {planted}: its content cannot be read")

    async def seals_and_page() -> tuple[list[int], Any]:
        connection = await asyncpg.connect(trail.owner_url)
        engine = create_engine(as_service(trail.owner_url), statement_timeout_ms=10_000)
        try:
            sealed = [row["seq"] for row in await connection.fetch("SELECT seq FROM audit_seals")]
            page = await run(engine, CUSTODIAN, "{ auditEntries(first: 5) { seq entry } }")
            return sorted(sealed), page
        finally:
            await connection.close()
            await engine.dispose()

    sealed, page = asyncio.run(seals_and_page())
    assert sealed == list(range(1, planted + 3))
    assert page.errors is None
    shown = {entry["seq"]: entry["entry"] for entry in page.data["auditEntries"]}
    assert set(shown) == set(range(planted - 2, planted + 3))
    assert set(shown[planted]) == {"unreadable"}
    assert shown[planted + 1] == {"n": 0, "note": "a|b"}


# An insider with the owner's rights has the trail drop entries, without an error: `audit verify`
# cannot name an entry that was never stored.
DROPPING = [
    "CREATE FUNCTION drop_entry() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
    "CREATE TRIGGER a_dropper BEFORE INSERT ON audit_log"
    " FOR EACH ROW EXECUTE FUNCTION drop_entry()",
]


def test_a_response_whose_entry_was_not_stored_is_not_sent(
    trail: Trail, caplog: pytest.LogCaptureFixture
) -> None:
    """The custodian reads the trail, which is itself audited: once entries are dropped, the
    read fails as INTERNAL with no data, however many entries its batch held."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from db.engine import async_url
    from db.seed import load_reference
    from sinergi.demo import SEED_DATA
    from sinergi.demo_mode import register_demo_clients
    from tests.support.http import served

    async def register() -> None:
        engine = create_async_engine(async_url(trail.owner_url))
        async with engine.begin() as connection:
            await load_reference(connection, SEED_DATA, targets=False)
        await register_demo_clients(engine)
        await engine.dispose()

    asyncio.run(register())
    read = {"query": "{ auditEntries(first: 1) { seq } }"}
    with served(trail.owner_url) as api:
        token = api.token("demo-walidata")
        assert api.post(read, token).json()["data"]["auditEntries"]
        as_owner(trail, *DROPPING)
        with caplog.at_level("ERROR", logger="sinergi.errors"):
            response = api.post(read, token)
    body = response.json()
    assert body.get("data") is None, body
    assert [error["extensions"]["code"] for error in body["errors"]] == ["INTERNAL"]
    assert "0 of 1 entries stored" in caplog.text
