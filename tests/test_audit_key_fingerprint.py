"""Every instance serving one database holds the one key its trail is sealed with, from the
first start on, sealed or not: the first `serve` records its key's fingerprint (migration 0044),
an instance with another key refuses to serve rather than hand out change-feed cursors no other
instance opens, and the service's role cannot replace the fingerprint. An instance whose
sealing finds another key made the trail is not ready."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import asyncpg
import pytest
from starlette.testclient import TestClient

from db.seals import key_fingerprint, read_checkpoint
from sinergi import audit_key
from sinergi.app import create_app
from sinergi.cli import main
from sinergi.settings import Settings
from tests.support.audit_trail import written, written_and_sealed
from tests.support.databases import as_service, run
from tests.support.served import free_port

KEY = secrets.token_bytes(32)
# An entry the service's role may insert: some MAC (migration 0051 refuses none), not a valid one.
SIGNED_BY_ANYONE = (
    "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
    " VALUES ('x', '{}', '{}', repeat('0', 64), md5(random()::text))"
)


def _serve(url: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`serve` as the service role, past its start checks: one that refuses exits by itself,
    one that passes them is stopped once it listens."""
    port = free_port()
    command = [sys.executable, "-m", "sinergi.cli", "serve", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**os.environ, "DATABASE_URL": as_service(url), "SINERGI_HOME": str(home), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while server.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    if server.poll() is None:
        server.terminate()
    stdout, stderr = server.communicate(timeout=60)
    return subprocess.CompletedProcess(server.args, server.returncode, stdout, stderr)


def _refused(served: subprocess.CompletedProcess[str]) -> bool:
    return served.returncode == 2 and "the audit key is not this database's" in served.stderr


def test_a_second_instance_with_a_key_of_its_own_refuses_an_unsealed_database(
    fresh_url: str, tmp_path: Path
) -> None:
    first = _serve(fresh_url, tmp_path / "a")
    assert not _refused(first), first.stderr
    assert (tmp_path / "a" / "audit.key").exists()
    audit_key.make(tmp_path / "b" / "audit.key")  # made when both started at once
    second = _serve(fresh_url, tmp_path / "b")
    assert _refused(second), second.stderr
    assert second.stderr.count("\n") == 1, second.stderr  # one line
    again = _serve(fresh_url, tmp_path / "b", SINERGI_AUDIT_KEY_FILE=str(tmp_path / "a/audit.key"))
    assert not _refused(again), again.stderr
    # No key, and a fingerprint recorded: none is made (as beside a sealed trail).
    keyless = _serve(fresh_url, tmp_path / "c")
    assert keyless.returncode == 2, keyless.stderr
    assert "recorded the fingerprint of its key, kept elsewhere" in keyless.stderr
    assert not (tmp_path / "c" / "audit.key").exists()


def test_a_sealed_database_without_a_fingerprint_takes_the_key_that_sealed_it(
    fresh_url: str, tmp_path: Path
) -> None:
    asyncio.run(written_and_sealed(fresh_url, KEY, tmp_path / "checkpoints.jsonl", 3))
    assert run(fresh_url, "SELECT * FROM audit_key_fingerprint") == []
    wrong = _serve(fresh_url, tmp_path, SINERGI_AUDIT_KEY=secrets.token_hex(32))
    assert wrong.returncode == 2, wrong.stderr
    assert run(fresh_url, "SELECT * FROM audit_key_fingerprint") == []
    right = _serve(fresh_url, tmp_path, SINERGI_AUDIT_KEY=KEY.hex())
    assert not _refused(right), right.stderr
    (trail,) = run(fresh_url, "SELECT id::text FROM audit_trail")
    (recorded,) = run(fresh_url, "SELECT fingerprint FROM audit_key_fingerprint")
    assert recorded["fingerprint"] == key_fingerprint(KEY, trail["id"])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_key_fingerprint SET fingerprint = 'forged'",
        "DELETE FROM audit_key_fingerprint",
        "TRUNCATE audit_key_fingerprint",
        "INSERT INTO audit_key_fingerprint (fingerprint) VALUES ('forged')",
    ],
)
def test_the_service_cannot_replace_the_fingerprint(fresh_url: str, statement: str) -> None:
    assert run(as_service(fresh_url), "SELECT record_audit_key_fingerprint('first')")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        run(as_service(fresh_url), statement)
    (kept,) = run(as_service(fresh_url), "SELECT record_audit_key_fingerprint('forged') AS f")
    assert kept["f"] == "first"
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="written once"):
        run(fresh_url, "UPDATE audit_key_fingerprint SET fingerprint = 'forged'")


