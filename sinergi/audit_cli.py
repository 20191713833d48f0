"""`sinergi audit verify`: check every entry against the chain and its seal, and the seals
against the checkpoints; name every entry that is not as it was written, and say when entries
wait to be sealed for longer than sealing takes (they could be removed unnoticed).

A key other than the trail's fails every seal, which read as the whole trail rewritten: a false
alarm of tampering. So the key is checked first against the fingerprint the first `serve`
recorded (migration 0044), which the service's role cannot change. The owner can change it,
though (or the trail's id it is bound to), and rewrite the first seal too: a key refused for
that would let a rewritten trail pass for a wrong key (before any server recorded one, whoever
holds the service's credentials can record a fingerprint first, and the findings say so). So a
key is refused (WrongAuditKey, exit 2, nothing walked) only when nothing vouches for it: it does
not reproduce the fingerprint, the first seal is there and it did not make it, and no checkpoint
read verifies under it (the checkpoints are outside the owner's reach). Otherwise the trail is
walked, and a fingerprint the key does not reproduce is named as a finding. Checkpoints that
verify under the key but name another trail and database vouch for it only as the key of that
trail: an operator whose SINERGI_HOME is one deployment's and DATABASE_URL another's sees them
so, and is told so rather than that the owner changed the fingerprint; the walk goes on, since
an owner who changed the trail's id (and the database's name) would show alike."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from db.engine import create_engine
from db.queries import audit, audit_key_fingerprint
from db.queries.audit_seals import Unsealed, first_seal, oldest_unsealed
from db.seals import Checkpoint
from sinergi import checkpoint_file
from sinergi.audit_key import WrongAuditKey
from sinergi.wording import counted

_NOT_THE_TRAILS_KEY = (
    "the audit key is not this trail's: it does not reproduce the fingerprint of the key the"
    " trail's first server recorded, did not make the first seal, and no checkpoint read verifies"
    " under it; nothing was verified (with it every seal would fail, which is no sign of"
    " tampering). Verify with the server's key (SINERGI_AUDIT_KEY_FILE, SINERGI_AUDIT_KEY or"
    " SINERGI_HOME), and pass its checkpoint files. If this is the trail's key, then the"
    " fingerprint (or the trail's id) and the first seal were both rewritten, as only the owner"
    " can: tampering"
)
# Who can have changed it: the owner, any time; and, before any server recorded a fingerprint,
# whoever holds the service's credentials, who may call the recording function first.
_WHO_CHANGED_IT = (
    "by the owner, or, before any server recorded one, by whoever holds the service's"
    " credentials; see the README's audit trail section for the owner's reset"
)
_FINGERPRINT_CHANGED = (
    "audit key fingerprint changed: this key made the trail's first seal or signed checkpoints"
    " read, yet does not reproduce the fingerprint recorded (audit_key_fingerprint): the"
    f" fingerprint or the trail's id was changed since: {_WHO_CHANGED_IT}"
)
_ANOTHER_TRAILS = (
    "audit key not checked against this trail: it does not reproduce the fingerprint recorded"
    " (audit_key_fingerprint), and the checkpoints signed with it are of {theirs}, not of this"
    " one ({this}). If DATABASE_URL is another deployment's, verify with its key and checkpoint"
    " files, and the breaks below are no sign of tampering; if not, this trail's id was changed"
)
_UNVOUCHED = (
    "audit key fingerprint changed, or the key is not the trail's: it does not reproduce the"
    " fingerprint recorded (audit_key_fingerprint), and neither a seal of entry 1 (there is none)"
    " nor any checkpoint read vouches for it. If this is the server's key, the first seal was"
    " removed, as only the owner can, and the fingerprint or the trail's id was changed:"
    f" {_WHO_CHANGED_IT}"
)
_NOTHING_SEALED = (
    "audit key fingerprint changed, or the key is not the trail's: it does not reproduce the"
    " fingerprint recorded (audit_key_fingerprint), and nothing is sealed yet, so the key cannot"
    " be checked against the trail; if seals existed, they were removed"
)


class _Judged(NamedTuple):
    unrecorded: bool
    """No fingerprint is recorded: the walk's first seal tells whether the key made it."""
    finding: str | None
    """What the key not reproducing the recorded fingerprint means; None when it does."""


