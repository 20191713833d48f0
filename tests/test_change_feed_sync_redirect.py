"""`sinergi sync` follows no redirect: the https check covers `--url` only, so a server (or
whoever answers for it) that sent the client on to another origin would have the bearer token
re-sent there, and that origin's page applied to the copy. Any 3xx, from the token endpoint or
from `/graphql`, stops the sync (exit 1) naming the status and where it pointed, the other
origin never asked and the copy untouched. Against the same stub servers: a copy answers only to
the client and server it was made for, a server that answers no JSON ends in one line, and one
that answers without end (too much, or too slowly) is stopped, and what a server words itself
reaches the terminal escaped; a page of another shape than the feed's, or one that makes no
progress, stops the sync with one line."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sinergi import sync
from sinergi.cli import main

FAKE_PAGE = {
    "access_token": "planted-token",
    "data": {
        "msmeChanges": {
            "entries": [{"id": "planted", "change": "CREATED", "record": {"name": "Fake"}}],
            "endCursor": "planted-cursor",
            "hasMore": False,
        }
    },
}


class _Handler(BaseHTTPRequestHandler):
    """Notes each request (path, Authorization header); `answer` says what to send back."""

    seen: list[tuple[str, str | None]]
    body: bytes
    """The request's."""

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def _respond(self) -> None:
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.path, self.headers.get("Authorization")))
        status, headers, body = self.answer()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._respond()

    def do_POST(self) -> None:
        self._respond()

    def log_message(self, *args: object) -> None:
        """Quiet."""