def _readiness(url: str, key: bytes, seconds: float) -> list[int]:
    """/readyz of an app holding `key`, sealing every second, asked for up to `seconds` until
    it is not 200."""
    settings = Settings(audit_key_hex=key.hex(), audit_seal_seconds=1)
    answers = []
    with TestClient(create_app(settings, database_url=as_service(url))) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready = client.get("/readyz")
            answers.append(ready.status_code)
            if ready.status_code != 200:
                assert ready.json() == {
                    "status": "unavailable",
                    "audit": "another key sealed the trail",
                }
                break
            time.sleep(0.2)
    return answers


def test_an_instance_whose_key_did_not_seal_the_trail_is_not_ready(
    fresh_url: str, tmp_path: Path
) -> None:
    asyncio.run(written_and_sealed(fresh_url, KEY, tmp_path / "checkpoints.jsonl", 3))
    assert _readiness(fresh_url, secrets.token_bytes(32), 10)[-1] == 503


def test_a_forged_newest_seal_stops_sealing_but_not_readiness(
    fresh_url: str, tmp_path: Path
) -> None:
    """The service's role may append a seal: one that stopped every instance's readiness would
    let whoever holds its credentials take the service down."""
    asyncio.run(written_and_sealed(fresh_url, KEY, tmp_path / "checkpoints.jsonl", 3))
    service = as_service(fresh_url)
    run(service, SIGNED_BY_ANYONE)
    run(service, "INSERT INTO audit_seals (seq, mac) VALUES (4, repeat('f', 64))")
    answers = _readiness(fresh_url, KEY, 2.5)
    assert set(answers) == {200}


FORGED_FIRST_SEALS = {
    "hex": "f" * 64,
    # The shape migration 0052 refuses, stored before it: compared as text, it stopped `serve`
    # at its key check with a TypeError, where any other forged seal leaves it serving.
    "beyond ASCII": "\u00e9" * 64,
}


@pytest.mark.parametrize("forged", FORGED_FIRST_SEALS.values(), ids=FORGED_FIRST_SEALS.keys())
def test_a_forged_first_seal_leaves_instances_ready_and_serving(
    fresh_url: str, tmp_path: Path, forged: str
) -> None:
    """On a trail nothing sealed yet, the service's role could write entry 1 and a seal of it:
    judged by that seal, every instance went unready and none could start again. The recorded
    fingerprint, which that role cannot change, names the key instead."""
    asyncio.run(written_and_sealed(fresh_url, KEY, tmp_path / "checkpoints.jsonl", 0))
    service = as_service(fresh_url)
    trail = run(fresh_url, "SELECT id::text FROM audit_trail")[0][0]
    run(service, "SELECT record_audit_key_fingerprint($1)", key_fingerprint(KEY, trail))
    run(service, SIGNED_BY_ANYONE)
    run(fresh_url, "ALTER TABLE audit_seals DROP CONSTRAINT ck_audit_seals_mac_shape")
    run(service, "INSERT INTO audit_seals (seq, mac) SELECT max(seq), $1 FROM audit_log", forged)
    assert set(_readiness(fresh_url, KEY, 2.5)) == {200}
    settings = Settings(audit_key_hex=KEY.hex(), home=tmp_path)
    assert asyncio.run(audit_key.for_database(settings, service, check=True)) == KEY
    returncode, printed, _ = _verify(fresh_url, tmp_path / "checkpoints.jsonl", KEY)
    assert returncode == 1, printed
    assert "audit chain broken at entry 1: does not match its seal" in printed