def _named(trail: str | None, database: str) -> str:
    return f"database {database}, no trail id" if trail is None else f"trail {trail} in {database}"


async def _vouching(connection: AsyncConnection, checkpoints: Sequence[Checkpoint]) -> str:
    """What `checkpoints`, which verify under the key, say of it: the key of this trail (one
    names its id, or, naming no id, its database), whose fingerprint was changed; or of another
    trail only, or this one's id was changed: both are said. A checkpoint naming this database
    under another trail id does not settle which: every compose deployment names its database
    `sinergi`, so production's trail verified with staging's key and checkpoints is one."""
    trail, database, _ = (await connection.execute(await audit.which_trail(connection))).one()
    if any(c.applies_to(trail, database) for c in checkpoints):
        return _FINGERPRINT_CHANGED
    theirs = "; ".join(sorted({_named(c.trail, c.database) for c in checkpoints}))
    return _ANOTHER_TRAILS.format(theirs=theirs, this=_named(trail, database))


async def _judge_key(
    connection: AsyncConnection, key: bytes, checkpoints: Sequence[Checkpoint]
) -> _Judged:
    """Whether `key` is the trail's, by the recorded fingerprint, else by what vouches for it:
    the first seal, or `checkpoints` (those read that verify under it); WrongAuditKey when
    nothing does and the first seal refutes it. A trail with entries and no seal of entry 1 is
    walked: its seals were removed (or none made yet), and refusing would let their removal
    pass for a wrong key."""
    names = await audit_key_fingerprint.names(connection, key)
    if names is None:
        return _Judged(unrecorded=True, finding=None)
    if names:
        return _Judged(unrecorded=False, finding=None)
    sealed = await first_seal(connection)
    if sealed.made_with(key):
        return _Judged(unrecorded=False, finding=_FINGERPRINT_CHANGED)
    if checkpoints:
        return _Judged(unrecorded=False, finding=await _vouching(connection, checkpoints))
    if sealed.newest and sealed.first is None:
        return _Judged(unrecorded=False, finding=_UNVOUCHED)
    if not sealed.newest and await oldest_unsealed(connection):
        return _Judged(unrecorded=False, finding=_NOTHING_SEALED)
    raise WrongAuditKey(_NOT_THE_TRAILS_KEY)


async def _verify(
    url: str, key: bytes, checkpoints: list[Checkpoint]
) -> tuple[_Judged, audit.Verification]:
    engine = create_engine(url, statement_timeout_ms=0)  # 0: no timeout for a full walk
    try:
        async with engine.connect() as connection:
            judged = await _judge_key(connection, key, checkpoints)
            return judged, await audit.verify(connection, key, checkpoints)
    finally:
        await engine.dispose()


def _newest(path: Path, checkpoints: list[Checkpoint]) -> str:
    """How far a file of checkpoints vouches: entries past its newest checkpoint can be cut off
    the end unnoticed by it, so a copy that stopped growing (a collector no longer receiving)
    shows here before it is needed."""
    if not checkpoints:
        return f"{path}: no checkpoints"
    last = max(checkpoints, key=lambda checkpoint: checkpoint.seq)
    return f"{path}: the newest checkpoint covers entries to {last.seq}, at {last.at.isoformat()}"


def _stalled(unsealed: Unsealed | None, bound_seconds: int | None) -> str | None:
    """Why the trail is not being sealed, if its oldest unsealed entry has waited longer than
    `bound_seconds` (None: no server runs, so none seals)."""
    if unsealed is None or bound_seconds is None:
        return None
    waited = unsealed.age.total_seconds()
    if waited <= bound_seconds:
        return None
    return (
        f"audit trail not being sealed: entry {unsealed.seq}, the oldest not sealed, was written "
        f"{waited:.0f} s ago, past the bound of {bound_seconds} s (SINERGI_AUDIT_UNSEALED_INTERVALS"
        " x SINERGI_AUDIT_SEAL_SECONDS); until sealed, entries can be removed unnoticed. Is every"
        " `sinergi serve` sealing? (its log; sinergi_audit_seal_stalls_total) To verify a stopped"
        " system, which nothing seals, pass --stopped"
    )


