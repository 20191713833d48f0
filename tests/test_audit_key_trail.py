"""The audit key belongs to the trail it sealed: a command finding no key beside a sealed trail
refuses rather than make a new one, `serve` refuses a key that did not seal the trail, and
`audit verify` with such a key says the key may be wrong before anyone takes it for tampering.
The sealing time an operator alerts on stops when sealing does."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from db.engine import create_engine
from sinergi import metrics
from sinergi.audit_sealer import AuditSealer
from tests.support.audit_trail import written_and_sealed
from tests.support.cli import sinergi
from tests.support.databases import as_service

KEY = secrets.token_bytes(32)
SEALED_AT = "sinergi_audit_sealed_timestamp_seconds"


def _sealed(url: str, tmp_path: Path) -> Path:
    """Six entries sealed with KEY; the checkpoint file."""
    checkpoints = tmp_path / "checkpoints.jsonl"
    asyncio.run(written_and_sealed(url, KEY, checkpoints, 6))
    return checkpoints


def test_verify_without_the_key_refuses_and_makes_none(fresh_url: str, tmp_path: Path) -> None:
    checkpoints = _sealed(fresh_url, tmp_path)
    home = tmp_path / "fresh"
    code, out, err = sinergi(
        as_service(fresh_url),
        "audit",
        "verify",
        env={
            "DATABASE_OWNER_URL": fresh_url,
            "SINERGI_HOME": str(home),
            "SINERGI_AUDIT_CHECKPOINTS": str(checkpoints),
        },
    )
    assert (code, out) == (2, ""), err
    assert err.startswith(f"sinergi: no audit key at {home / 'audit.key'}, yet this database's")
    assert "sealed through entry 6 (6 seals)" in err
    assert "SINERGI_AUDIT_KEY_FILE" in err
    assert "SINERGI_HOME" in err
    assert not (home / "audit.key").exists()


def test_a_key_is_made_for_a_trail_nothing_sealed(fresh_url: str, tmp_path: Path) -> None:
    code, out, err = sinergi(
        as_service(fresh_url), "audit", "verify", "--stopped", env={"SINERGI_HOME": str(tmp_path)}
    )
    assert code == 0, out + err
    assert (tmp_path / "audit.key").exists()


def test_verify_with_another_key_says_the_key_may_be_wrong(fresh_url: str, tmp_path: Path) -> None:
    checkpoints = _sealed(fresh_url, tmp_path)
    code, out, _ = sinergi(
        as_service(fresh_url),
        "audit",
        "verify",
        env={"SINERGI_AUDIT_KEY": secrets.token_hex(32), "SINERGI_AUDIT_CHECKPOINTS": "/dev/null"},
    )
    assert code == 1
    assert "audit chain broken at entries 1 to 6: does not match its seal" in out
    assert "the audit key may not be the one that sealed this trail" in out
    right = sinergi(
        as_service(fresh_url),
        "audit",
        "verify",
        env={"SINERGI_AUDIT_KEY": KEY.hex(), "SINERGI_AUDIT_CHECKPOINTS": str(checkpoints)},
    )
    assert right[0] == 0, right
    assert "may not be the one" not in right[1]


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "serve", "--port", "1"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_serve_refuses_a_key_that_did_not_seal_the_trail_or_none(
    fresh_url: str, tmp_path: Path
) -> None:
    _sealed(fresh_url, tmp_path)
    service = {"DATABASE_URL": as_service(fresh_url), "SINERGI_HOME": str(tmp_path / "home")}
    wrong = _serve({**service, "SINERGI_AUDIT_KEY": secrets.token_hex(32)})
    assert wrong.returncode == 2, wrong.stderr
    assert "sinergi: the audit key does not match this database's seals" in wrong.stderr
    missing = _serve(service)
    assert missing.returncode == 2, missing.stderr
    assert "no audit key at" in missing.stderr
    assert not (tmp_path / "home" / "audit.key").exists()


def test_the_sealing_time_stops_when_sealing_stops(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round refused (here: a key that did not make the newest seal) leaves the time where
    it was, so the alert on it ("more than a minute behind") fires. Only this test's rounds are
    looked at: a server another module left running in this process (the session's demo app)
    seals its own trail every two seconds, into the same gauge."""
    _sealed(fresh_url, tmp_path)
    here, rounds = threading.get_ident(), []
    observe = metrics.observe_sealing

    def observing(head: int | None, *, refused: bool, stopped: bool) -> None:
        if threading.get_ident() == here:
            before = REGISTRY.get_sample_value(SEALED_AT)
            observe(head, refused=refused, stopped=stopped)
            rounds.append(REGISTRY.get_sample_value(SEALED_AT) != before)
        else:
            observe(head, refused=refused, stopped=stopped)

    monkeypatch.setattr(metrics, "observe_sealing", observing)

    async def seal(key: bytes) -> None:
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000)
        try:
            await AuditSealer(engine, key, tmp_path / "checkpoints.jsonl", 1).publish()
        finally:
            await engine.dispose()

    asyncio.run(seal(secrets.token_bytes(32)))
    asyncio.run(seal(KEY))
    assert rounds == [False, True]  # the refused round moved no time; the next one did