def _recorded_and_sealed(url: str, checkpoints: Path) -> None:
    """Three entries sealed with KEY, whose fingerprint the first `serve` recorded."""
    asyncio.run(written_and_sealed(url, KEY, checkpoints, 3))
    (trail,) = run(url, "SELECT id::text FROM audit_trail")
    run(as_service(url), "SELECT record_audit_key_fingerprint($1)", key_fingerprint(KEY, trail[0]))


def _as_owner(url: str, table: str, *statements: str) -> None:
    """With `table`'s triggers off, as the owner may and the service may not."""
    run(url, f"ALTER TABLE {table} DISABLE TRIGGER USER")
    for statement in statements:
        run(url, statement)
    run(url, f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _verify(url: str, checkpoints: Path, key: bytes) -> tuple[int, str, str]:
    """`sinergi audit verify` as an operator runs it, with the owner's URL (`url`) as well as
    the service's: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    env = {
        "DATABASE_URL": as_service(url),
        "DATABASE_OWNER_URL": url,
        "SINERGI_AUDIT_KEY": key.hex(),
        "SINERGI_AUDIT_CHECKPOINTS": str(checkpoints),
    }
    with (
        mock.patch.dict(os.environ, env),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        returncode = main(["audit", "verify"])
    return returncode, out.getvalue(), err.getvalue()


def test_verify_with_another_key_says_so_by_the_fingerprint_not_tampering(
    fresh_url: str, tmp_path: Path
) -> None:
    """A wrong key failed every seal, and verify reported the whole trail rewritten: a false
    alarm of tampering, where the recorded fingerprint tells the key is not the trail's."""
    checkpoints = tmp_path / "checkpoints.jsonl"
    _recorded_and_sealed(fresh_url, checkpoints)
    returncode, out, err = _verify(fresh_url, checkpoints, secrets.token_bytes(32))
    assert returncode == 2
    assert out == ""
    assert err.count("\n") == 1, err  # one line
    assert "the audit key is not this trail's" in err
    assert "fingerprint" in err
    assert "broken" not in err


def test_verify_with_the_trails_key_still_names_tampering(fresh_url: str, tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    _recorded_and_sealed(fresh_url, checkpoints)
    _as_owner(
        fresh_url,
        "audit_log",
        "UPDATE audit_log SET entry = '{\"n\": 9}', hash = audit_log_hash(prev_hash, seq, at,"
        " client_id, '{\"n\": 9}', subjects) WHERE seq = 1",
    )
    returncode, out, err = _verify(fresh_url, checkpoints, KEY)
    assert returncode == 1
    assert "audit chain broken at entry 1: does not match its seal" in out
    # The fingerprint names the key: the first seal failing is no hint of a wrong one.
    assert "the audit key may not be" not in out
    assert "fingerprint" not in out + err


def test_verify_names_a_fingerprint_changed_under_the_trails_key(
    fresh_url: str, tmp_path: Path
) -> None:
    """The owner may replace the fingerprint: then the key that sealed the trail is not taken
    for the wrong one, and the change is a finding."""
    checkpoints = tmp_path / "checkpoints.jsonl"
    _recorded_and_sealed(fresh_url, checkpoints)
    _as_owner(
        fresh_url,
        "audit_key_fingerprint",
        "UPDATE audit_key_fingerprint SET fingerprint = 'another'",
    )
    returncode, out, _ = _verify(fresh_url, checkpoints, KEY)
    assert returncode == 1
    assert "audit key fingerprint changed" in out
    assert "audit chain intact: 3 entries verified, 3 sealed" in out


def test_verify_names_the_service_role_as_able_to_record_a_fingerprint_first(
    fresh_url: str, tmp_path: Path
) -> None:
    """Before any server records one, whoever holds the service's credentials may call the
    recording function (the README's audit trail section): verify then blamed the owner alone
    for a fingerprint recorded by the service's role."""
    checkpoints = tmp_path / "checkpoints.jsonl"
    asyncio.run(written_and_sealed(fresh_url, KEY, checkpoints, 3))
    run(as_service(fresh_url), "SELECT record_audit_key_fingerprint(repeat('0', 64))")
    returncode, out, _ = _verify(fresh_url, checkpoints, KEY)
    assert returncode == 1
    assert "audit key fingerprint changed" in out
    assert "only the owner" not in out
    assert "by whoever holds the service's credentials" in out
    assert "see the README's audit trail section for the owner's reset" in out
    assert "audit chain intact: 3 entries verified, 3 sealed" in out


_REWRITE_ENTRY_1 = (
    "UPDATE audit_log SET entry = '{\"n\": 9}', hash = audit_log_hash(prev_hash, seq, at,"
    " client_id, '{\"n\": 9}', subjects) WHERE seq = 1"
)


def _rewritten_with_first_seal(url: str, seal: str) -> None:
    """The owner's tampering that would pass for a wrong key: entry 1 rewritten (its hash
    recomputed), its seal made to fail under the trail's key (`seal`: the statement on it), and
    the fingerprint's binding changed with a new trail id."""
    _as_owner(url, "audit_log", _REWRITE_ENTRY_1)
    _as_owner(url, "audit_seals", seal)
    _as_owner(url, "audit_trail", "UPDATE audit_trail SET id = gen_random_uuid()")


def test_verify_walks_a_trail_whose_checkpoints_vouch_for_the_key(
    fresh_url: str, tmp_path: Path
) -> None:
    """The owner rewrote entry 1, forged its seal and changed the trail's id: the key no longer
    reproduces the fingerprint nor the first seal, and verify took the trail's own key for a
    wrong one and checked nothing. The checkpoints, out of the owner's reach, vouch for it."""
    checkpoints = tmp_path / "checkpoints.jsonl"
    _recorded_and_sealed(fresh_url, checkpoints)
    _rewritten_with_first_seal(
        fresh_url, "UPDATE audit_seals SET mac = repeat('f', 64) WHERE seq = 1"
    )
    returncode, out, err = _verify(fresh_url, checkpoints, KEY)
    assert returncode == 1, err
    # The checkpoints name this database under the id it had: as another deployment's of the
    # same database name would, so both readings are said (see the staging test below).
    assert "audit key not checked against this trail" in out
    assert "if not, this trail's id was changed" in out
    assert "audit chain broken at entry 1" in out
    assert "it was changed since" in out  # the checkpoints name the id it had
    # Without them nothing vouches for the key: refused, saying what it would mean for the
    # trail's key.
    returncode, out, err = _verify(fresh_url, tmp_path / "none.jsonl", KEY)
    assert returncode == 2
    assert out == ""
    assert "If this is the trail's key, then the fingerprint" in err
    assert "and the first seal were both rewritten" in err


def test_verify_walks_a_trail_whose_first_seal_was_removed(fresh_url: str, tmp_path: Path) -> None:
    """With no seal of entry 1, `made_with` tells nothing: that is no evidence of a wrong key,
    so the trail is walked even with no checkpoint to vouch for the key."""
    checkpoints = tmp_path / "checkpoints.jsonl"
    _recorded_and_sealed(fresh_url, checkpoints)
    _rewritten_with_first_seal(fresh_url, "DELETE FROM audit_seals WHERE seq = 1")
    returncode, out, err = _verify(fresh_url, tmp_path / "none.jsonl", KEY)
    assert returncode == 1, err
    assert "audit key fingerprint changed, or the key is not the trail's" in out
    assert "audit chain broken at entry 1" in out
    assert "first seal was removed, as only the owner can" in out
    assert "fingerprint or the trail's id was changed: by the owner, or, before any" in out


def test_verify_counts_one_entry_and_one_checkpoint_in_the_singular(
    fresh_url: str, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    asyncio.run(written_and_sealed(fresh_url, KEY, checkpoints, 1))
    returncode, out, _ = _verify(fresh_url, checkpoints, KEY)
    assert returncode == 0, out
    assert out.endswith(
        "audit chain intact: 1 entry verified, 1 sealed (0 written since the last seal),"
        " 1 checkpoint\n"
    )


def test_verify_with_another_deployments_key_and_checkpoints_accuses_no_one(
    fresh_url: str, other_fresh_url: str, tmp_path: Path
) -> None:
    """An operator whose shell holds deployment A's key and checkpoint file (its SINERGI_HOME)
    and B's DATABASE_URL: A's checkpoints verify under A's key, and were taken to vouch for it
    as B's, so verify reported B's fingerprint changed and its whole trail rewritten, as only the
    owner can. They name A's trail and database, and verify says so."""
    mine = tmp_path / "a.jsonl"
    _recorded_and_sealed(fresh_url, mine)
    other_key = secrets.token_bytes(32)
    asyncio.run(written_and_sealed(other_fresh_url, other_key, tmp_path / "b.jsonl", 3))
    (trail,) = run(other_fresh_url, "SELECT id::text FROM audit_trail")
    run(
        as_service(other_fresh_url),
        "SELECT record_audit_key_fingerprint($1)",
        key_fingerprint(other_key, trail[0]),
    )
    returncode, out, err = _verify(other_fresh_url, mine, KEY)
    assert returncode == 1, err
    assert "audit key fingerprint changed" not in out
    assert "as only the owner can" not in out
    assert "the checkpoints signed with it are of trail " in out
    assert f"not of this one (trail {trail[0]} in " in out
    assert "If DATABASE_URL is another deployment's" in out
    assert "audit chain broken at entries 1 to 3" in out  # walked: a changed id would show alike
    # Its own key and checkpoints: intact.
    returncode, out, err = _verify(other_fresh_url, tmp_path / "b.jsonl", other_key)
    assert (returncode, err) == (0, ""), out


def test_verify_with_another_deployments_checkpoints_of_the_same_database_name_accuses_no_one(
    fresh_url: str, other_fresh_url: str, tmp_path: Path
) -> None:
    """Every compose deployment names its database `sinergi`: staging's checkpoints name
    production's database, under staging's trail id. Verify took them for production's own,
    its id changed, and said its fingerprint was changed "as only the owner can"."""
    staging = tmp_path / "staging.jsonl"
    _recorded_and_sealed(fresh_url, staging)
    (production,) = run(other_fresh_url, "SELECT current_database()")
    lines = staging.read_text(encoding="utf-8").splitlines()
    staging.write_text(
        "".join(
            replace(read_checkpoint(line, KEY), database=production[0]).signed_line(KEY) + "\n"
            for line in lines
        ),
        encoding="utf-8",
    )
    other_key = secrets.token_bytes(32)
    asyncio.run(written_and_sealed(other_fresh_url, other_key, tmp_path / "production.jsonl", 3))
    (trail,) = run(other_fresh_url, "SELECT id::text FROM audit_trail")
    run(
        as_service(other_fresh_url),
        "SELECT record_audit_key_fingerprint($1)",
        key_fingerprint(other_key, trail[0]),
    )
    returncode, out, err = _verify(other_fresh_url, staging, KEY)
    assert returncode == 1, err
    assert "as only the owner can" not in out
    assert "the checkpoints signed with it are of trail " in out
    assert f"not of this one (trail {trail[0]} in {production[0]})" in out
    assert "If DATABASE_URL is another deployment's" in out


def test_verify_with_another_key_on_a_trail_never_sealed_says_nothing_is_sealed(
    fresh_url: str, tmp_path: Path
) -> None:
    """With nothing sealed, no seal tells the key: verify said the first seal was removed, as
    only the owner can, of a trail no server had sealed yet."""
    (trail,) = run(fresh_url, "SELECT id::text FROM audit_trail")
    service = as_service(fresh_url)
    run(service, "SELECT record_audit_key_fingerprint($1)", key_fingerprint(KEY, trail[0]))
    asyncio.run(written(service, KEY, 3))
    returncode, out, err = _verify(fresh_url, tmp_path / "none.jsonl", secrets.token_bytes(32))
    assert returncode == 1, err  # a finding, as the README's audit section says
    assert "nothing is sealed yet, so the key cannot be checked against the trail" in out
    assert "if seals existed, they were removed" in out
    assert "as only the owner can" not in out
    # The entries' MACs, made with the trail's key, fail under another.
    assert "audit chain broken at entries 1 to 3: does not match its MAC" in out
