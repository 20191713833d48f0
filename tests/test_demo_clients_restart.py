"""A `serve --dev` start on a database whose demo clients were rotated or revoked says so, naming
each and the command that restores them (`sinergi clients reset-demo`), which gives GraphiQL and
`sinergi token` the demo secret back; and it leaves demo-jamkrida-62's equity as an operator
set it (it set Rp 50 miliar at every start)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sinergi.demo_mode import prepare_demo
from tests.support.cli import sinergi
from tests.support.databases import run


def _serve_dev_start(url: str) -> None:
    """What `serve --dev` does to a DATABASE_URL database before it serves."""
    asyncio.run(prepare_demo(url, load_population=False, wait_seconds=600))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "sinergi.demo" and record.levelno == logging.WARNING
    ]


def test_a_dev_start_names_rotated_and_revoked_demo_clients_and_reset_demo_restores_them(
    module_reference_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = module_reference_url
    _serve_dev_start(url)
    assert sinergi(url, "clients", "reset-demo")[0] == 0  # whatever another test left
    assert sinergi(url, "clients", "rotate", "demo-province-62")[0] == 0
    assert sinergi(url, "clients", "revoke", "demo-walidata")[0] == 0
    assert sinergi(url, "token", "demo-province-62", "--dev")[0] == 2

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sinergi.demo"):
        _serve_dev_start(url)
    named = [line for line in _warnings(caplog) if "reset-demo" in line]
    assert len(named) == 2, _warnings(caplog)
    province = next(line for line in named if "demo-province-62" in line)
    assert "published demo secret" in province
    assert "GraphiQL answers 403" in province
    assert "`sinergi clients reset-demo`" in province
    assert any("demo-walidata is revoked" in line for line in named)

    code, out, err = sinergi(url, "clients", "reset-demo", "--json")
    assert code == 0, err
    assert out.strip() == '{"restored": ["demo-province-62", "demo-walidata"]}'
    assert sinergi(url, "token", "demo-province-62", "--dev")[0] == 0
    assert sinergi(url, "token", "demo-walidata", "--dev")[0] == 0

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sinergi.demo"):
        _serve_dev_start(url)
    assert [line for line in _warnings(caplog) if "reset-demo" in line] == []


def test_reset_demo_is_refused_beside_real_organisations(module_reference_url: str) -> None:
    url = module_reference_url
    _serve_dev_start(url)
    assert sinergi(url, "clients", "revoke", "demo-ministry")[0] == 0
    created = sinergi(
        url, "clients", "create", "--name", "Dinas Nyata 0406", "--org-kind", "province",
        "--jurisdiction", "61", "--purpose", "real work", "--json",
    )  # fmt: skip
    assert created[0] == 0, created[2]
    try:
        code, _, err = sinergi(url, "clients", "reset-demo")
        assert code == 2
        assert "refusing" in err
        assert "real organisations" in err
        rows = run(url, "SELECT revoked_at FROM oauth_clients WHERE client_id = 'demo-ministry'")
        assert rows[0]["revoked_at"] is not None
    finally:
        run(url, "DELETE FROM oauth_clients WHERE name = 'Dinas Nyata 0406'")
        assert sinergi(url, "clients", "reset-demo")[0] == 0


def test_a_dev_start_keeps_the_equity_an_operator_set(module_reference_url: str) -> None:
    url = module_reference_url
    _serve_dev_start(url)
    assert sinergi(url, "guarantors", "set-equity", "demo-jamkrida-62", "7000000000")[0] == 0
    _serve_dev_start(url)
    rows = run(url, "SELECT equity FROM guarantors WHERE client_id = 'demo-jamkrida-62'")
    assert int(rows[0]["equity"]) == 7_000_000_000
