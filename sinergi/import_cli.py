"""`sinergi import msmes FILE.csv`: a register's export into Sinergi, with a per-row report.

Who the import acts as: `--as CLIENT_ID` imports with a registered client's jurisdiction and
rights (records:write, and pii:read for owner columns) and records the changes under its name.
Without it the operator, who holds the database credentials, imports within `--jurisdiction`
("ID", national; else a province or a regency or city) and the changes are recorded as
"cli:<user>". One of the two must be given: a national scope taken by default let a regency's
file move another province's record (same NIB) into the file's regency, reported as "updated".
Either way the import's audit entry (the records written, the owners written, compared or
replaced) commits with it, as the `importMsmes` mutation's is written.

The terminal shows the first 200 problems; `--problems OUT.csv` writes every one (row, column,
reason, code, never a cell's value) in the import's transaction.

Exit status: 0 when every row was imported, 1 when rows were rejected (in --all-or-nothing mode
nothing was then written), 2 when the file or the arguments cannot be used at all.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.principal import Principal
from auth.scopes import OrgKind, Scope, usable
from db.engine import create_engine
from db.imports import Drafted, Mode, Report, import_msmes
from db.queries import audit, regions
from db.queries.scoping import RowScope
from db.writes.history import Actor
from domain.csv_header import header_refusal
from domain.errors import InvalidValue
from domain.identifiers import RegionLevel, validate_region_code
from domain.personal import OWNER_FIELDS
from domain.register_csv import (
    COLUMNS,
    OPTIONAL,
    REQUIRED,
    SKU,
    absent_fields,
    column_name,
    draft_from_record,
    gives_sku,
    missing_columns,
)
from resolvers import calendar, import_notes
from resolvers.access import AccessNotes, Touched
from resolvers.imports import row_code
from resolvers.policy import AccessPolicy
from sinergi import audit_key
from sinergi.database import ready_url
from sinergi.hashed_file import open_hashed
from sinergi.settings import Settings

_STAGES = {"check": "checking rows", "load": "loading into PostgreSQL", "write": "writing"}
_SHOWN_ERRORS = 200
"""Problems the terminal shows; `--problems` writes every one."""
_PROBLEM_COLUMNS = ("row", "column", "reason", "code")
_JURISDICTION_LEVELS = {
    RegionLevel.NATIONAL,
    RegionLevel.PROVINCE,
    RegionLevel.REGENCY,
    RegionLevel.CITY,
}
_UNCLOSED_QUOTE = "unexpected end of data"
"""What a strict csv.reader says when the file ends inside a quoted cell."""
OPERATION = "cli:import msmes"
"""The operation its audit entries name."""
OPERATOR_SCOPES = frozenset({Scope.RECORDS_READ, Scope.RECORDS_WRITE, Scope.PII_READ})


class UnusableInput(Exception):
    """The file or the arguments cannot be used at all (exit status 2)."""


@dataclass(frozen=True, slots=True)
class Writer:
    actor: Actor
    principal: Principal
    """Who the audit entry names: the client imported as, or the operator."""

    @property
    def jurisdiction(self) -> str:
        return self.principal.jurisdiction

    @property
    def may_write_owners(self) -> bool:
        return self.principal.has(Scope.PII_READ)


def add_parsers(commands: Any) -> None:
    imports = commands.add_parser("import", help="bulk-import records").add_subparsers(
        dest="import_command", required=True
    )
    msmes = imports.add_parser(
        "msmes",
        help="import MSMEs from a CSV file (see README)",
        # argparse brackets a group that is not required as optional, and required=True would
        # trade _import_msmes's refusal, which says what a jurisdiction is, for its own.
        usage="%(prog)s [-h] [--all-or-nothing] [--problems OUT.csv] "
        "(--as CLIENT_ID | --jurisdiction CODE) FILE",
        description="Import MSMEs from a CSV file: UTF-8, comma-separated, with a header row. "
        f"Columns: {', '.join(REQUIRED)} (required; nib may be left out, or empty, where "
        f"{' and '.join(SKU)} give the business's Surat Keterangan Usaha); "
        f"{', '.join(OPTIONAL)}; others are "
        'ignored. The README\'s section "Bulk import" describes each.',
        epilog="Exit status: 0 when every row was imported; 1 when rows were rejected (each is "
        "reported; with --all-or-nothing nothing was written, else the valid rows were); 2 when "
        "the file or the arguments cannot be used at all, and nothing was written.",
    )
    msmes.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="the CSV file: a spreadsheet saved as CSV UTF-8 (comma-separated)",
    )
    msmes.add_argument(
        "--all-or-nothing",
        action="store_true",
        help="write nothing if any row is bad (default: write the valid rows)",
    )
    msmes.add_argument(
        "--problems",
        type=Path,
        metavar="OUT.csv",
        help="write every problem (row, column, reason, code; no cell's value) to this CSV "
        f"file, created or emptied first; the terminal shows the first {_SHOWN_ERRORS}",
    )
    who = msmes.add_mutually_exclusive_group()
    who.add_argument(
        "--as", dest="client_id", help="act as this registered client, in its jurisdiction"
    )
    who.add_argument(
        "--jurisdiction",
        metavar="CODE",
        help='import as the operator within "ID" (national), a province or a regency/city; '
        "this or --as is required",
    )
    msmes.set_defaults(handler=_import_msmes)


def _import_msmes(args: argparse.Namespace, settings: Settings) -> int:
    console = Console()
    try:
        if args.client_id is None and args.jurisdiction is None:
            raise UnusableInput(
                "say where the rows may lie: --jurisdiction CODE (a province, 62, or a regency "
                "or city, 62.71; --jurisdiction ID for a national import) or --as CLIENT_ID"
            )
        if not args.file.is_file():
            raise UnusableInput(f"{args.file}: no such file")
        total = _count_rows(args.file)
        with _opened_problems(args.problems, args.file) as problems:
            url = ready_url(settings)
            # The servers' key signs the import's entry: an entry signed with another would
            # read, to `audit verify`, as one inserted behind its back.
            key = asyncio.run(audit_key.of_its_servers(settings, url))
            report = asyncio.run(_run(url, key, args, console, total, problems))
    except UnusableInput as error:
        # As every command reports what stops it (sinergi/cli.py): on stderr, one line, the
        # path as it is spelled (rich would wrap it and read "[final]" in it as markup).
        print(f"sinergi import: {error}", file=sys.stderr)
        return 2
    _print(console, report, args.file, args.problems)
    return 1 if report.errors else 0


async def _run(
    url: str,
    key: bytes,
    args: argparse.Namespace,
    console: Console,
    total: int,
    problems: TextIO | None,
) -> Report:
    path: Path = args.file
    engine = create_engine(url, statement_timeout_ms=3_600_000, pool_size=1)
    try:
        async with engine.connect() as connection:
            writer = await _writer(connection, args)
        try:
            opened, read = open_hashed(path, encoding="utf-8-sig")
        except OSError as error:
            raise _unreadable(path, error) from None
        with opened as handle:
            reader = _records(handle, path)
            header = [column.strip().lower() for column in next(reader, [])]
            refusal = header_refusal(header, missing_columns, COLUMNS, others_ignored=True)
            if refusal is not None:
                raise UnusableInput(f"{path}: {refusal}")
            personal = [field.csv for field in OWNER_FIELDS if field.csv in header]
            if not writer.may_write_owners and personal:
                raise UnusableInput(
                    f"{args.client_id} lacks {Scope.PII_READ.value}: remove the column(s) "
                    f"{', '.join(personal)}"
                )
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                tasks = {
                    stage: progress.add_task(label, total=total) for stage, label in _STAGES.items()
                }

                def advance(stage: str, done: int, of: int) -> None:
                    progress.update(tasks[stage], completed=done, total=of)

                owners: list[import_notes.OwnerRow] = []
                async with engine.begin() as connection:
                    report = await import_msmes(
                        connection,
                        import_notes.owners_noted(_drafts(reader, header), owners),
                        total=total,
                        scope=RowScope(writer.jurisdiction),
                        actor=writer.actor,
                        mode=Mode.ALL_OR_NOTHING if args.all_or_nothing else Mode.VALID_ROWS,
                        name=column_name,
                        today=calendar.today(),
                        progress=advance,
                        queue=True,
                        absent=absent_fields(header),
                        sku_given=gives_sku(header),
                    )
                    await _audit(connection, key, writer, read.hexdigest(), owners, report)
                    if problems is not None:
                        _write_problems(problems, args.problems, report)
                    return report
    except UnicodeDecodeError:
        # Raised wherever the bad bytes are, possibly mid-import: the transaction rolled back.
        line = _undecodable_line(path)
        where = f"line {line}" if line is not None else "the file"
        raise UnusableInput(
            f"{path}: {where} is not UTF-8 text (Latin-1 or UTF-16, say); save the file as "
            "CSV UTF-8 and retry"
        ) from None
    finally:
        await engine.dispose()


async def _audit(
    connection: AsyncConnection,
    key: bytes,
    writer: Writer,
    document_hash: str,
    owners: list[import_notes.OwnerRow],
    report: Report,
) -> None:
    """The import's audit entry, as `importMsmes` notes it (resolvers.import_notes), appended in
    the import's transaction: the import commits with its entry or not at all. Its document is
    the file (`documentHash`: the sha256 of its bytes as the import read them, every row read
    by now)."""
    notes = AccessNotes()
    import_notes.note(notes, owners, report)
    if not notes.worth_recording:
        return
    entry = AccessPolicy(writer.principal).audit_entry(
        operation=OPERATION,
        document_hash=document_hash,
        fields={},
        records=notes.records,
        touched=Touched(),
        owner_columns=notes.owner_columns,
    )
    await audit.append_within(
        connection, key, client_id=writer.principal.client_id, entry=entry, subjects=notes.subjects
    )


async def _writer(connection: Any, args: argparse.Namespace) -> Writer:
    if args.client_id is None:
        jurisdiction = await _jurisdiction(connection, args.jurisdiction)
        user = _user()
        actor = Actor(f"cli:{user}", f"sinergi CLI ({user})")
        # The operator holds the database, as the data custodian does: its entries say so.
        operator = Principal(
            client_id=actor.client_id,
            org_kind=OrgKind.CUSTODIAN,
            jurisdiction=jurisdiction,
            scopes=OPERATOR_SCOPES,
            organisation=actor.organisation,
            purpose="the operator's import of a register file",
        )
        return Writer(actor, operator)
    from auth import clients  # the OAuth clients' code, only for --as: the command starts sooner

    client = await clients.get(connection, args.client_id)
    if client is None or client.revoked:
        raise UnusableInput(f"--as: no active client {args.client_id!r}")
    held = usable(client.scopes)  # as its token would: records:write only with records:read
    if Scope.RECORDS_WRITE not in held:
        raise UnusableInput(
            f"--as: {args.client_id} does not hold {Scope.RECORDS_WRITE.value} "
            f"(which needs {Scope.RECORDS_READ.value} too)"
        )
    principal = Principal(
        client_id=client.client_id,
        org_kind=client.org_kind,
        jurisdiction=client.jurisdiction,
        scopes=held,
        organisation=client.name,
        purpose=client.purpose,
    )
    return Writer(Actor(client.client_id, client.name), principal)


async def _jurisdiction(connection: Any, given: str) -> str:
    """The nation, a province or a regency or city that exists: what a jurisdiction is for a
    client too. A record is placed by its regency (db.imports), so below one, a kecamatan
    scope would refuse every row in it as outside."""
    try:
        code = validate_region_code(given, field="--jurisdiction")
    except InvalidValue as error:
        raise UnusableInput(str(error)) from None
    level = await regions.level_of(connection, code)
    if level is None:
        raise UnusableInput(f"--jurisdiction: {code} is not a known region code")
    if level not in _JURISDICTION_LEVELS:
        raise UnusableInput(
            f'--jurisdiction: {code} is a {level}; give "ID", a province (62) or a regency or '
            "city (62.71)"
        )
    return code


@contextmanager
def _opened_problems(path: Path | None, imported: Path) -> Iterator[TextIO | None]:
    """The `--problems` file, opened (so created or emptied) before anything is imported: a
    path that cannot be written is refused while nothing is written, rather than found so once
    the valid rows are. UTF-8 with a BOM, as a spreadsheet saves "CSV UTF-8" and opens it."""
    if path is None:
        yield None
        return
    try:
        same = path.samefile(imported)
    except OSError:  # not there yet; any other reason, opening it says
        same = False
    if same:  # opening it would empty the file before it is read
        raise UnusableInput(f"--problems: {path}: is the file to import; name another")
    try:
        handle = path.open("w", encoding="utf-8-sig", newline="")
    except OSError as error:
        raise UnusableInput(
            f"--problems: {path}: cannot be written ({error.strerror or error})"
        ) from None
    try:
        yield handle
    except BaseException:
        with suppress(OSError):  # what it could not write, already said (`_write_problems`)
            handle.close()
        raise
    handle.close()


def _write_problems(handle: TextIO, path: Path, report: Report) -> None:
    """Every problem, a CSV record each, streamed from the report's own list. A reason names
    no cell's value (db.imports), and no value is written beside it: a cell may hold a NIK.
    Written and flushed in the import's transaction, so a file that fails midway (a full disk)
    rolls the import back instead of leaving its problems untold."""
    try:
        writer = csv.writer(handle)
        writer.writerow(_PROBLEM_COLUMNS)
        for error in report.errors:
            writer.writerow((error.row, error.field, error.reason, row_code(error).value))
        handle.flush()
    except OSError as error:
        raise UnusableInput(
            f"--problems: {path}: cannot be written ({error.strerror or error})"
        ) from None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"


def _count_rows(path: Path) -> int:
    """Lines after the header: the progress bar's length (exact unless cells span lines). The
    first read of the file, so the one that finds it unreadable."""
    try:
        with path.open("rb") as handle:
            return max(sum(1 for _ in handle) - 1, 0)
    except OSError as error:
        raise _unreadable(path, error) from None


def _unreadable(path: Path, error: OSError) -> UnusableInput:
    """A file there but not readable (no permission, a read error) is as unusable as a missing
    one: one line, not a traceback."""
    return UnusableInput(f"{path}: cannot be read ({error.strerror or error})")


def _undecodable_line(path: Path) -> int | None:
    """The first line that is not UTF-8. The decoder reads ahead by blocks, so where it failed
    tells no line; each line is decoded alone instead, which is sound since no UTF-8 character
    holds a newline byte. (None when every line decodes: the file changed meanwhile.)"""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _records(handle: TextIO, path: Path) -> Iterator[list[str]]:
    """The file's records; a malformed one (a cell over csv's field limit, text after a closing
    quote, a quote never closed) makes the whole file unusable, as a wrong encoding does: exit
    status 1 promises the valid rows were written, and past a line csv cannot read there is no
    telling which rows those are. Raised mid-import, the caller's transaction rolls back, so
    nothing is written. Strict: a lenient reader takes an unclosed quote's cell to the end of the
    file, and the rows after it vanish from the import and from its report."""
    reader = csv.reader(handle, strict=True)
    start = 1  # the line the next record starts on
    try:
        for record in reader:
            yield record
            start = reader.line_num + 1
    except csv.Error as error:
        if str(error) == _UNCLOSED_QUOTE:
            raise UnusableInput(
                f'{path}: the record starting on line {start} opens a quote (") that is never '
                "closed, so every line after it would be one cell; close or remove it and retry"
            ) from None
        raise UnusableInput(
            f"{path}: line {reader.line_num} is not readable as CSV ({error}); fix it and retry"
        ) from None


def _drafts(reader: Iterator[list[str]], header: list[str]) -> Iterator[Drafted]:
    """Rows numbered as a spreadsheet shows them: the header is row 1. Blank lines are skipped."""
    for number, cells in enumerate(reader, start=2):
        if not "".join(cells).strip():
            continue
        yield number, *draft_from_record(header, cells)


def _print(console: Console, report: Report, path: Path, problems: Path | None) -> None:
    if report.errors:
        table = Table(title=f"rejected rows in {escape(path.name)}")
        for column in _PROBLEM_COLUMNS:
            table.add_column(column)
        for error in report.errors[:_SHOWN_ERRORS]:
            table.add_row(str(error.row), error.field, error.reason, row_code(error).value)
        console.print(table)
        if len(report.errors) > _SHOWN_ERRORS:
            where = (
                " (--problems FILE.csv writes every one)"
                if problems is None
                else f", every one in {escape(str(problems))}"
            )
            more = len(report.errors) - _SHOWN_ERRORS
            console.print(f"… and {more} more problems{where}", soft_wrap=True)
    if not report.applied:
        outcome = "nothing written (all-or-nothing)"
    elif report.created or report.updated:
        outcome = "written"
    else:  # every row refused or as on record: the counts say which
        outcome = "nothing written"
    console.print(
        f"{report.received} rows: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.rejected} rejected; {outcome}",
        soft_wrap=True,
    )
