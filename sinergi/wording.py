"""How a command's output words what it counts."""

from __future__ import annotations


def counted(number: int, singular: str, plural: str | None = None) -> str:
    """`number` and the noun it counts, singular for one: "1 entry", not "1 entries" (`plural`
    when adding "s" does not make it: "entries", "processes")."""
    return f"{number} {singular if number == 1 else plural or singular + 's'}"
