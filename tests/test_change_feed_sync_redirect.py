"""`sinergi sync` follows no redirect: the https check covers `--url` only, so a server (or
whoever answers for it) that sent the client on to another origin would have the bearer token
re-sent there, and that origin's page applied to the copy. Any 3xx, from the token endpoint or
from `/graphql`, stops the sync (exit 1) naming the status and where it pointed, the other
origin never asked and the copy untouched."""

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
    assert str(status) in result.stdout
    assert location in result.stdout
    assert seen_elsewhere == []
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT count(*) FROM records").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM cursors").fetchone() == (0,)