# Before a fingerprint is recorded: with one, the key is judged by it, and a first seal it fails
# was forged or rewritten.
_WRONG_KEY = (
    "the first seal already fails: the audit key may not be the one that sealed this trail (a"
    " wrong key fails every seal from the first). Is SINERGI_AUDIT_KEY_FILE, SINERGI_AUDIT_KEY"
    " or SINERGI_HOME the server's? Verify with that key before taking this for tampering"
)


def _unvouched(result: audit.Verification) -> str | None:
    """Why the checkpoints that apply do not vouch for this trail's end, if they do not.

    When none apply, nothing outside the database vouches for it: the wrong files, or a trail
    whose id was changed to set them aside. Nor when checkpoints of another trail are set aside
    while older ones, naming only this database, apply: the owner could have changed the id and
    the database's name (or the name the newer ones were written under) both, so the ones naming
    the id were set aside and the trail held only to the older. Nor when none were read at all
    while entries are sealed: the owner can rewrite and seal again what no checkpoint holds (no
    file before anything was sealed is a new trail's, and passes)."""
    if not result.checkpoints and not result.elsewhere and result.sealed:
        return (
            "nothing outside the database vouches for this trail: no checkpoint applies, yet it"
            f" holds seals of {counted(result.sealed, 'entry', 'entries')}. Pass the checkpoint"
            " files of the servers that sealed it (SINERGI_AUDIT_CHECKPOINTS, --checkpoints)"
        )
    if not result.elsewhere:
        return None
    if not result.checkpoints:
        return (
            f"{result.elsewhere} checkpoints name another trail or database; none apply: nothing"
            " outside the database vouches for this trail's newest entries. Are these the"
            " checkpoint files of the servers that sealed it?"
        )
    if result.other_trails and result.by_name:
        return (
            f"{result.other_trails} checkpoints name another trail, set aside, while"
            f" {result.by_name} older ones apply by this database's name alone: a trail whose"
            " id was changed would show alike, so they do not vouch for its newest entries."
            " Verify with the checkpoint files of this trail only"
        )
    return None


def verify(
    url: str, key: bytes, checkpoint_paths: Sequence[Path], *, unsealed_bound: int | None
) -> int:
    """`unsealed_bound`: how long, in seconds, an entry may wait to be sealed; None for a
    system no server runs (`--stopped`), whose unsealed entries are reported, not failed.
    WrongAuditKey when the key is not the trail's, by its recorded fingerprint."""
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    newest: list[str] = []
    for path in checkpoint_paths:
        found = checkpoint_file.read(path, key)
        checkpoints += found.checkpoints
        problems += found.problems
        newest.append(_newest(path, found.checkpoints))
    judged, result = asyncio.run(_verify(url, key, checkpoints))
    if judged.finding is not None:
        print(judged.finding)
    for line in newest:
        print(line)
    for problem in problems:
        print(f"checkpoint file: {problem}")
    stalled = _stalled(result.unsealed, unsealed_bound)
    if stalled is not None:
        print(stalled)
    unvouched = _unvouched(result)
    if unvouched is not None:
        print(unvouched)
    elif result.elsewhere:
        print(f"{result.elsewhere} checkpoints name another trail or database: not counted")
    if not result.intact:
        for link in result.breaks:
            print(f"audit chain broken at {link}")
        first = result.breaks[0]
        if judged.unrecorded and first.first == 1 and first.reason in audit.SEAL_FAILURES:
            print(_WRONG_KEY)
        if result.unlisted:
            print(f"audit chain broken in {result.unlisted} more places, not listed")
        return 1
    print(
        f"audit chain intact: {counted(result.checked, 'entry', 'entries')} verified, "
        f"{result.sealed} sealed ({result.checked - result.sealed} written since the last "
        f"seal), {counted(result.checkpoints, 'checkpoint')}"
    )
    return 1 if problems or stalled or unvouched or judged.finding else 0
