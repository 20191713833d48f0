"""Record writes: versioned, scoped to the writer's jurisdiction, each with its change history.

Every function runs inside the caller's transaction, so a change and its history row commit or
vanish together. Expected refusals are raised as the exceptions below; the caller turns them
into its own answers (GraphQL codes, a CLI report).
"""


class NotFound(LookupError):
    """No such record in the jurisdiction: a row outside it answers exactly like a missing one.
    `field` is the argument that named it, so the client learns which of its ids missed."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: no such record in your jurisdiction")
        self.field = field


class StaleVersion(Exception):
    """The record moved on since the writer read it; its current version is attached."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the record is at version {current}")
        self.current = current


class Duplicate(Exception):
    """A natural key (NIB, legal-entity number, a participation) is already taken."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotPermitted(Exception):
    """The writer may write the record, but not this value of `field`: a participation marked
    VERIFIED by a client that does not own the programme (db/writes/participations.py)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ImportInProgress(Exception):
    """A bulk import held the MSME register for longer than a write waits for it
    (db/writes/msmes.py): nothing was changed, and the same write may be sent again shortly."""
