"""Checkpoints name the trail by the id it keeps in its database (migration 0041), not by the
database's name: a dump of the trail restored under another name, its newest entries missing,
fails `audit verify` against the checkpoints of the trail it was cut from."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asyncpg.exceptions import InsufficientPrivilegeError
from sqlalchemy.engine import make_url

from db.seals import BadCheckpoint, Checkpoint, read_checkpoint
from tests.support.audit_trail import written_and_sealed
from tests.support.cli import sinergi
from tests.support.databases import create_database, drop_database, run

KEY = secrets.token_bytes(32)


def _verify(url: str, checkpoints: Path) -> tuple[int, str]:
    code, out, err = sinergi(
        url,
        "audit",
        "verify",
        "--stopped",
        env={"SINERGI_AUDIT_KEY": KEY.hex(), "SINERGI_AUDIT_CHECKPOINTS": str(checkpoints)},
    )
    return code, out + err


def test_a_copy_restored_under_another_name_short_of_its_checkpoints_fails(
    server_url: str, fresh_url: str, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    asyncio.run(written_and_sealed(fresh_url, KEY, checkpoints, 3))
    original = make_url(fresh_url).database
    assert original is not None
    restored = f"sinergi_restored_{uuid.uuid4().hex[:10]}"
    asyncio.run(create_database(server_url, restored, template=original))  # the dump, at entry 3
    restored_url = make_url(server_url).set(database=restored).render_as_string(False)
    try:
        asyncio.run(written_and_sealed(fresh_url, KEY, checkpoints, 3))  # entries 4 to 6
        assert _verify(fresh_url, checkpoints)[0] == 0
        code, said = _verify(restored_url, checkpoints)
        assert code == 1, said
        assert "audit chain broken at entries 4 to 6: missing: a checkpoint of" in said
        assert "sealed the chain through entry 6" in said

        # Given another id (the owner can), it is another trail: none of the checkpoints apply,
        # which fails too rather than pass with nothing vouching for its end.
        run(restored_url, "ALTER TABLE audit_trail DISABLE TRIGGER USER")
        run(restored_url, "UPDATE audit_trail SET id = gen_random_uuid()")
        code, said = _verify(restored_url, checkpoints)
        assert code == 1, said
        assert "2 checkpoints name another trail or database; none apply" in said
        assert "audit chain intact: 3 entries verified, 3 sealed (0 written since the last" in said
        assert "0 checkpoints" in said
    finally:
        asyncio.run(drop_database(server_url, restored))


def test_the_trail_id_is_written_once(fresh_url: str) -> None:
    with pytest.raises(InsufficientPrivilegeError, match="written once: UPDATE refused"):
        run(fresh_url, "UPDATE audit_trail SET id = gen_random_uuid()")


AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_checkpoint_applies_by_its_trail_and_an_older_one_by_its_database() -> None:
    named = Checkpoint("sinergi", 3, "h", "m", AT, trail="trail-a")
    assert named.applies_to("trail-a", "sinergi_restored")
    assert not named.applies_to("trail-b", "sinergi")
    older = Checkpoint("sinergi", 3, "h", "m", AT)
    assert older.applies_to("trail-a", "sinergi")
    assert not older.applies_to("trail-a", "sinergi_restored")


def test_the_signature_covers_the_trail_and_older_lines_still_read() -> None:
    key = bytes(32)
    named = Checkpoint("sinergi", 3, "h", "m", AT, trail="trail-a")
    assert read_checkpoint(named.signed_line(key), key) == named
    with pytest.raises(BadCheckpoint, match="signature"):
        read_checkpoint(named.signed_line(key).replace("trail-a", "trail-b"), key)
    with pytest.raises(BadCheckpoint, match="signature"):
        read_checkpoint(named.signed_line(key).replace('"trail":"trail-a",', ""), key)
    older = Checkpoint("sinergi", 3, "h", "m", AT)
    assert '"trail"' not in older.signed_line(key)
    assert read_checkpoint(older.signed_line(key), key) == older