def _serve(answer: object) -> Iterator[tuple[ThreadingHTTPServer, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    handler = type("Stub", (_Handler,), {"seen": seen, "answer": answer})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server, seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def other_origin() -> Iterator[tuple[ThreadingHTTPServer, list[tuple[str, str | None]]]]:
    """Another origin: answers anything with a fake page (and a token)."""

    def answer(self: _Handler) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, json.dumps(FAKE_PAGE).encode()

    yield from _serve(answer)


@pytest.mark.parametrize("path", ["/graphql", "/oauth/token"])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_nothing_is_applied(
    tmp_path: Path,
    other_origin: tuple[ThreadingHTTPServer, list[tuple[str, str | None]]],
    status: int,
    path: str,
) -> None:
    elsewhere, seen_elsewhere = other_origin
    location = f"http://127.0.0.1:{elsewhere.server_port}{path}"

    def answer(self: _Handler) -> tuple[int, dict[str, str], bytes]:
        if self.path == path:
            return status, {"Location": location}, b""
        token = {"access_token": "real-token", "token_type": "Bearer", "expires_in": 300}
        return 200, {"Content-Type": "application/json"}, json.dumps(token).encode()

    copy = tmp_path / "copy.sqlite"
    for server, seen in _serve(answer):
        result = subprocess.run(
            [sys.executable, "-m", "sinergi.cli",
             *_sync_args(copy, f"http://127.0.0.1:{server.server_port}", tmp_path)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert path in [asked for asked, _ in seen]
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert str(status) in result.stderr
    assert location in result.stderr
    assert seen_elsewhere == []
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT count(*) FROM records").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM cursors").fetchone() == (0,)


def _sync_args(
    copy: Path, url: str, tmp_path: Path, client_id: str = "demo-province-62"
) -> list[str]:
    """`sinergi sync`'s arguments syncing the msme feed into `copy` from the stub server at
    `url` as `client_id`, its secret the demo's, written to a file in `tmp_path` first."""
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("sinergi-demo-secret")
    secret_file.chmod(0o600)
    return [
        "sync", str(copy), "--url", url, "--client-id", client_id,
        "--secret-file", str(secret_file), "--kinds", "msme",
    ]  # fmt: skip


def _sync_with(
    port: int,
    copy: Path,
    client_id: str,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    userinfo: str = "",
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sinergi.cli",
         *_sync_args(copy, f"http://{userinfo}127.0.0.1:{port}", tmp_path, client_id)],
        capture_output=True, text=True, timeout=60, check=False,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip


def test_a_plain_http_server_is_asked_directly_whatever_proxy_the_environment_names(
    tmp_path: Path, other_origin: tuple[ThreadingHTTPServer, list[tuple[str, str | None]]]
) -> None:
    """urllib sent a loopback http sync through `http_proxy`, in the clear: the client's secret
    and bearer token went to the proxy, which answered the pages. Here the proxy (answering
    any request with a fake page) is never asked."""
    proxy, asked_the_proxy = other_origin

    def answer(self: _Handler) -> tuple[int, dict[str, str], bytes]:
        if self.path == "/oauth/token":
            return 200, {"Content-Type": "application/json"}, TOKEN
        page = {"entries": [], "endCursor": "c1", "hasMore": False}
        return 200, {}, json.dumps({"data": {"msmeChanges": page}}).encode()

    environment = {"http_proxy": f"http://127.0.0.1:{proxy.server_port}", "no_proxy": ""}
    for server, seen in _serve(answer):
        result = _sync_with(
            server.server_port, tmp_path / "copy.sqlite", "demo-province-62", tmp_path,
            env={**environment, "NO_PROXY": ""},
        )  # fmt: skip
        assert [path for path, _ in seen] == ["/oauth/token", "/graphql"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert asked_the_proxy == []


def test_a_copy_is_synced_only_as_the_client_and_server_it_was_made_for(
    tmp_path: Path, other_origin: tuple[ThreadingHTTPServer, list[tuple[str, str | None]]]
) -> None:
    """A copy made as Kalimantan Tengah's client and synced on as Kalimantan Barat's kept the
    first's records (owners' personal data included) and, resuming from its cursors, never
    received the second's."""
    server, seen = other_origin
    copy = tmp_path / "copy.sqlite"
    made = _sync_with(server.server_port, copy, "demo-province-62", tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    asked = len(seen)
    for port, client_id in [
        (server.server_port, "demo-province-61"),
        (server.server_port + 1, "demo-province-62"),  # another server (none listens there)
    ]:
        refused = _sync_with(port, copy, client_id, tmp_path)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr == (
            f"sinergi sync: the copy was made for client 'demo-province-62' at"
            f" http://127.0.0.1:{server.server_port}, not {client_id!r} at"
            f" http://127.0.0.1:{port}: sync it as that client, or into a new file\n"
        )
    assert len(seen) == asked  # refused before asking
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT id FROM records").fetchall() == [("planted",)]


def test_a_url_with_a_password_is_never_printed(
    tmp_path: Path, other_origin: tuple[ThreadingHTTPServer, list[tuple[str, str | None]]]
) -> None:
    """`--url http://user:pw@…` was printed whole, password and all, in the refusal of a copy
    made for another client or server."""
    server, _ = other_origin
    copy = tmp_path / "copy.sqlite"
    made = _sync_with(server.server_port, copy, "demo-province-62", tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    refused = _sync_with(
        server.server_port, copy, "demo-province-61", tmp_path, userinfo="someone:never-shown@"
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr == (
        f"sinergi sync: the copy was made for client 'demo-province-62' at"
        f" http://127.0.0.1:{server.server_port}, not 'demo-province-61' at"
        f" http://127.0.0.1:{server.server_port}: sync it as that client, or into a new file\n"
    )


@pytest.mark.parametrize("body", [b"<html>proxy login</html>", b"[]", b'{"token": "x"}'])
def test_a_server_answering_no_sinergi_json_is_one_line(tmp_path: Path, body: bytes) -> None:
    def answer(self: _Handler) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "text/html"}, body

    copy = tmp_path / "copy.sqlite"
    for server, _ in _serve(answer):
        result = _sync_with(server.server_port, copy, "demo-province-62", tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("sinergi sync: http://127.0.0.1:"), result.stderr
    assert result.stderr.count("\n") == 1


TOKEN = json.dumps({"access_token": "t", "token_type": "Bearer", "expires_in": 300}).encode()


@pytest.mark.parametrize(
    ("path", "status"), [("/graphql", 200), ("/graphql", 500), ("/oauth/token", 400)]
)
def test_an_answer_past_the_response_bound_is_refused_unread(
    tmp_path: Path, path: str, status: int
) -> None:
    """`json.loads(response.read())` held a 1.5 GB answer (or error body) in memory twice
    over: an answer is read only up to SINERGI_MAX_RESPONSE_BYTES, then refused."""
    flood = b'{"errors": "' + b"x" * 300_000 + b'"}'

    def answer(self: _Handler) -> tuple[int, dict[str, str], bytes]:
        if self.path == path:
            return status, {"Content-Type": "application/json"}, flood
        return 200, {"Content-Type": "application/json"}, TOKEN

    copy = tmp_path / "copy.sqlite"
    for server, _ in _serve(answer):
        result = _sync_with(
            server.server_port, copy, "demo-province-62", tmp_path,
            {"SINERGI_MAX_RESPONSE_BYTES": "100000"},
        )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == (
        f"sinergi sync: http://127.0.0.1:{server.server_port}{path} answered more than 100000"
        " bytes: refused unread (a Sinergi server answers no more than its"
        " SINERGI_MAX_RESPONSE_BYTES; raise this client's SINERGI_MAX_RESPONSE_BYTES to match"
        " it)\n"
    )


class _Trickle(BaseHTTPRequestHandler):
    """Answers a byte every tenth of a second, for ten seconds at most: each read gets its
    byte well within its timeout, so only a deadline on the whole request stops the client."""

    in_headers = False

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        head = (
            b"HTTP/1.1 200 OK\r\nX-Slow: "
            if self.in_headers
            else (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        )
        self.wfile.write(head)
        ended = time.monotonic() + 10
        try:
            while time.monotonic() < ended:
                self.wfile.write(b"a")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            return  # the client gave up

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_an_answer_trickling_in_is_stopped_at_the_request_deadline(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    in_headers: bool,
) -> None:
    """A server sending a byte every 59 s kept sync waiting for ever: the socket's timeout is
    per read. A request now has REQUEST_SECONDS in all (shortened here to 1)."""
    monkeypatch.setattr(sync, "REQUEST_SECONDS", 1)
    handler = type("Trickle", (_Trickle,), {"in_headers": in_headers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    began = time.monotonic()
    try:
        status = main(_sync_args(tmp_path / "copy.sqlite", url, tmp_path))
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - began < 5
    assert status == 1
    assert capsys.readouterr().err == (
        f"sinergi sync: {url}/oauth/token did not answer within 1 s: stopped\n"
    )


HOSTILE = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202etxt.exe\r" + "z" * 5_000


def _hostile(self: _Handler, where: str) -> tuple[int, dict[str, str], bytes]:
    """A page, then (the copy having a cursor) `HOSTILE` from `where`."""
    answered = {"Content-Type": "application/json"}
    if self.path == "/oauth/token":
        if where == "token":
            return 400, answered, json.dumps({"error": HOSTILE}).encode()
        return 200, answered, TOKEN
    if json.loads(self.body)["variables"]["after"] is None:
        page = {"entries": [], "endCursor": "c1", "hasMore": False}
        return 200, answered, json.dumps({"data": {"msmeChanges": page}}).encode()
    if where == "errors":
        return 200, answered, json.dumps({"errors": [{"message": HOSTILE}]}).encode()
    if where == "refusal":
        refusal = {"message": HOSTILE, "extensions": {"code": "BAD_USER_INPUT", "field": "after"}}
        return 200, answered, json.dumps({"errors": [refusal]}).encode()
    if where == "body":
        return 502, {"Content-Type": "text/plain"}, HOSTILE.encode()
    return 302, {"Location": "http://x/" + HOSTILE[:18]}, b""  # what latin-1 headers carry


class _BadStatus(BaseHTTPRequestHandler):
    """Answers a status line no HTTP server sends: http.client's refusal quotes it."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.wfile.write(HOSTILE[:18].encode("latin-1") + b" 200 OK\r\n\r\n")

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.mark.parametrize("where", ["token", "errors", "refusal", "body", "location", "status"])
def test_a_servers_own_text_reaches_the_terminal_escaped_and_cut(
    tmp_path: Path, where: str
) -> None:
    """A refusal's message or an error body went to the terminal raw: an escape sequence in it
    could retitle, clear or rewrite the operator's terminal, a bidirectional override reverse
    what followed. It is shown as its repr, cut to SHOWN_CHARS."""
    copy = tmp_path / "copy.sqlite"
    if where == "status":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _BadStatus)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        result = _sync_with(server.server_port, copy, "demo-province-62", tmp_path)
        server.shutdown()
        server.server_close()
    else:
        for server, _ in _serve(lambda self: _hostile(self, where)):
            made = _sync_with(server.server_port, copy, "demo-province-62", tmp_path)
            assert made.returncode == (1 if where == "token" else 0), made.stdout + made.stderr
            result = _sync_with(server.server_port, copy, "demo-province-62", tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == (0 if where == "refusal" else 1), output
    assert "Traceback" not in output
    assert not any(ch in output for ch in "\x1b\x07\x9b\u202e\r"), output
    assert len(output) < 700, output
    assert "\\x1b]0;owned\\x07" in output, output


GOOD_ENTRY = {"id": "1", "change": "CREATED", "record": {"name": "Warung"}}


@pytest.mark.parametrize(
    ("page", "why"),
    [
        ({"entries": [GOOD_ENTRY], "hasMore": False}, "endCursor is not a string"),
        ({"entries": [{**GOOD_ENTRY, "id": {"$": 1}}], "endCursor": "c", "hasMore": False},
         "entry 0's id is not a string"),
        ({"entries": [GOOD_ENTRY, {**GOOD_ENTRY, "change": "EXPLODED"}], "endCursor": "c",
          "hasMore": False}, "entry 1's change is not one of"),
        ({"entries": [{**GOOD_ENTRY, "change": ["REMOVED"]}], "endCursor": "c", "hasMore": False},
         "entry 0's change is not one of"),
        ({"entries": [{**GOOD_ENTRY, "record": "x"}], "endCursor": "c", "hasMore": False},
         "entry 0's record is not an object"),
        ({"entries": [7], "endCursor": "c", "hasMore": False}, "entry 0 is not an object"),
        ({"entries": {"1": GOOD_ENTRY}, "endCursor": "c", "hasMore": False},
         "entries is not a list"),
        ({"entries": [GOOD_ENTRY], "endCursor": "c", "hasMore": "no"},
         "hasMore is not true or false"),
        ("a page", "not an object"),
        ({"entries": [], "endCursor": "same", "hasMore": True}, "with no entries, more to come"),
    ],
)  # fmt: skip
def test_a_malformed_or_stalled_page_stops_the_sync_in_one_line(
    tmp_path: Path, page: object, why: str
) -> None:
    """A page missing its endCursor, or an entry whose id was an object, ended in a Python
    traceback (KeyError, sqlite3's unsupported type); a server answering the same empty page
    with `hasMore` true kept sync asking for ever. The page's shape is checked before anything
    of it is applied, and a page that leaves the cursor where it was with more to come stops
    the sync."""

    def answer(self: _Handler) -> tuple[int, dict[str, str], bytes]:
        if self.path == "/oauth/token":
            return 200, {"Content-Type": "application/json"}, TOKEN
        return 200, {}, json.dumps({"data": {"msmeChanges": page}}).encode()

    copy = tmp_path / "copy.sqlite"
    for server, _ in _serve(answer):
        result = _sync_with(server.server_port, copy, "demo-province-62", tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert result.stderr.startswith("sinergi sync: msmeChanges: "), output
    assert why in result.stderr, output
    assert result.stderr.count("\n") == 1, output
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT count(*) FROM records").fetchone() == (0,)


def test_data_that_is_no_object_stops_the_sync_in_one_line(tmp_path: Path) -> None:
    """`data` that is not an object ended in AttributeError; with no page (nor error) in it
    the sync said only `None`."""

    def answer(self: _Handler) -> tuple[int, dict[str, str], bytes]:
        if self.path == "/oauth/token":
            return 200, {"Content-Type": "application/json"}, TOKEN
        return 200, {}, json.dumps({"data": ["msmeChanges"]}).encode()

    copy = tmp_path / "copy.sqlite"
    for server, _ in _serve(answer):
        result = _sync_with(server.server_port, copy, "demo-province-62", tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == (
        "sinergi sync: msmeChanges: the server answered neither a page nor an error: is --url a"
        " Sinergi server?\n"
    )


def _paging(pages: list[list[dict[str, object]]] | None) -> object:
    """A server answering `pages` in turn (the last with `hasMore` false), each with a cursor
    of its own; without pages, empty ones with more to come, for ever."""
    asked: list[int] = []

    def answer(self: _Handler) -> tuple[int, dict[str, str], bytes]:
        if self.path == "/oauth/token":
            return 200, {"Content-Type": "application/json"}, TOKEN
        asked.append(1)
        entries = [] if pages is None else pages[len(asked) - 1]
        has_more = pages is None or len(asked) < len(pages)
        page = {"entries": entries, "endCursor": f"cursor-{len(asked)}", "hasMore": has_more}
        return 200, {}, json.dumps({"data": {"msmeChanges": page}}).encode()

    return answer


def test_empty_pages_with_new_cursors_without_end_stop_the_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server answering empty pages with `hasMore` true and a new cursor each time kept sync
    asking for ever (only the same cursor again was caught). A run of EMPTY_PAGES of them
    (shortened here to 5) stops it, the cursors applied so far kept."""
    monkeypatch.setattr(sync, "EMPTY_PAGES", 5)
    copy = tmp_path / "copy.sqlite"
    for server, seen in _serve(_paging(None)):
        status = main(_sync_args(copy, f"http://127.0.0.1:{server.server_port}", tmp_path))
        assert [path for path, _ in seen].count("/graphql") == 5
    assert status == 1
    assert capsys.readouterr().err == (
        "sinergi sync: msmeChanges: the server answered 5 pages in a row with no entries and"
        " more to come: stopped (what was applied is kept: sync again to go on)\n"
    )
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT cursor FROM cursors").fetchall() == [("cursor-5",)]


def test_runs_of_empty_pages_shorter_than_the_bound_are_read_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed answers an empty page with more to come whenever the stretch of log a page
    looks at held nothing for the client: runs of them, each shorter than EMPTY_PAGES, are a
    feed like any other, read to its end."""
    monkeypatch.setattr(sync, "EMPTY_PAGES", 3)
    entry = {"change": "CREATED", "record": {"name": "Warung"}}
    pages: list[list[dict[str, object]]] = [
        [], [], [{"id": "1", **entry}], [], [], [{"id": "2", **entry}], [], [],
    ]  # fmt: skip
    copy = sync.LocalCopy(tmp_path / "copy.sqlite")
    for server, _ in _serve(_paging(pages)):
        post = sync.http_post(f"http://127.0.0.1:{server.server_port}", "c", "s", 100_000)
        synced = sync.sync(post, copy, ["msme"])
    assert synced["msme"].entries == 2
    assert set(copy.records("msme")) == {"1", "2"}
    assert copy.cursor("msme") == "cursor-8"


def _limited(refusals: int, retry_after: dict[str, str], extensions: dict[str, object]) -> object:
    """A server answering its first page, then 429 `refusals` times (with `retry_after` as
    headers and `extensions` in the error), then the last page."""
    asked: list[int] = []

    def answer(self: _Handler) -> tuple[int, dict[str, str], bytes]:
        if self.path == "/oauth/token":
            return 200, {"Content-Type": "application/json"}, TOKEN
        asked.append(1)
        if 1 < len(asked) <= 1 + refusals:
            refusal = {
                "message": "rate limit",
                "extensions": {"code": "RATE_LIMITED", **extensions},
            }
            return 429, retry_after, json.dumps({"errors": [refusal]}).encode()
        entries = [{**GOOD_ENTRY, "id": str(len(asked))}]
        page = {"entries": entries, "endCursor": f"cursor-{len(asked)}", "hasMore": len(asked) == 1}
        return 200, {}, json.dumps({"data": {"msmeChanges": page}}).encode()

    return answer


@pytest.mark.parametrize(
    ("headers", "extensions", "waited"),
    [
        ({"Retry-After": "7"}, {}, 7),
        ({}, {"retryAfter": 9}, 9),
        ({"Retry-After": "3600"}, {"retryAfter": 3600}, sync.RATE_LIMIT_WAIT),
    ],
)
def test_a_rate_limited_page_is_asked_again_after_the_wait(
    tmp_path: Path, headers: dict[str, str], extensions: dict[str, object], waited: int
) -> None:
    """A 429 stopped the sync (exit 1, the raw body): a catch-up of thousands of pages passes
    the server's requests-per-minute limit. It waits what the server says (Retry-After, or the
    error's retryAfter), at most RATE_LIMIT_WAIT, and asks for the same page again."""
    slept: list[float] = []
    copy = sync.LocalCopy(tmp_path / "copy.sqlite")
    for server, _ in _serve(_limited(2, headers, extensions)):
        url = f"http://127.0.0.1:{server.server_port}"
        post = sync.http_post(url, "c", "s", 100_000, sleep=slept.append)
        synced = sync.sync(post, copy, ["msme"])
    assert slept == [waited, waited]
    assert synced["msme"].entries == 2
    assert copy.cursor("msme") == "cursor-4"


def test_a_page_still_rate_limited_stops_the_sync_its_progress_kept(tmp_path: Path) -> None:
    """Refused RATE_LIMIT_TRIES times more, the sync stops in one line saying when to run it
    again; the pages applied before are kept."""
    slept: list[float] = []
    copy = sync.LocalCopy(tmp_path / "copy.sqlite")
    for server, _ in _serve(_limited(100, {"Retry-After": "42"}, {})):
        url = f"http://127.0.0.1:{server.server_port}"
        post = sync.http_post(url, "c", "s", 100_000, sleep=slept.append)
        with pytest.raises(sync.SyncError) as stopped:
            sync.sync(post, copy, ["msme"])
    assert str(stopped.value) == f"rate limited by {url}: run again in 42 s"
    assert slept == [42] * sync.RATE_LIMIT_TRIES
    assert copy.cursor("msme") == "cursor-1"


def test_a_cursor_refused_twice_in_one_run_stops_the_sync(tmp_path: Path) -> None:
    """A feed refusing the cursor it had just handed out (two servers behind one --url, say)
    had the copy emptied and page 1 fetched again for ever: the copy starts again once a run,
    and a second refusal stops the sync, keeping what the run copied and its cursor (emptied,
    they were lost for a refusal the next run may not meet: `feed compact` run meanwhile)."""
    asked: list[str | None] = []

    def post(document: str, variables: dict[str, object]) -> dict[str, object]:
        asked.append(after := variables["after"])  # type: ignore[arg-type]
        if after is not None:
            refusal = {
                "message": "no such cursor",
                "extensions": {"code": "BAD_USER_INPUT", "field": "after"},
            }
            return {"errors": [refusal]}
        page = {"entries": [GOOD_ENTRY], "endCursor": f"c{len(asked)}", "hasMore": len(asked) < 9}
        return {"data": {"msmeChanges": page}}

    copy = sync.LocalCopy(tmp_path / "copy.sqlite")
    with sqlite3.connect(tmp_path / "copy.sqlite") as db:
        db.execute("INSERT INTO cursors VALUES ('msme', 'kept-before')")
    with pytest.raises(sync.SyncError) as stopped:
        sync.sync(post, copy, ["msme"])
    assert str(stopped.value) == (
        "msmeChanges: the feed refused a cursor it handed out in this run ('no such cursor'):"
        " is --url several servers, or did `sinergi feed compact` run meanwhile? The copy"
        " holds what this run fetched of msme since it started it over; run again once --url"
        " is one server, or the compaction has finished"
    )
    assert asked == ["kept-before", None, "c2"]
    assert len(copy.records("msme")) == 1
    assert copy.cursor("msme") == "c2"


def test_a_feed_the_client_lacks_the_scope_for_is_named_with_what_to_leave_out(
    tmp_path: Path,
) -> None:
    """`--client-id demo-ministry` with the default kinds (or a province's client with
    `--kinds guarantee`) exited 1 with the refusal's repr: the operator's to correct, in
    --kinds, so exit 2 naming the scope and the kind."""

    def answer(self: _Handler) -> tuple[int, dict[str, str], bytes]:
        if self.path == "/oauth/token":
            return 200, {"Content-Type": "application/json"}, TOKEN
        refusal = {
            "message": "the client lacks a scope this field requires",
            "path": ["msmeChanges"],
            "extensions": {"code": "FORBIDDEN", "requiredScopes": ["records:read"]},
        }
        return 200, {}, json.dumps({"data": None, "errors": [refusal]}).encode()

    copy = tmp_path / "copy.sqlite"
    for server, _ in _serve(answer):
        result = _sync_with(server.server_port, copy, "demo-ministry", tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == (
        "sinergi sync: client 'demo-ministry' lacks records:read for the msme feed: leave msme"
        " out of --kinds\n"
    )


def test_an_interrupted_sync_says_what_it_kept_in_one_line(tmp_path: Path) -> None:
    """Ctrl-C ended the sync without a word of what the copy kept (a KeyboardInterrupt
    traceback where the command's own signal handler was not installed): it ends with the
    shell's 130 and one line, the pages applied before it kept."""
    released = threading.Event()

    def answer(self: _Handler) -> tuple[int, dict[str, str], bytes]:
        if self.path == "/oauth/token":
            return 200, {"Content-Type": "application/json"}, TOKEN
        if json.loads(self.body)["variables"]["after"] is not None:
            released.wait(30)  # the second page never comes
        page = {"entries": [GOOD_ENTRY], "endCursor": "cursor-1", "hasMore": True}
        return 200, {}, json.dumps({"data": {"msmeChanges": page}}).encode()

    copy = tmp_path / "copy.sqlite"
    for server, seen in _serve(answer):
        running = subprocess.Popen(
            [sys.executable, "-m", "sinergi.cli",
             *_sync_args(copy, f"http://127.0.0.1:{server.server_port}", tmp_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            began = time.monotonic()
            while [path for path, _ in seen].count("/graphql") < 2:
                assert time.monotonic() - began < 30, "the second page was never asked"
                time.sleep(0.05)
            running.send_signal(signal.SIGINT)
            stdout, stderr = running.communicate(timeout=30)
        finally:
            released.set()
            running.kill()
    assert running.returncode == 130, stdout + stderr
    assert stderr == "sinergi sync: interrupted; the copy holds every page applied so far\n"
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT cursor FROM cursors").fetchall() == [("cursor-1",)]
