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
AT = datetime(2026, 1, 1, tzinfo=UTC)


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


def _name_only_checkpoint(url: str, checkpoints: Path, seq: int) -> None:
    """A checkpoint of entry `seq` as sealing wrote it before migration 0041: naming only the
    database."""
    ((database, hash_, mac),) = run(
        url,
        "SELECT current_database(), l.hash, s.mac FROM audit_log l JOIN audit_seals s"
        " USING (seq) WHERE seq = $1",
        seq,
    )
    with checkpoints.open("a") as file:
        file.write(Checkpoint(database, seq, hash_, mac, datetime.now(UTC)).signed_line(KEY))


def test_a_changed_trail_id_does_not_set_aside_its_checkpoints_for_older_ones(
    fresh_url: str, tmp_path: Path
) -> None:
    """Attack: the owner cuts the trail back to an older checkpoint naming only the database,
    and changes the trail's id, so that every newer checkpoint, naming the id, would be set
    aside as another trail's."""
    checkpoints = tmp_path / "checkpoints.jsonl"
    asyncio.run(written_and_sealed(fresh_url, KEY, tmp_path / "scratch.jsonl", 3))
    _name_only_checkpoint(fresh_url, checkpoints, 3)
    asyncio.run(written_and_sealed(fresh_url, KEY, checkpoints, 3))  # entries 4 to 6
    code, said = _verify(fresh_url, checkpoints)
    assert code == 0, said
    assert "2 checkpoints" in said

    for table in ("audit_log", "audit_seals", "audit_trail"):
        run(fresh_url, f"ALTER TABLE {table} DISABLE TRIGGER USER")
    run(fresh_url, "DELETE FROM audit_seals WHERE seq > 3")
    run(fresh_url, "DELETE FROM audit_log WHERE seq > 3")
    run(fresh_url, "UPDATE audit_trail SET id = gen_random_uuid()")
    code, said = _verify(fresh_url, checkpoints)
    assert code == 1, said
    assert "audit chain broken at entry 6: a checkpoint of " in said
    assert "names this database under trail " in said
    assert "it was changed since" in said
    assert "audit chain intact" not in said

    # The id removed: the checkpoint naming one is a break all the same.
    run(fresh_url, "DROP TABLE audit_trail")
    code, said = _verify(fresh_url, checkpoints)
    assert code == 1, said
    assert "but the trail's id is none: audit_trail is empty or missing" in said


def test_another_trail_set_aside_while_older_checkpoints_apply_by_name_fails(
    fresh_url: str, tmp_path: Path
) -> None:
    """Another database's checkpoints (another name, another id) are set aside; but with only
    older ones applying, by this database's name, a trail whose id and name were both changed
    would show alike, so verify fails rather than vouch."""
    checkpoints = tmp_path / "checkpoints.jsonl"
    asyncio.run(written_and_sealed(fresh_url, KEY, tmp_path / "scratch.jsonl", 3))
    _name_only_checkpoint(fresh_url, checkpoints, 3)
    other = Checkpoint("sinergi_other", 9, "h", "m", AT, trail=str(uuid.uuid4()))
    with checkpoints.open("a") as file:
        file.write(other.signed_line(KEY))
    code, said = _verify(fresh_url, checkpoints)
    assert code == 1, said
    assert "1 checkpoints name another trail, set aside, while 1 older ones apply" in said
    assert "audit chain intact: 3 entries verified" in said


def test_the_trail_id_is_written_once(fresh_url: str) -> None:
    with pytest.raises(InsufficientPrivilegeError, match="written once: UPDATE refused"):
        run(fresh_url, "UPDATE audit_trail SET id = gen_random_uuid()")


def test_a_checkpoint_applies_by_its_trail_and_an_older_one_by_its_database() -> None:
    named = Checkpoint("sinergi", 3, "h", "m", AT, trail="trail-a")
    assert named.applies_to("trail-a", "sinergi_restored")
    assert not named.applies_to("trail-b", "sinergi")
    older = Checkpoint("sinergi", 3, "h", "m", AT)
    assert older.applies_to("trail-a", "sinergi")
    assert not older.applies_to("trail-a", "sinergi_restored")


def test_a_checkpoint_naming_this_database_under_another_trail_contradicts_it() -> None:
    named = Checkpoint("sinergi", 3, "h", "m", AT, trail="trail-a")
    assert named.contradicts("trail-b", "sinergi")
    assert named.contradicts(None, "sinergi")
    assert not named.contradicts("trail-a", "sinergi")
    assert not named.contradicts("trail-b", "sinergi_other")
    assert not Checkpoint("sinergi", 3, "h", "m", AT).contradicts("trail-b", "sinergi")


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
