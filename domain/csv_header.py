"""What is wrong with a CSV file's header, said the same way by every command that reads one
(`sinergi import msmes`, `sinergi targets load`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def header_refusal(
    header: Sequence[str],
    missing: Callable[[list[str]], Sequence[str]],
    known: Sequence[str],
    *,
    others_ignored: bool,
) -> str | None:
    """Why a file with this header cannot be read (`missing` names the required columns a
    header lacks, `known` lists the columns read), or None. Excel in a locale whose decimal
    mark is the comma (Indonesian) saves "CSV" separated by ';': its header reads as one column,
    every required one missing though all are there, so it is named as a separator to change
    rather than columns to add. A known column named twice is refused: which cell holds the
    value cannot be told. Other columns are refused unless `others_ignored` (a register's full
    export, with its notes and internal ids): a misspelt optional column would otherwise read as
    one left out, and its cells be dropped without a word."""
    absent = missing(list(header))
    if absent:
        if not missing([name for column in header for name in column.split(";")]):
            return (
                "the file seems to use ';' as separator; save it as comma-separated CSV "
                "(CSV UTF-8) and retry"
            )
        return f"missing column(s) {', '.join(absent)}"
    repeated = dict.fromkeys(
        column
        for number, column in enumerate(header)
        if column in known and column in header[:number]
    )
    if repeated:
        return f"column(s) {', '.join(repeated)} named more than once"
    unknown = [
        repr(column) if column.strip() else "one without a name (a ',' ending the header?)"
        for column in header
        if column not in known
    ]
    if unknown and not others_ignored:
        return f"unknown column(s) {', '.join(unknown)}; the columns are {', '.join(known)}"
    return None
