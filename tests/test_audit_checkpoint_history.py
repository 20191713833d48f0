"""The checkpoint file keeps every checkpoint: an entry rewritten after one sealed it cannot pass
`sinergi audit verify` by being checkpointed again, and a sealed trail no checkpoint vouches for
does not pass at all.

The owner (compose's migrate and import containers hold its credentials) can delete the newest
entry with its seal. The service's next entry then takes its number, and the running `serve`
seals and checkpoints it: the file holds two checkpoints of that entry, which disagree. Verify
compared the stored entry with the last of them only, and passed the rewritten trail.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from db.engine import create_engine
from db.seals import Checkpoint
from sinergi import checkpoint_file
from sinergi.audit_sealer import AuditSealer
from tests.support.audit_trail import (
    ENTRIES,
    KEY,
    Trail,
    as_owner,
    rewritten_as_owner,
    sealed_trail,
    verify,
    written,
    written_for_tampering,
)
from tests.support.databases import as_service

DELETE_THE_NEWEST = (
    "DELETE FROM audit_seals WHERE seq = (SELECT max(seq) FROM audit_log)",
    "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)",
)
DISAGREE = (
    f"audit chain broken at entry {ENTRIES}: two checkpoints that sealed it disagree: the trail"
    " was rewritten after it was checkpointed"
)
REFUSALS = "sinergi_audit_seal_refusals_total"


@pytest.fixture
def trail(fresh_url: str, tmp_path: Path) -> Trail:
    return sealed_trail(fresh_url, tmp_path / "audit-checkpoints.jsonl")


def _checkpoints(trail: Trail) -> list[Checkpoint]:
    return checkpoint_file.read(trail.checkpoints, KEY).checkpoints


def test_the_newest_entry_deleted_then_taken_by_the_next_is_named(trail: Trail) -> None:
    as_owner(trail, *DELETE_THE_NEWEST)
    assert verify(trail).returncode == 1  # missing, until the service writes again
    asyncio.run(written_for_tampering(trail.owner_url, trail.checkpoints, 1, seal=True))
    assert [c.seq for c in _checkpoints(trail)] == [ENTRIES, ENTRIES]

    broken = verify(trail)
    assert broken.returncode == 1, broken.stdout
    assert DISAGREE in broken.stdout


def test_an_older_checkpoint_of_an_entry_disagreeing_with_a_newer_one_is_named(
    trail: Trail,
) -> None:
    """The stored entry matches the newer checkpoint, as it does once rewritten and sealed
    again: the older one still names it."""
    (genuine,) = _checkpoints(trail)
    older = Checkpoint(
        genuine.database, genuine.seq, "0" * 64, "1" * 64, genuine.at, genuine.trail
    ).signed_line(KEY)
    trail.checkpoints.write_text(older + trail.checkpoints.read_text())

    broken = verify(trail)
    assert broken.returncode == 1, broken.stdout
    assert DISAGREE in broken.stdout


@pytest.mark.parametrize("file", ["missing", "empty"])
def test_a_sealed_trail_no_checkpoint_vouches_for_fails(trail: Trail, file: str) -> None:
    trail.checkpoints.unlink()
    if file == "empty":
        trail.checkpoints.touch()
    unvouched = verify(trail)
    assert unvouched.returncode == 1, unvouched.stdout
    assert (
        "nothing outside the database vouches for this trail: no checkpoint applies, yet it"
        f" holds seals of {ENTRIES} entries" in unvouched.stdout
    )


def test_a_trail_nothing_sealed_yet_passes_without_checkpoints(
    fresh_url: str, tmp_path: Path
) -> None:
    trail = Trail(fresh_url, tmp_path / "audit-checkpoints.jsonl")
    asyncio.run(written_for_tampering(fresh_url, trail.checkpoints, 2, seal=False))
    intact = verify(trail)
    assert intact.returncode == 0, intact.stdout
    assert f"{trail.checkpoints}: no checkpoints" in intact.stdout


async def test_the_sealer_names_an_entry_it_sealed_that_changed_and_seals_on(
    fresh_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The running `serve` saw entry N sealed; a round that finds it gone, or another in its
    place, says so and counts it, rather than checkpoint over it in silence. It seals on, as
    past any tampering it cannot undo: the trail is append-only, so stopping would leave every
    later entry unsealed for good."""
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    await written(fresh_url, KEY, ENTRIES)
    engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000)
    try:
        sealer = AuditSealer(engine, KEY, checkpoints, 1)
        await sealer.publish()
        await rewritten_as_owner(fresh_url, *DELETE_THE_NEWEST)
        await written(fresh_url, KEY, 1)
        before = REGISTRY.get_sample_value(REFUSALS) or 0.0
        with caplog.at_level(logging.ERROR, logger="sinergi.audit"):
            await sealer.publish()
        assert REGISTRY.get_sample_value(REFUSALS) == before + 1
        assert (
            f"audit entry {ENTRIES}, which this process saw sealed, was rewritten or removed"
            " since" in caplog.text
        )
        assert [c.seq for c in checkpoint_file.read(checkpoints, KEY).checkpoints] == [
            ENTRIES,
            ENTRIES,
        ]
        caplog.clear()
        await written(fresh_url, KEY, 1)
        with caplog.at_level(logging.ERROR, logger="sinergi.audit"):
            await sealer.publish()  # said once, not every round after
        assert caplog.text == ""
    finally:
        await engine.dispose()
