"""What is wrong with a CSV file's header, said the same way by every command that reads one
(`sinergi import msmes`, `sinergi targets load`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def header_refusal(
    header: Sequence[str], missing: Callable[[list[str]], Sequence[str]]
) -> str | None:
    """Why a file with this header cannot be read (`missing` names the required columns a
    header lacks), or None. Excel in a locale whose decimal mark is the comma (Indonesian) saves
    "CSV" separated by ';': its header reads as one column, every required one missing though
    all are there, so it is named as a separator to change rather than columns to add."""
    absent = missing(list(header))
    if not absent:
        return None
    if not missing([name for column in header for name in column.split(";")]):
        return (
            "the file seems to use ';' as separator; save it as comma-separated CSV (CSV UTF-8)"
            " and retry"
        )
    return f"missing column(s) {', '.join(absent)}"
