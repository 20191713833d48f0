"""The README's examples, run as printed against a live `serve --dev`-like server.

Every ```sh block runs in bash from the clone's root (its `http://127.0.0.1:8000` pointed at the
test's server), and must exit 0 without an `"errors"` in what it prints, unless the line before
it says `<!-- not run by tests/test_readme.py: why -->`. Every ```graphql block must name its
client on its first line (`# as CLIENT_ID`) and answer without errors as that client; variables
it declares as required come from the answer of the block before it (an update's `id` and
`version` from the read above it). Then `sinergi demo-data` must reload cleanly over whatever the
examples recorded.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from graphql import NonNullTypeNode, OperationDefinitionNode, parse

from sinergi.app import create_app
from sinergi.demo_mode import DEMO_SECRET, load_demo_data, prepare_demo
from sinergi.settings import Environment, Settings
from tests.support.databases import as_service
from tests.support.served import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = re.compile(r"<!-- not run by tests/test_readme.py: (.+) -->")
CLIENT = re.compile(r"# as ([a-z0-9-]+)")


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int
    skipped: str | None


def blocks() -> list[Block]:
    found: list[Block] = []
    lines = README.read_text().splitlines()
    index = 0
    while index < len(lines):
        fence = re.fullmatch(r"```(\w+)", lines[index])
        if fence is None:
            index += 1
            continue
        end = lines.index("```", index + 1)
        skipped = SKIP.fullmatch(lines[index - 1]) if index else None
        found.append(
            Block(
                fence.group(1),
                "\n".join(lines[index + 1 : end]),
                index + 1,
                skipped.group(1) if skipped else None,
            )
        )
        index = end + 1
    return found


@pytest.fixture
def served(fresh_url: str) -> Iterator[str]:
    """The demo as `./dev serve` makes it (a smaller population), served on a free port."""
    asyncio.run(load_demo_data(fresh_url, msmes=300, seed=62))
    asyncio.run(prepare_demo(fresh_url, load_population=False, wait_seconds=600))
    settings = Settings(environment=Environment.DEVELOPMENT, dev=True, rate_limit=1_000_000)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, database_url=as_service(fresh_url)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _token(base: str, client_id: str) -> str:
    answer = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, DEMO_SECRET),
    )
    assert answer.status_code == 200, (client_id, answer.text)
    return str(answer.json()["access_token"])


def _find(data: Any, name: str) -> Any:
    """The first value under key `name` anywhere in an answer's data."""
    if isinstance(data, dict):
        if name in data:
            return data[name]
        values = data.values()
    elif isinstance(data, list):
        values = data
    else:
        return None
    for value in values:
        found = _find(value, name)
        if found is not None:
            return found
    return None


def _required_variables(query: str) -> list[str]:
    (operation,) = [d for d in parse(query).definitions if isinstance(d, OperationDefinitionNode)]
    return [
        definition.variable.name.value
        for definition in operation.variable_definitions or ()
        if isinstance(definition.type, NonNullTypeNode) and definition.default_value is None
    ]


def _run_shell(block: Block, base: str, url: str, home: Path) -> None:
    script = block.text.replace("http://127.0.0.1:8000", base)
    # The server's audit key, as `./dev serve` and `./dev sinergi` share one SINERGI_HOME:
    # `sinergi token` seals its tokens with it.
    key = str(Settings().audit_key_path)
    env = {**os.environ, "DATABASE_URL": url, "SINERGI_HOME": str(home)}
    env["SINERGI_AUDIT_KEY_FILE"] = key
    env.pop("SINERGI_ENV", None)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    where = f"README.md line {block.line}:\n{block.text}\n--- stdout\n{done.stdout}"
    assert done.returncode == 0, f"{where}\n--- stderr\n{done.stderr}"
    assert '"errors"' not in done.stdout, where
    if "curl" in script:
        assert done.stdout.strip(), where


def test_every_example_in_the_readme_works_as_printed(served: str, fresh_url: str) -> None:
    home = Path(tempfile.mkdtemp(prefix="sinergi-readme-"))
    previous: dict[str, Any] = {}
    ran = {"sh": 0, "graphql": 0}
    for block in blocks():
        if block.skipped is not None or block.language not in ran:
            continue
        ran[block.language] += 1
        if block.language == "sh":
            _run_shell(block, served, fresh_url, home)
            continue
        named = CLIENT.match(block.text)
        assert named, f"README.md line {block.line}: name the client first (# as CLIENT_ID)"
        variables = {name: _find(previous, name) for name in _required_variables(block.text)}
        answer = httpx.post(
            f"{served}/graphql",
            json={"query": block.text, "variables": variables},
            headers={"Authorization": f"Bearer {_token(served, named.group(1))}"},
            timeout=60,
        ).json()
        assert "errors" not in answer, f"README.md line {block.line}: {answer}"
        previous = answer["data"]
    assert ran["sh"] >= 4
    assert ran["graphql"] >= 6

    asyncio.run(load_demo_data(fresh_url, msmes=300, seed=62))  # reloads over what ran above
