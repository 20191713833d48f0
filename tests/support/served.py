"""`uvicorn` serving the app on a free port, for tests that need a live server (a WebSocket, or
a client that is not Python)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from sinergi.settings import Settings

DEMO_SERVED = {"SINERGI_DEV": "true"}
"""What a server tests start in a process of their own needs to serve the demo clients' tokens
the tests mint in theirs (tests/conftest.py, `_demo_secret_accepted`): without `--dev` a server
refuses them, as a `serve --dev` on its database could have issued them."""


def free_port() -> int:
    """A loopback port free when asked: bound, its number read, and let go again, for a server
    (or a connection that is to be refused) to use next."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def uvicorn_command(port: int, env: Mapping[str, str]) -> list[str]:
    """uvicorn serving the app on `port` as `sinergi serve` has it serve: on its HTTP protocol,
    with WebSocket frames and request heads over the bounds its settings in `env` give refused
    unread (QueryLimits' `max_frame_chars`, `max_header_bytes`), and requests in flight at a
    SIGTERM given its shutdown grace."""
    settings = Settings.from_env(env)
    command = [sys.executable, "-m", "uvicorn", "--factory", "sinergi.app:app_from_env"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    command += ["--http", "sinergi.http_protocol:GatheringHttpToolsProtocol"]
    command += ["--h11-max-incomplete-event-size", str(settings.max_header_bytes)]
    command += ["--timeout-graceful-shutdown", str(settings.shutdown_grace_seconds)]
    return [*command, "--ws-max-size", str(settings.query_limits.max_frame_chars)]


def wait_until_answering(
    server: subprocess.Popen[Any],
    url: str,
    *,
    seconds: float = 120,
    log: Path | None = None,
    started: Callable[[], bool] = lambda: True,
) -> httpx.Response:
    """`url`'s first 200 answer from `server` (a `sinergi serve` or uvicorn starting), asked
    again until then, once `started` says so too; a server that exits, or does not answer within
    `seconds`, fails the test with what it wrote (to `log`, or to its pipe once it exited)."""
    deadline = time.monotonic() + seconds
    while True:
        exited = server.poll()
        assert exited is None, (
            f"the server exited ({exited}) before {url} answered\n{_said(server, log)}"
        )
        if started():
            with contextlib.suppress(httpx.TransportError):
                answer = httpx.get(url, timeout=2)
                if answer.status_code == 200:
                    return answer
        assert time.monotonic() < deadline, (
            f"{url} did not answer in {seconds} s\n{_said(server, log)}"
        )
        time.sleep(0.2)


def _said(server: subprocess.Popen[Any], log: Path | None) -> str:
    """What the server wrote, if it can be read: its log, or its output's pipe once it exited
    (read while it runs, the pipe would wait for its end)."""
    if log is not None:
        return log.read_text()
    if server.stdout is None or server.poll() is None:
        return ""
    said = server.stdout.read()
    return said.decode(errors="replace") if isinstance(said, bytes) else str(said)


@contextlib.contextmanager
def served(url: str, mode: str) -> Iterator[str]:
    """uvicorn serving the app over `url`'s database; yields its base URL."""
    with served_process(url, mode) as (base, _):
        yield base


@contextlib.contextmanager
def served_process(
    url: str, mode: str, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As `served`, with the server's process too (a test that stops it with SIGSTOP), and
    `settings` in its environment beside the ones tests need."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SINERGI_ENV": mode,
        "SINERGI_HOME": tempfile.mkdtemp(prefix="sinergi-served-"),
        # The key the tests' other apps seal with (tests/conftest.py): an app never makes one.
        "SINERGI_AUDIT_KEY_FILE": str(Settings().audit_key_path),
        "SINERGI_LOG_LEVEL": "warning",
        # Tests may send many requests at once; on a busy CI machine opening that many
        # connections may take longer than production's timeouts, which they are not about.
        "SINERGI_DB_CONNECT_TIMEOUT": "60",
        "SINERGI_DB_POOL_TIMEOUT": "60",
        "SINERGI_STATEMENT_TIMEOUT_MS": "60000",
        "SINERGI_METRICS": "open",  # production's default is 404: tests scrape it
        **DEMO_SERVED,
        **(settings or {}),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(uvicorn_command(port, env), env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(server, f"{base}/healthz", seconds=60)
        yield base, server
    finally:
        server.terminate()
        server.wait(30)
