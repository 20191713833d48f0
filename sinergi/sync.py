"""`sinergi sync`: keep a local SQLite copy of what a client may read, from the change feed.

The copy holds one row per record (its fields as JSON, as the feed sends them) and, per feed,
the cursor it has applied up to; each page is applied and its cursor stored in one SQLite
transaction, so a sync stopped at any point resumes where it stopped and never applies a page
twice. A first sync reads the whole register (the feed begins with every record), later ones
only what changed. When the feed refuses the copy's cursor (compacted past it, ahead of the
feed, whose database was restored or rebuilt since, or no longer opened, under a new audit
key), that kind's copy is emptied and filled again from the start, once a run (a second
refusal stops the sync), and the feed's reason is reported. A cursor is opaque here: it is
kept and sent back as the feed handed it out. A page refused for the client's rate limit is
asked again after the wait the server names, a bounded number of times.

The copy holds owners' personal data when the client holds pii:read, so its file is its owner's
only, and the client's secret travels over https (plain http only to this machine) and never
follows a redirect. An answer is read within a size bound and a deadline: the server (or what
answers for it) must not be able to exhaust the client's memory or keep it waiting for ever.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import sqlite3
import stat
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auth import outbound
from auth.cleartext import cleartext_refusal, without_userinfo
from auth.tokens import shown

FEEDS = {
    "msme": "msmeChanges",
    "cooperative": "cooperativeChanges",
    "participation": "participationChanges",
    "guarantee": "guaranteeChanges",
}
PAGE_SIZE = 1000
EMPTY_PAGES = 10_000
"""How many pages in a row with no entries and more to come one run takes before it stops. The
feed answers such a page when the stretch of its log a page looks at (20,000 entries) held
nothing for the client, so a run of them is legitimate, but a server answering nothing with a
new cursor each time would be asked for ever. This many is 200 million entries of others'
changes in a row; a feed longer than that still goes on at the next run, from the last cursor
applied."""
SHOWN_CHARS = 300
"""How much of a server's own text (its refusal, an error body) a line shows (`shown`): enough
to read a reason by, not a screenful a hostile server chose."""
QUERY = (
    "query Sync($after: String) {{ {field}(after: $after, first: {size}) "
    "{{ entries {{ id change record }} endCursor hasMore }} }}"
)

Post = Callable[[str, dict[str, Any]], dict[str, Any]]
"""Sends a GraphQL document with its variables, returns the decoded answer."""


class SyncError(Exception):
    """The server refused a page; the copy stays at its last applied cursor."""


class CredentialsRefused(SyncError):
    """The token endpoint refused the client id or its secret: the operator's to correct."""


class ScopeRefused(SyncError):
    """The client lacks a scope a feed named in --kinds needs: the operator's to correct."""

    def __init__(self, kind: str, scopes: list[str]) -> None:
        super().__init__(
            f"lacks {' and '.join(scopes)} for the {kind} feed: leave {kind} out of --kinds"
        )


class ExposedCopy(Exception):
    """The copy's file is open to its group or others, another user's or a symbolic link, or
    its directory is one others may write to; it holds owners' personal data. Or the path is no
    file at all (a directory)."""


class AnotherSource(Exception):
    """The copy was made for another client or server: its cursors are theirs, so syncing on
    from them would skip this client's records and keep the other's (personal data included)."""


