"""`sinergi sync` follows no redirect: the https check covers `--url` only, so a server (or
whoever answers for it) that sent the client on to another origin would have the bearer token
re-sent there, and that origin's page applied to the copy. Any 3xx, from the token endpoint or
from `/graphql`, stops the sync (exit 1) naming the status and where it pointed, the other
origin never asked and the copy untouched. Against the same stub servers: a copy answers only to
the client and server it was made for, and a server that answers no JSON ends in one line."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

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

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def _respond(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
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

    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("sinergi-demo-secret")
    secret_file.chmod(0o600)
    copy = tmp_path / "copy.sqlite"
    for server, seen in _serve(answer):
        result = subprocess.run(
            [sys.executable, "-m", "sinergi.cli", "sync", str(copy),
             "--url", f"http://127.0.0.1:{server.server_port}", "--client-id", "demo-province-62",
             "--secret-file", str(secret_file), "--kinds", "msme"],
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


def _sync_with(
    port: int, copy: Path, client_id: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("sinergi-demo-secret")
    secret_file.chmod(0o600)
    return subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "sync", str(copy),
         "--url", f"http://127.0.0.1:{port}", "--client-id", client_id,
         "--secret-file", str(secret_file), "--kinds", "msme"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


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
