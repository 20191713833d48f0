"""The CSV layout older MSME registers export, read into drafts for
`domain.records.check_registered_msme`.

Cells are text: empty means "not given", amounts are whole rupiah with optional thousands
separators ("150.000.000", "150,000,000" in a quoted cell, or "150000000"), as is a head count,
while a year is digits alone ("2025": "2.025" is no year a register means), dates are written
YYYY-MM-DD and nothing else (domain.dates). Columns this module does not know (notes, internal
ids) are ignored, so a register's full export can be fed in.
Errors name the CSV column, since that is what the person fixing the file sees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from datetime import date
from typing import Any

from domain.dates import iso_date
from domain.errors import InvalidValue
from domain.personal import OWNER_FIELDS
from domain.records import MsmeDraft, OwnerDraft, draft_values, owner_as_stored, unchanged
from domain.scale import Scale, kept_declaration

REQUIRED = ("nib", "name", "kbli", "region")
SKU = ("sku_number", "sku_issuer")
"""A Surat Keterangan Usaha, both columns or neither: a file with them may leave `nib` out (a
row without a NIB is keyed by its SKU), and a file without them leaves stored SKUs alone."""
OPTIONAL = (
    *SKU,
    "district",
    "established",
    "capital",
    "turnover",
    "turnover_year",
    "employees",
    "scale",
    *(field.csv for field in OWNER_FIELDS),
)
COLUMNS = REQUIRED + OPTIONAL

# The draft's field (as check_registered_msme names it) -> the column it is read from.
COLUMN_OF = {
    "nib": "nib",
    "skuNumber": "sku_number",
    "skuIssuer": "sku_issuer",
    "name": "name",
    "kbliCode": "kbli",
    "region": "region",
    "district": "district",
    "establishedOn": "established",
    "capital": "capital",
    "annualTurnover": "turnover",
    "turnoverYear": "turnover_year",
    "employees": "employees",
    "scale": "scale",
    **{f"owner.{field.name}": field.csv for field in OWNER_FIELDS},
}
_KEPT_IF_ABSENT = {
    "district": "district",
    "established": "established_on",
    "capital": "capital",
    "turnover": "annual_turnover",
    "turnover_year": "turnover_year",
    "employees": "employees",
    "scale": "scale",
}
"""Optional columns -> the draft field each fills: a file without the column leaves it as stored."""
_DRAFT_FIELDS = frozenset(field.name for field in fields(MsmeDraft))
WHOLE_ROW = "(whole row)"
"""The column a problem with the row as a whole is reported on."""
_WHOLE = re.compile(r"[0-9]{1,3}(?:([.,])[0-9]{3})?(?:\1[0-9]{3})*|[0-9]+")
_FRACTION = re.compile(r"(.*)[.,][0-9]+")
"""A number with a decimal part: the group is what is left once the part is dropped."""


def whole_number(raw: str, *, grouped: bool = True, rupiah: bool = False) -> int:
    """The whole number `raw` (a stripped, non-empty cell) writes: digits, their thousands
    grouped by "." or "," (one of the two throughout) where `grouped`, as a register writes an
    amount or a head count; a year is digits alone. A ValueError otherwise, its message what is
    wrong, the value untold (a misplaced cell may hold a NIK): a sign (amounts and counts are
    never negative), a decimal part (whole rupiah, for a `rupiah` amount), a separator in a year
    ("2.025" is not 2025), or else what is taken."""
    if raw.isascii() and raw.isdigit():  # plain digits, the usual case: no regex needed
        return int(raw)
    if grouped and _WHOLE.fullmatch(raw):
        return int(re.sub(r"[.,]", "", raw))

    def whole(text: str) -> bool:
        return bool(_WHOLE.fullmatch(text)) if grouped else text.isascii() and text.isdigit()

    def number(text: str) -> bool:
        """Whether `text` is a number this column would take, but for one decimal part."""
        fraction = _FRACTION.fullmatch(text)
        return whole(text) or (fraction is not None and whole(fraction[1]))

    if raw.startswith("-") and number(raw[1:].strip()):
        raise ValueError("must not be negative")
    if not grouped and _WHOLE.fullmatch(raw):
        raise ValueError("must be digits only, without a thousands separator")
    if number(raw):
        raise ValueError(
            f"must be {'whole rupiah' if rupiah else 'a whole number'}, without a decimal part"
        )
    if grouped:
        raise ValueError("must be a whole number in digits (thousands may be grouped by . or ,)")
    raise ValueError("must be a whole number in digits")


def column_name(field: str) -> str:
    """The CSV column a draft field comes from, for error reports."""
    return COLUMN_OF.get(field, field)


def missing_columns(header: list[str]) -> list[str]:
    """Required columns absent from a header: the file cannot be read at all without them.
    `nib` may be left out when the file has the SKU columns (its rows are keyed by SKU), and an
    SKU column needs the other: half an SKU names no business."""
    present = {column.strip().lower() for column in header}
    skus = [column for column in SKU if column in present]
    needed = [column for column in REQUIRED if column != "nib" or len(skus) < len(SKU)]
    return [column for column in (*needed, *(SKU if skus else ())) if column not in present]


def gives_sku(header: list[str]) -> bool:
    """Whether a file gives the SKU (its columns): without them a record keeps its stored SKU,
    with them an empty pair of cells clears it."""
    present = {column.strip().lower() for column in header}
    return all(column in present for column in SKU)


def absent_fields(header: list[str]) -> frozenset[str]:
    """The draft fields (`owner.<field>` for the owner's) a file without their columns does not
    give: a record it updates keeps them as stored (`as_stored`), a record it creates has none.
    An empty cell, by contrast, clears. The owner's are kept only in a file with owner columns:
    one without any leaves the owner alone whole."""
    present = {column.strip().lower() for column in header}
    absent = {field for column, field in _KEPT_IF_ABSENT.items() if column not in present}
    if any(field.csv in present for field in OWNER_FIELDS):
        absent.update(
            f"owner.{field.column}"
            for field in OWNER_FIELDS
            if field.csv not in present and not field.required
        )
    return frozenset(absent)


def as_stored(draft: MsmeDraft, stored: Mapping[str, Any], absent: frozenset[str]) -> MsmeDraft:
    """`draft` with its `absent` fields as `stored` holds them (by field name, the owner's as
    `owner.<field>`; `scale`, `declared_scale`, `capital` and `annual_turnover` as the record's
    columns), so that the merged record is checked whole, as `updateMsme` checks a patch merged
    with the record. As there, the declared scale stands only while the figures it was checked
    against do: other figures without a declared scale drop it (domain/scale.py
    `kept_declaration`). A stored owner's fields are kept for the same owner only (by NIK):
    another one's phone is not theirs."""
    values = {
        field: stored[field]
        for field in absent
        if not field.startswith("owner.") and field != "scale"
    }
    if "scale" in absent:
        values["scale"] = kept_declaration(
            declared=stored["declared_scale"],
            scale=stored["scale"],
            capital=stored["capital"],
            annual_turnover=stored["annual_turnover"],
            given={name: getattr(draft, name) for name in _DRAFT_FIELDS - absent},
        )
    owner = draft.owner
    kept = {field.removeprefix("owner."): stored[field] for field in absent if "." in field}
    if kept and owner is not None and owner.nik.strip() == stored["owner.nik"]:
        owner = replace(owner, **kept)
    return replace(draft, owner=owner, **values)


_STORED_AS = {"region": "regency_code", "scale": "declared_scale"}
"""Draft fields -> the stored record's column (`db.imports` reads it) where the names differ:
the scale a draft gives is a declaration."""


def unchanged_fields(draft: MsmeDraft, stored: Mapping[str, Any]) -> frozenset[str]:
    """The fields a row gives as the record it updates (`stored`, as `as_stored` takes it)
    holds them: its name, its figures, and its owner's fields for the same owner (by NIK);
    rules added since the record was stored leave these alone (domain/records.py `changes`)."""
    values = {
        field: stored[_STORED_AS.get(field, field)]
        for field in _DRAFT_FIELDS
        if _STORED_AS.get(field, field) in stored
    }
    owner = {
        field.removeprefix("owner."): value
        for field, value in stored.items()
        if field.startswith("owner.")
    }
    values.update(owner_as_stored(draft.owner, owner))
    return unchanged(draft_values(draft), values)


def draft_from_record(
    header: Sequence[str], cells: Sequence[str]
) -> tuple[MsmeDraft | None, list[InvalidValue]]:
    """As `draft_from_cells`, for one CSV record under `header` (lower-case column names). A
    record whose cells do not line up with the header's columns gives no draft: an unquoted
    "2,600,000,000" is three cells and shifts every later column (a turnover of 2), and a line
    cut short would clear the stored values of the columns it lacks."""
    if len(cells) > len(header):
        hint = 'quote an amount written with separators ("2,600,000,000") or drop them'
    elif len(cells) < len(header):
        hint = "a cell is missing or the line was cut short; leave an empty cell for no value"
    else:
        return draft_from_cells(dict(zip(header, cells, strict=True)))
    reason = f"has {len(cells)} cells where the header has {len(header)} columns: {hint}"
    return None, [InvalidValue(WHOLE_ROW, reason)]


def draft_from_cells(cells: Mapping[str, str | None]) -> tuple[MsmeDraft, list[InvalidValue]]:
    """A draft from one CSV row keyed by (lower-case) column name, and the cells that could not
    be read, each named by its column and left out of the draft: `check_registered_msme` takes
    them as `unread`, so the row's other problems are reported with them."""
    errors: list[InvalidValue] = []

    def text(column: str) -> str | None:
        value = (cells.get(column) or "").strip()
        return value or None

    def whole(column: str, *, grouped: bool = True, rupiah: bool = False) -> int | None:
        raw = text(column)
        if raw is None:
            return None
        try:
            return whole_number(raw, grouped=grouped, rupiah=rupiah)
        except ValueError as error:
            errors.append(InvalidValue(column, str(error)))
            return None

    def day(column: str) -> date | None:
        raw = text(column)
        if raw is None:
            return None
        try:
            return iso_date(raw)
        except ValueError:
            errors.append(InvalidValue(column, "must be a date written YYYY-MM-DD"))
            return None

    scale = None
    raw_scale = text("scale")
    if raw_scale is not None:
        try:
            scale = Scale(raw_scale.lower())
        except ValueError:
            errors.append(InvalidValue("scale", "must be micro, small, medium or large"))
    owner = _owner(cells, errors)
    draft = MsmeDraft(
        nib=text("nib"),
        sku_number=text("sku_number"),
        sku_issuer=text("sku_issuer"),
        name=text("name") or "",
        kbli_code=text("kbli") or "",
        region=text("region") or "",
        district=text("district"),
        established_on=day("established"),
        capital=whole("capital", rupiah=True),
        annual_turnover=whole("turnover", rupiah=True),
        turnover_year=whole("turnover_year", grouped=False),
        employees=whole("employees"),
        scale=scale,
        owner=owner,
    )
    return draft, errors


def _owner(cells: Mapping[str, str | None], errors: list[InvalidValue]) -> OwnerDraft | None:
    """An owner only when some owner column is filled; then its required fields are too (an
    empty one is refused by its rule)."""
    if not any(cells.get(field.csv) for field in OWNER_FIELDS):
        return None  # the usual row, or a file without owner columns: nothing to strip
    read = {field: (cells.get(field.csv) or "").strip() for field in OWNER_FIELDS}
    if not any(read.values()):
        return None
    values: dict[str, str | date | None] = {}
    for field, raw in read.items():
        value: str | date | None = raw if raw or field.required else None
        if raw and field.kind is date:
            try:
                value = iso_date(raw)
            except ValueError:
                errors.append(InvalidValue(field.csv, "must be a date written YYYY-MM-DD"))
                value = None
        values[field.column] = value
    return OwnerDraft(**values)  # type: ignore[arg-type]  # typed by the declaration it reads