class LocalCopy:
    """The SQLite file: `records (kind, id, record)`, `cursors (kind, cursor)` and the
    `source (server, client_id)` it was made from."""

    source: tuple[str, str] = ("", "")
    """The server and client it is synced from (`bind`)."""

    def __init__(self, path: Path | str) -> None:
        _private(Path(path))
        self.db = sqlite3.connect(path)
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, id TEXT NOT NULL,"
            " record TEXT NOT NULL, PRIMARY KEY (kind, id));"
            "CREATE TABLE IF NOT EXISTS cursors (kind TEXT PRIMARY KEY, cursor TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS source (server TEXT NOT NULL, client_id TEXT NOT NULL);"
        )

    def bind(self, server: str, client_id: str) -> None:
        """Sync from this client and server: refused when the copy holds another's. The copy
        is tied to them with its first page (not before: a mistyped client id, refused, would
        otherwise claim it); a copy made before this table existed is tied at its next."""
        self.source = (server, client_id)
        made_for = self.db.execute("SELECT server, client_id FROM source").fetchone()
        if made_for is not None and tuple(made_for) != self.source:
            raise AnotherSource(
                f"the copy was made for client {made_for[1]!r} at {made_for[0]}, not"
                f" {client_id!r} at {server}: sync it as that client, or into a new file"
            )

    def cursor(self, kind: str) -> str | None:
        row = self.db.execute("SELECT cursor FROM cursors WHERE kind = ?", (kind,)).fetchone()
        return None if row is None else str(row[0])

    def apply(self, kind: str, entries: Iterable[dict[str, Any]], end_cursor: str) -> None:
        """A removed business takes its participations with it. The feed removes each of them
        too, when the business moves out or is deleted outright, but entries logged before
        migration 0056 name no removal for the latter, and a copy may still read those."""
        with self.db:
            self.db.execute(
                "INSERT INTO source SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM source)",
                self.source,
            )
            for entry in entries:
                if entry["change"] == "REMOVED":
                    self.db.execute(
                        "DELETE FROM records WHERE kind = ? AND id = ?", (kind, entry["id"])
                    )
                    if kind in ("msme", "cooperative"):
                        self.db.execute(
                            "DELETE FROM records WHERE kind = 'participation'"
                            " AND json_extract(record, ?) = ?",
                            (f"$.{kind}Id", entry["id"]),
                        )
                else:
                    self.db.execute(
                        "INSERT INTO records (kind, id, record) VALUES (?, ?, ?)"
                        " ON CONFLICT (kind, id) DO UPDATE SET record = excluded.record",
                        (kind, entry["id"], json.dumps(entry["record"], sort_keys=True)),
                    )
            self.db.execute(
                "INSERT INTO cursors (kind, cursor) VALUES (?, ?)"
                " ON CONFLICT (kind) DO UPDATE SET cursor = excluded.cursor",
                (kind, end_cursor),
            )

    def start_again(self, kind: str) -> None:
        """Forget the kind's records and cursor: its next page comes from the start."""
        with self.db:
            self.db.execute("DELETE FROM records WHERE kind = ?", (kind,))
            self.db.execute("DELETE FROM cursors WHERE kind = ?", (kind,))

    def records(self, kind: str) -> dict[str, dict[str, Any]]:
        rows = self.db.execute("SELECT id, record FROM records WHERE kind = ?", (kind,))
        return {key: json.loads(record) for key, record in rows}

    def close(self) -> None:
        self.db.close()


