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
from pathlib import Path

import pytest

from db.seals import Checkpoint
from sinergi import checkpoint_file
from tests.support.audit_trail import (
    ENTRIES,
    KEY,
    Trail,
    as_owner,
    sealed_trail,
    verify,
    written_for_tampering,
)

DELETE_THE_NEWEST = (
    "DELETE FROM audit_seals WHERE seq = (SELECT max(seq) FROM audit_log)",
    "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)",
)
DISAGREE = (
    f"audit chain broken at entry {ENTRIES}: two checkpoints that sealed it disagree: the trail"
    " was rewritten after it was checkpointed"
)


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