def _private(path: Path) -> None:
    """The copy holds owners' personal data (NIK, name, phone): a new one is made readable by its
    owner only, before SQLite opens it (which would make it 0644 under the usual umask; its
    journal takes the file's mode). An existing copy open to others is refused, not tightened:
    its mode may be deliberate (a group's reporting job reads it), which a chmod would break
    silently, and whether its exposure so far matters is the operator's call. So is one that is
    a symbolic link or another user's file: its mode says nothing of who reads it (its owner
    does, whatever the mode; a link leads wherever its maker chose), and one planted at the
    path ahead of the operator would have received the owners' NIKs. And so is a copy whose
    directory another user may write to (`_own_directory`)."""
    _own_directory(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:  # O_EXCL: a symbolic link too, even one leading nowhere
        found = path.lstat()
        if stat.S_ISLNK(found.st_mode):
            raise ExposedCopy(
                f"{path} is a symbolic link: sync into the file itself, or into a new file"
            ) from None
        if not stat.S_ISREG(found.st_mode):  # a directory, a device: no copy to keep there
            raise ExposedCopy(f"{path} is not a file: give the copy's file path") from None
        if found.st_uid != os.geteuid():
            raise ExposedCopy(
                f"{path} belongs to another user (uid {found.st_uid}), who can read the owners'"
                " personal data it would receive: sync into a new file of your own"
            ) from None
        mode = stat.S_IMODE(found.st_mode)
        if mode & 0o077:
            raise ExposedCopy(
                f"{path} is open to its group or others (mode {mode:o}) and holds owners' "
                f"personal data: restrict it (chmod 600 {path}) or sync into a new file"
            ) from None


def _own_directory(path: Path) -> None:
    """SQLite keeps the copy's rollback journal beside it (`COPY-journal`), opens one already
    there rather than refusing it, and writes into it the copy's pages about to change: owners'
    personal data synced earlier. Whoever else may create files in the directory (a group, all
    users, as in /tmp, or its owner when that is another user) can plant that file, hold it
    open, and read them; or plant a journal SQLite plays back into the copy. Only a directory
    of the running user's own (or root's) that no one else may write to is used."""
    directory = path.absolute().parent
    found = directory.stat()
    if found.st_uid not in (os.geteuid(), 0):
        raise ExposedCopy(
            f"the copy's directory {directory} belongs to another user (uid {found.st_uid}),"
            " who could read the owners' personal data from the journal SQLite keeps beside"
            " the copy: keep the copy in a directory of your own"
        )
    mode = stat.S_IMODE(found.st_mode)
    if mode & 0o022:
        raise ExposedCopy(
            f"the copy's directory {directory} may be written to by its group or others (mode"
            f" {mode:o}), who could read the owners' personal data from the journal SQLite"
            f" keeps beside the copy: restrict it (chmod go-w {directory}) or keep the copy in"
            " a directory of your own"
        )


@dataclass
class Synced:
    entries: int = 0
    """Entries applied."""
    started_again: str | None = None
    """Why the feed refused the copy's cursor (compacted past it, ahead of the feed, or not
    opened), when it did: the copy of this kind was then emptied and filled again from the
    start."""


def sync(post: Post, copy: LocalCopy, kinds: Iterable[str]) -> dict[str, Synced]:
    """Apply every page each feed has now; what each feed brought. A kind starts again once a
    run: a feed refusing a cursor it handed out in the same run (two servers behind one URL)
    would have it emptied and its first page fetched again for ever. The second refusal stops
    the run, the copy holding what it fetched of the kind since it started it over, and its
    cursor, for the next run to go on from: a compaction run meanwhile refuses a cursor once."""
    synced: dict[str, Synced] = {}
    for kind in kinds:
        document = QUERY.format(field=FEEDS[kind], size=PAGE_SIZE)
        synced[kind] = Synced()
        empty = 0
        while True:
            cursor = copy.cursor(kind)
            answer = post(document, {"after": cursor})
            refusal = None if cursor is None else _cursor_refused(answer)
            if refusal is not None:
                if synced[kind].started_again is not None:  # every cursor since is this run's
                    raise SyncError(
                        f"{FEEDS[kind]}: the feed refused a cursor it handed out in this run"
                        f" ({refusal}): is --url several servers, or did `sinergi feed compact`"
                        f" run meanwhile? The copy holds what this run fetched of {kind} since it"
                        " started it over; run again once --url is one server, or the compaction"
                        " has finished"
                    )
                copy.start_again(kind)
                synced[kind].started_again = refusal
                continue
            data = answer.get("data")
            page = data.get(FEEDS[kind]) if isinstance(data, dict) else None
            scopes = _scopes_lacking(answer)
            if scopes:
                raise ScopeRefused(kind, scopes)
            if answer.get("errors"):
                raise SyncError(shown(answer["errors"], SHOWN_CHARS))
            if page is None:
                raise SyncError(
                    f"{FEEDS[kind]}: the server answered neither a page nor an error: is --url a"
                    " Sinergi server?"
                )
            entries, end_cursor, has_more = _checked(FEEDS[kind], page)
            if has_more and not entries and end_cursor == cursor:
                raise SyncError(
                    f"{FEEDS[kind]}: the server answered a page with no entries, more to come and"
                    " the cursor it was asked from: stopped (asking again would loop for ever)"
                )
            copy.apply(kind, entries, end_cursor)
            synced[kind].entries += len(entries)
            if not has_more:
                break
            empty = 0 if entries else empty + 1
            if empty == EMPTY_PAGES:
                raise SyncError(
                    f"{FEEDS[kind]}: the server answered {EMPTY_PAGES} pages in a row with no"
                    " entries and more to come: stopped (what was applied is kept: sync again to"
                    " go on)"
                )
    return synced


CHANGES = frozenset({"CREATED", "UPDATED", "DEACTIVATED", "REMOVED"})
"""The feed's ChangeKind values (schema/types/change_feed.py, not imported: it would load the
whole schema into a client that needs four words of it)."""


def _checked(field: str, page: object) -> tuple[list[dict[str, Any]], str, bool]:
    """The page's entries, endCursor and hasMore, once it has the shape the feed's schema gives
    it: a page of another shape (a server that is not Sinergi, or not well) stops the sync with
    its own error, not a Python traceback, and nothing of it is applied."""

    def malformed(why: str) -> SyncError:
        return SyncError(f"{field}: the server answered a malformed page ({why}): nothing applied")

    if not isinstance(page, dict):
        raise malformed("not an object")
    entries, end_cursor, has_more = page.get("entries"), page.get("endCursor"), page.get("hasMore")
    if not isinstance(entries, list):
        raise malformed("entries is not a list")
    if not isinstance(end_cursor, str):
        raise malformed("endCursor is not a string")
    if not isinstance(has_more, bool):
        raise malformed("hasMore is not true or false")
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise malformed(f"entry {number} is not an object")
        if not isinstance(entry.get("id"), str):
            raise malformed(f"entry {number}'s id is not a string")
        change = entry.get("change")
        if not isinstance(change, str) or change not in CHANGES:
            raise malformed(f"entry {number}'s change is not one of {', '.join(sorted(CHANGES))}")
        if change != "REMOVED" and not isinstance(entry.get("record"), dict):
            raise malformed(f"entry {number}'s record is not an object")
    return entries, end_cursor, has_more


def _cursor_refused(answer: dict[str, Any]) -> str | None:
    """Why the feed refused the cursor, if it did: it no longer keeps what follows it (`sinergi
    feed compact`), the cursor is ahead of it (its database restored or rebuilt), or it does
    not open (sealed under an audit key since replaced). Going on from it would miss changes,
    or cannot, so the copy must start again, empty."""
    for error in answer.get("errors") or []:
        extensions = error.get("extensions") or {}
        if extensions.get("code") == "BAD_USER_INPUT" and extensions.get("field") == "after":
            return shown(error.get("message", ""), SHOWN_CHARS)
    return None


SCOPE = re.compile(r"[a-z]+:[a-z]+")
"""A scope's name (`records:read`): a refusal naming others is shown as the server worded it."""


def _scopes_lacking(answer: dict[str, Any]) -> list[str]:
    """The scopes a FORBIDDEN refusal says the client lacks for the feed, if it is one."""
    errors = answer.get("errors")
    for error in errors if isinstance(errors, list) else []:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if not isinstance(extensions, dict) or extensions.get("code") != "FORBIDDEN":
            continue
        scopes = extensions.get("requiredScopes")
        names = scopes if isinstance(scopes, list) else []
        if names and all(isinstance(name, str) and SCOPE.fullmatch(name) for name in names):
            return names
    return []


REQUEST_SECONDS = 300
"""How long one request (its connection, the answer's headers and body) may take in all. A read
waits at most READ_SECONDS for the next bytes, but a server (or whatever answers for it) sending
a byte a minute passes that check at every read and would keep the sync waiting for ever. A
page of PAGE_SIZE entries is at most SINERGI_MAX_RESPONSE_BYTES, which a slow link still
carries in this time."""

READ_SECONDS = 60
"""How long a read (or the connection) waits for the server before giving up."""

READ_CHUNK = 65_536

RATE_LIMIT_WAIT = 120
"""The longest wait, in seconds, before a request refused with 429 is sent again (the server's
Retry-After, or this when it names none): a catch-up of thousands of pages passes a server's
requests-per-minute limit, and waiting out its window beats stopping; a server naming an hour
is asked again sooner rather than holding the terminal that long."""

RATE_LIMIT_TRIES = 5
"""How many times one request refused with 429 is sent again before the sync stops, what it
applied kept: a server that keeps refusing is told to the operator, not waited on for ever."""


def _read(url: str, response: Any, max_bytes: int) -> bytes:
    """The answer's body, refused once it runs past `max_bytes` (read in chunks, so a body of
    gigabytes costs no more memory than the bound): a Sinergi server answers nothing larger
    (SINERGI_MAX_RESPONSE_BYTES, which this client reads from its own environment too)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read1(READ_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise SyncError(
                f"{url} answered more than {max_bytes} bytes: refused unread (a Sinergi"
                " server answers no more than its SINERGI_MAX_RESPONSE_BYTES; raise this"
                " client's SINERGI_MAX_RESPONSE_BYTES to match it)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follows no redirect: urllib's default one would re-send the bearer token (and the page's
    request) to wherever `Location` points, any origin over plain http too, past the https
    check made on `--url` alone, and apply what that origin answered to the copy. Left
    unfollowed, a 3xx reaches `_json` as an `HTTPError`."""

    def redirect_request(self, *args: Any) -> None:
        return None


class _Refused(Exception):
    """The server answered an HTTP error status (not a redirect); `body` read within the
    request's bounds, `retry_after` its Retry-After header."""

    def __init__(self, status: int, body: bytes, retry_after: str | None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.retry_after = retry_after


class _Unreachable(Exception):
    """No connection to the server (refused, an unknown host, TLS refused): `http_post` names
    --url, which the operator typed, rather than the endpoint it was asking."""

    def __init__(self, reason: object) -> None:
        super().__init__(reason)
        self.why = (reason.strerror if isinstance(reason, OSError) else None) or str(reason)


def _json(url: str, body: bytes, headers: dict[str, str], max_bytes: int) -> dict[str, Any]:
    """The answer, decoded, its connection, headers and body within REQUEST_SECONDS and its
    body within `max_bytes`; an error status as `_Refused`, no connection as `_Unreachable`."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise SyncError(f"{url}: not an http(s) URL")
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 (checked above)
    opener = outbound.opener(REQUEST_SECONDS, READ_SECONDS, _NoRedirect())
    try:
        with opener.open(request, timeout=READ_SECONDS) as response:
            answer = json.loads(_read(url, response, max_bytes))
    except urllib.error.HTTPError as error:
        with error:
            if 300 <= error.code < 400:
                location = shown(error.headers.get("Location"), SHOWN_CHARS)
                raise SyncError(
                    f"{url} answered {error.code}, redirecting to {location}: not followed"
                    " (the client's token would go with it); give --url as the server's own"
                    " address"
                ) from None
            body = _read(url, error, max_bytes)
            raise _Refused(error.code, body, error.headers.get("Retry-After")) from None
    except (outbound.DeadlinePassed, urllib.error.URLError) as error:
        reason = getattr(error, "reason", error)
        if not isinstance(reason, outbound.DeadlinePassed):
            raise _Unreachable(reason) from None
        raise SyncError(f"{url} did not answer within {REQUEST_SECONDS} s: stopped") from None
    except http.client.HTTPException as error:  # a status line or header no HTTP server sends
        raise SyncError(f"{url} answered no HTTP: {shown(str(error), SHOWN_CHARS)}") from None
    except ValueError:  # a proxy's or another server's page: nothing to apply
        raise SyncError(f"{url} did not answer JSON: is --url a Sinergi server?") from None
    if not isinstance(answer, dict):
        raise SyncError(f"{url} answered JSON that is not an object: is --url a Sinergi server?")
    return answer


def _body(refused: _Refused) -> str:
    """The refusal's body as a line may show it (`shown`)."""
    return shown(refused.body.decode(errors="replace"), SHOWN_CHARS)


def _retry_after(refused: _Refused) -> int:
    """The seconds a 429 says to wait: its Retry-After header, else its error's `retryAfter`
    (Sinergi sends both), else RATE_LIMIT_WAIT (a proxy's 429, or an HTTP date)."""
    if refused.retry_after is not None and refused.retry_after.strip().isdigit():
        return int(refused.retry_after)
    try:
        answer = json.loads(refused.body)
    except ValueError:
        return RATE_LIMIT_WAIT
    errors = answer.get("errors") if isinstance(answer, dict) else None
    for error in errors if isinstance(errors, list) else []:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        seconds = extensions.get("retryAfter") if isinstance(extensions, dict) else None
        if type(seconds) is int and seconds >= 0:
            return seconds
    return RATE_LIMIT_WAIT


def _oauth_error(refused: _Refused) -> str | None:
    """RFC 6749's `error` of a refusal from the token endpoint (None when the body is not one:
    a proxy's page, say)."""
    try:
        answer = json.loads(refused.body)
    except ValueError:
        return None
    error = answer.get("error") if isinstance(answer, dict) else None
    return error if isinstance(error, str) else None


def http_post(
    base_url: str,
    client_id: str,
    secret: str,
    max_bytes: int,
    sleep: Callable[[float], object] = time.sleep,
) -> Post:
    """GraphQL over HTTP with a client-credentials token, fetched again when it expires; no
    answer read past `max_bytes` (the settings' max_response_bytes). A request refused with 429
    is sent again after the wait the server names (`sleep`, which a test replaces)."""
    base = base_url.rstrip("/")
    token: list[str] = []

    def answer_to(path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        for tries in range(RATE_LIMIT_TRIES + 1):
            try:
                return _json(f"{base}{path}", body, headers, max_bytes)
            except _Unreachable as error:
                raise SyncError(f"cannot reach --url {base}: {error.why}") from None
            except _Refused as error:
                if error.status != 429:
                    raise
                wait = _retry_after(error)
                if tries == RATE_LIMIT_TRIES:
                    raise SyncError(f"rate limited by {base}: run again in {wait} s") from None
                sleep(min(wait, RATE_LIMIT_WAIT))
        raise AssertionError("unreachable")

    def fetch_token() -> str:
        form = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            answer = answer_to("/oauth/token", form, headers)
        except _Refused as error:
            if error.status not in (400, 401):
                raise SyncError(
                    f"{base}/oauth/token answered {error.status}: {_body(error)}"
                ) from None
            refused = _oauth_error(error)
            if refused != "invalid_client":
                why = f" ({shown(refused, SHOWN_CHARS)})" if refused else ""
                raise SyncError(f"{base}/oauth/token refused a token{why}") from None
            raise CredentialsRefused(
                f"{base}/oauth/token refused the client id {client_id!r} or its secret"
                " (--client-id, --secret-file): no active client has that id and secret"
            ) from None
        if not isinstance(answer.get("access_token"), str):
            raise SyncError(f"{base}/oauth/token answered no access_token")
        return str(answer["access_token"])

    def post(document: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"query": document, "variables": variables}).encode()
        for attempt in range(2):
            if not token:
                token.append(fetch_token())
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token[0]}"}
            try:
                return answer_to("/graphql", body, headers)
            except _Refused as error:
                if error.status != 401 or attempt:
                    raise SyncError(f"{error.status}: {_body(error)}") from None
                token.clear()  # expired: one new token, one more try
        raise AssertionError("unreachable")

    return post


def add_parsers(commands: Any) -> None:
    sync_parser = commands.add_parser(
        "sync", help="keep a local SQLite copy of what a client may read, from the change feed"
    )
    sync_parser.add_argument("copy", type=Path, help="the SQLite file (made on first use)")
    sync_parser.add_argument("--url", required=True, help="the server, https://sinergi.example")
    sync_parser.add_argument("--client-id", required=True)
    sync_parser.add_argument(
        "--secret-file", type=Path, required=True, help="a file holding the client's secret"
    )
    sync_parser.add_argument(
        "--kinds",
        default="msme,cooperative,participation",
        help=f"comma-separated feeds among {', '.join(FEEDS)} (default: the records)",
    )
    sync_parser.set_defaults(handler=_sync)


def _sync(args: Any, settings: Any) -> int:
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in FEEDS]
    if unknown:
        print(f"sinergi sync: unknown feed {', '.join(unknown)}", file=sys.stderr)
        return 2
    if not kinds:  # a sync of nothing would exit 0, as if the copy were up to date
        print(
            f"sinergi sync: --kinds names no feed: give one or more of {', '.join(FEEDS)}",
            file=sys.stderr,
        )
        return 2
    # Printed (a refusal, a copy made for another) and stored in the copy, and never sent: the
    # client authenticates with its id and secret.
    url = without_userinfo(args.url)
    refusal = cleartext_refusal(
        url, "would send the client's secret and owners' personal data unencrypted"
    )
    if refusal is not None:
        print(f"sinergi sync: {refusal}", file=sys.stderr)
        return 2
    try:
        secret = args.secret_file.read_text().strip()
    except OSError as error:
        print(
            f"sinergi sync: cannot read --secret-file {args.secret_file}: {error.strerror}",
            file=sys.stderr,
        )
        return 2
    try:
        copy = LocalCopy(args.copy)
    except ExposedCopy as error:
        print(f"sinergi sync: {error}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as error:  # a folder that is not there, …
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        print(f"sinergi sync: cannot make or open the copy {args.copy}: {reason}", file=sys.stderr)
        return 2
    try:
        copy.bind(url.rstrip("/"), args.client_id)
        post = http_post(url, args.client_id, secret, settings.query_limits.max_response_bytes)
        applied = sync(post, copy, kinds)
    except (CredentialsRefused, AnotherSource) as error:
        print(f"sinergi sync: {error}", file=sys.stderr)
        return 2
    except ScopeRefused as error:
        print(f"sinergi sync: client {args.client_id!r} {error}", file=sys.stderr)
        return 2
    except (SyncError, OSError) as error:
        print(f"sinergi sync: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit) as stop:
        # Ctrl-C; under the `sinergi` command SIGINT and SIGTERM raise its `Stopped`, an exit
        # with 128 + the signal (nothing here exits otherwise). Each page is applied with its
        # cursor in one transaction: the one under way was rolled back.
        print(
            "sinergi sync: interrupted; the copy holds every page applied so far", file=sys.stderr
        )
        code = stop.code if isinstance(stop, SystemExit) else None
        return code if isinstance(code, int) else 128 + signal.SIGINT
    except sqlite3.Error as error:  # another program's tables, a full disk, a read-only file
        print(
            f"sinergi sync: cannot read or write the copy {args.copy}: {error}; nothing of this"
            " page applied",
            file=sys.stderr,
        )
        return 1
    finally:
        copy.close()
    for kind, done in applied.items():
        again = f" (copied again from the start; the feed refused its cursor: {done.started_again})"
        print(f"{kind}: {done.entries} changes applied{again if done.started_again else ''}")
    return 0
