"""`serve` sends each signed checkpoint to syslog as it writes it to the file, so a copy is kept
where the host's root cannot cut it short (the attack itself: tests/test_audit_tampering.py).
A collector that cannot be reached stops nothing: the checkpoints still go to the file, and the
log says so once, and again once they reach it."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import socket
import ssl
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from db.engine import create_engine
from db.seals import read_checkpoint
from sinergi import checkpoint_syslog
from sinergi.audit_sealer import AuditSealer
from sinergi.checkpoint_syslog import SyslogAddress
from sinergi.settings import Settings, SettingsError
from tests.support.audit_trail import written
from tests.support.certificates import authority
from tests.support.databases import as_service
from tests.support.served import served_process
from tests.support.syslog import collector, frames, stream_collector

KEY = secrets.token_bytes(32)
FAILURES = "sinergi_audit_syslog_failures_total"
DATAGRAM = re.compile(rb"<85>sinergi-audit\[(\d+)\]: (\{.*\})\n")


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        ("udp://collector.example:514", SyslogAddress("udp", "collector.example", 514)),
        ("udp://[::1]:5514", SyslogAddress("udp", "::1", 5514)),
        ("tcp://collector.example:514", SyslogAddress("tcp", "collector.example", 514)),
        ("tls://collector.example:6514", SyslogAddress("tls", "collector.example", 6514)),
        ("/dev/log", SyslogAddress("unix", path="/dev/log")),
        ("", None),
    ],
)
def test_where_checkpoints_go_is_read_from_the_environment(
    raw: str, address: SyslogAddress | None
) -> None:
    assert Settings.from_env({"SINERGI_AUDIT_SYSLOG": raw}).audit_syslog == address


@pytest.mark.parametrize(
    "raw",
    [
        "relp://collector:514",
        "udp://collector",
        "tls://collector:99999",
        "tcp://collector:514/path",
        "collector:514",
    ],
)
def test_an_address_of_another_form_is_refused_naming_the_setting(raw: str) -> None:
    expected = "SINERGI_AUDIT_SYSLOG must be udp://, tcp:// or tls://HOST:PORT, or a socket's"
    with pytest.raises(SettingsError, match=re.escape(expected)):
        Settings.from_env({"SINERGI_AUDIT_SYSLOG": raw})


def test_a_host_name_the_resolver_would_refuse_is_refused_at_start() -> None:
    raw = f"tls://{'a' * 64}.example:6514"
    expected = "SINERGI_AUDIT_SYSLOG names a host that cannot be looked up"
    with pytest.raises(SettingsError, match=re.escape(expected)):
        Settings.from_env({"SINERGI_AUDIT_SYSLOG": raw})


def test_serve_sends_the_checkpoint_it_writes(fresh_url: str, tmp_path: Path) -> None:
    asyncio.run(written(fresh_url, KEY, 3))
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    with collector() as syslog:
        settings = {
            "SINERGI_AUDIT_KEY": KEY.hex(),
            "SINERGI_AUDIT_CHECKPOINTS": str(checkpoints),
            "SINERGI_AUDIT_SYSLOG": f"udp://127.0.0.1:{syslog.address.port}",
        }
        with served_process(as_service(fresh_url), "production", settings) as (base, server):
            (datagram,) = syslog.received(1)  # sealed and published at start
            scraped = _metrics(base)

    sent = DATAGRAM.fullmatch(datagram)
    assert sent is not None, datagram
    assert int(sent[1]) == server.pid
    line = sent[2].decode()
    assert line == checkpoints.read_text().splitlines()[0]
    assert read_checkpoint(line, KEY).seq == 3
    # What an operator alerts on: sealing that stops, and checkpoints that do not leave.
    assert scraped["sinergi_audit_sealed_entry"] == 3
    assert time.time() - 60 < scraped["sinergi_audit_sealed_timestamp_seconds"] <= time.time()
    assert scraped["sinergi_audit_syslog_failures_total"] == 0


def test_serve_counts_the_checkpoints_it_could_not_send(fresh_url: str, tmp_path: Path) -> None:
    asyncio.run(written(fresh_url, KEY, 1))
    settings = {
        "SINERGI_AUDIT_KEY": KEY.hex(),
        "SINERGI_AUDIT_CHECKPOINTS": str(tmp_path / "audit-checkpoints.jsonl"),
        "SINERGI_AUDIT_SYSLOG": str(tmp_path / "no-daemon-here"),
    }
    with served_process(as_service(fresh_url), "production", settings) as (base, _):
        deadline = time.monotonic() + 30
        while not (scraped := _metrics(base)).get("sinergi_audit_syslog_failures_total"):
            assert time.monotonic() < deadline, "the start's checkpoint was not sent"
            time.sleep(0.1)
        time.sleep(2.5)  # a sealing round more, which has nothing new to send
        scraped = _metrics(base)
    assert scraped["sinergi_audit_syslog_failures_total"] == 1
    assert scraped["sinergi_audit_sealed_entry"] == 1


def _metrics(base: str) -> dict[str, float]:
    """The unlabelled samples of the server's /metrics."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


async def _publish(sealer: AuditSealer, url: str) -> None:
    await written(url, KEY, 1)
    await sealer.publish()
    await sealer.sent()


def test_an_unreachable_collector_stops_nothing_and_is_reported_once(
    fresh_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    socket_path = tmp_path / "log"  # no daemon there yet
    checkpoints = tmp_path / "audit-checkpoints.jsonl"

    async def run() -> list[bytes]:
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000)
        sealer = AuditSealer(
            engine, KEY, checkpoints, 1, SyslogAddress("unix", path=str(socket_path))
        )
        try:
            for _ in range(3):
                await _publish(sealer, fresh_url)
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as daemon:
                daemon.bind(str(socket_path))
                daemon.settimeout(10)
                await _publish(sealer, fresh_url)
                await _publish(sealer, fresh_url)
                return [daemon.recv(65536), daemon.recv(65536)]
        finally:
            await engine.dispose()

    with caplog.at_level(logging.INFO, logger="sinergi.audit"):
        received = asyncio.run(run())

    written = checkpoints.read_text().splitlines()
    assert [read_checkpoint(line, KEY).seq for line in written] == [1, 2, 3, 4, 5]
    sent = [DATAGRAM.fullmatch(datagram) for datagram in received]
    assert [match[2].decode() if match else None for match in sent] == written[3:]
    messages = [record.getMessage() for record in caplog.records]
    failing = [m for m in messages if m.startswith("could not send audit checkpoints to syslog")]
    assert len(failing) == 1
    assert messages.count("audit checkpoints reach syslog again") == 1


def test_a_tls_collector_is_checked_against_the_authorities_named(tmp_path: Path) -> None:
    bundle = authority("Dinas Kominfo CA").write(tmp_path / "ca.pem")
    env = {"SINERGI_AUDIT_SYSLOG": "tls://siem.example:6514"}
    found = Settings.from_env({**env, "SINERGI_AUDIT_SYSLOG_CA": str(bundle)}).audit_syslog
    assert found == SyslogAddress("tls", "siem.example", 6514, ca_file=str(bundle))
    assert Settings.from_env(env).audit_syslog == SyslogAddress("tls", "siem.example", 6514)


@pytest.mark.parametrize(
    ("syslog", "ca", "expected"),
    [
        ("", "ca.pem", "SINERGI_AUDIT_SYSLOG_CA is set, but SINERGI_AUDIT_SYSLOG is not"),
        ("udp://siem:514", "ca.pem", "SINERGI_AUDIT_SYSLOG_CA names authorities for a tls://"),
        ("tls://siem:6514", "missing.pem", "SINERGI_AUDIT_SYSLOG_CA cannot be read as PEM"),
        ("tls://siem:6514", "not-pem.txt", "SINERGI_AUDIT_SYSLOG_CA cannot be read as PEM"),
    ],
)
def test_authorities_that_cannot_apply_are_refused_at_start(
    tmp_path: Path, syslog: str, ca: str, expected: str
) -> None:
    authority("Dinas Kominfo CA").write(tmp_path / "ca.pem")
    (tmp_path / "not-pem.txt").write_text("a certificate, surely\n")
    env = {"SINERGI_AUDIT_SYSLOG": syslog, "SINERGI_AUDIT_SYSLOG_CA": str(tmp_path / ca)}
    with pytest.raises(SettingsError, match=re.escape(expected)):
        Settings.from_env(env)


def _sender_files(tmp_path: Path) -> dict[str, Path]:
    """Sinergi's certificate and key from the agency's authority, and another sender's key."""
    ca = authority("Dinas Kominfo CA")
    cert, key = ca.issue("sinergi-api", tmp_path, ExtendedKeyUsageOID.CLIENT_AUTH)
    _, other_key = ca.issue("another-sender", tmp_path, ExtendedKeyUsageOID.CLIENT_AUTH)
    garbage = tmp_path / "not-pem.txt"
    garbage.write_text("a certificate, surely\n")
    return {"cert": cert, "key": key, "other key": other_key, "garbage": garbage}


def test_the_certificate_to_present_is_read_from_the_environment(tmp_path: Path) -> None:
    files = _sender_files(tmp_path)
    env = {
        "SINERGI_AUDIT_SYSLOG": "tls://siem.example:6514",
        "SINERGI_AUDIT_SYSLOG_CERT": str(files["cert"]),
        "SINERGI_AUDIT_SYSLOG_KEY": str(files["key"]),
    }
    expected = SyslogAddress(
        "tls", "siem.example", 6514, cert_file=str(files["cert"]), key_file=str(files["key"])
    )
    assert Settings.from_env(env).audit_syslog == expected


@pytest.mark.parametrize(
    ("syslog", "cert", "key", "expected"),
    [
        ("", "cert", "key", "SINERGI_AUDIT_SYSLOG_CERT is set, but SINERGI_AUDIT_SYSLOG is not"),
        ("tcp://siem:514", "cert", "key", "SINERGI_AUDIT_SYSLOG_CERT is for a tls:// collector"),
        (
            "tls://siem:6514",
            "",
            "key",
            "SINERGI_AUDIT_SYSLOG_KEY is set, but SINERGI_AUDIT_SYSLOG_CERT",
        ),
        ("tls://siem:6514", "cert", "", "SINERGI_AUDIT_SYSLOG_CERT cannot be read, with its key"),
        ("tls://siem:6514", "garbage", "key", "SINERGI_AUDIT_SYSLOG_CERT cannot be read"),
        ("tls://siem:6514", "cert", "other key", "SINERGI_AUDIT_SYSLOG_CERT cannot be read"),
    ],
)
def test_a_certificate_that_cannot_be_presented_is_refused_at_start(
    tmp_path: Path, syslog: str, cert: str, key: str, expected: str
) -> None:
    files = {"": "", **{name: str(path) for name, path in _sender_files(tmp_path).items()}}
    env = {
        "SINERGI_AUDIT_SYSLOG": syslog,
        "SINERGI_AUDIT_SYSLOG_CERT": files[cert],
        "SINERGI_AUDIT_SYSLOG_KEY": files[key],
    }
    with pytest.raises(SettingsError, match=re.escape(expected)):
        Settings.from_env(env)


@pytest.mark.parametrize("presents", [True, False])
def test_a_collector_that_authenticates_its_senders_takes_sinergis_certificate(
    fresh_url: str, tmp_path: Path, presents: bool
) -> None:
    """A collector set to take messages only from senders with a certificate of the agency's
    authority (rsyslog: `StreamDriver.AuthMode="x509/certvalid"`) receives the checkpoint
    from a Sinergi presenting one, and refuses one presenting none."""
    collectors, senders = authority("SIEM CA"), authority("Dinas Kominfo CA")
    cert, key = senders.issue("sinergi-api", tmp_path, ExtendedKeyUsageOID.CLIENT_AUTH)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    trusted = str(collectors.write(tmp_path / "siem-ca.pem"))

    async def run(port: int) -> float:
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000)
        address = SyslogAddress("tls", "localhost", port, ca_file=trusted)
        if presents:
            address = replace(address, cert_file=str(cert), key_file=str(key))
        failures = REGISTRY.get_sample_value(FAILURES) or 0.0
        try:
            await _publish(AuditSealer(engine, KEY, checkpoints, 1, address), fresh_url)
        finally:
            await engine.dispose()
        return (REGISTRY.get_sample_value(FAILURES) or 0.0) - failures  # no other app sends

    context = collectors.server_context("localhost", tmp_path, senders=senders)
    with stream_collector(context) as syslog:
        failed = asyncio.run(run(syslog.port))
        received = syslog.received(10)

    if presents:
        assert isinstance(received, bytes), received
        (message,) = frames(received)
        sent = DATAGRAM.fullmatch(message + b"\n")
        assert sent is not None, message
        assert sent[2].decode() == checkpoints.read_text().splitlines()[0]
        assert failed == 0  # a collector that took the frame is not counted as a failure
    else:
        assert isinstance(received, ssl.SSLError), received


@pytest.mark.parametrize("answers", [True, False], ids=["answers-close", "just-closes"])
def test_serve_sends_the_checkpoint_over_tls_to_a_collector_it_trusts(
    fresh_url: str, tmp_path: Path, answers: bool
) -> None:
    """The collector reads to Sinergi's close_notify, so a frame cut short is never taken for
    a whole one; one that closes without answering it counts as delivered all the same."""
    asyncio.run(written(fresh_url, KEY, 2))
    ca = authority("Dinas Kominfo CA")
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    with stream_collector(ca.server_context("localhost", tmp_path), answers) as syslog:
        settings = {
            "SINERGI_AUDIT_KEY": KEY.hex(),
            "SINERGI_AUDIT_CHECKPOINTS": str(checkpoints),
            "SINERGI_AUDIT_SYSLOG": f"tls://localhost:{syslog.port}",
            "SINERGI_AUDIT_SYSLOG_CA": str(ca.write(tmp_path / "ca.pem")),
        }
        with served_process(as_service(fresh_url), "production", settings) as (base, server):
            received = syslog.received()  # sealed and published at start
            scraped = _metrics(base)

    assert isinstance(received, bytes), received
    (message,) = frames(received)
    sent = DATAGRAM.fullmatch(message + b"\n")
    assert sent is not None, message
    assert int(sent[1]) == server.pid
    line = sent[2].decode()
    assert line == checkpoints.read_text().splitlines()[0]
    assert read_checkpoint(line, KEY).seq == 2
    assert scraped["sinergi_audit_syslog_failures_total"] == 0


def test_checkpoints_go_over_tcp_one_frame_each(fresh_url: str, tmp_path: Path) -> None:
    checkpoints = tmp_path / "audit-checkpoints.jsonl"

    async def run(port: int) -> None:
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000)
        address = SyslogAddress("tcp", "127.0.0.1", port)
        try:
            sealer = AuditSealer(engine, KEY, checkpoints, 1, address)
            for _ in range(2):
                await _publish(sealer, fresh_url)
        finally:
            await engine.dispose()

    with stream_collector() as syslog:
        asyncio.run(run(syslog.port))
        received = [syslog.received(10), syslog.received(10)]

    written = checkpoints.read_text().splitlines()
    assert all(isinstance(stream, bytes) for stream in received), received
    messages = [message for stream in received for message in frames(stream)]  # type: ignore[arg-type]
    sent = [DATAGRAM.fullmatch(message + b"\n") for message in messages]
    assert [match[2].decode() if match else None for match in sent] == written
    assert [read_checkpoint(line, KEY).seq for line in written] == [1, 2]


@pytest.mark.parametrize("impostor", ["another authority", "the authority, another name"])
def test_a_host_posing_as_the_tls_collector_receives_nothing(
    fresh_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, impostor: str
) -> None:
    """The attack: a host on the network takes the collector's address (ARP or DNS spoofing)
    to learn how far the trail was sealed, or to swallow the checkpoints so that a cut trail
    goes unnoticed. Its certificate is either from an authority the operator did not name, or
    from the right authority but for another host; either way nothing reaches it, and the
    failure is counted and logged."""
    trusted = authority("Dinas Kominfo CA")
    bundle = trusted.write(tmp_path / "ca.pem")
    if impostor == "another authority":
        presented = authority("Dinas Kominfo CA").server_context("localhost", tmp_path)
    else:
        presented = trusted.server_context("kominfo-laptop.example", tmp_path)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"

    async def run(port: int) -> float:
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000)
        address = SyslogAddress("tls", "localhost", port, ca_file=str(bundle))
        failures = REGISTRY.get_sample_value(FAILURES) or 0.0
        try:
            sealer = AuditSealer(engine, KEY, checkpoints, 1, address)
            await _publish(sealer, fresh_url)
            await _publish(sealer, fresh_url)
        finally:
            await engine.dispose()
        return (REGISTRY.get_sample_value(FAILURES) or 0.0) - failures  # no other app sends

    with stream_collector(presented) as syslog, caplog.at_level(logging.INFO, "sinergi.audit"):
        failed = asyncio.run(run(syslog.port))
        attempts = [syslog.received(10), syslog.received(10)]

    assert all(isinstance(attempt, ssl.SSLError) for attempt in attempts), attempts
    assert failed == 2
    messages = [record.getMessage() for record in caplog.records]
    refused = [m for m in messages if m.startswith("could not send audit checkpoints to syslog")]
    assert len(refused) == 1, messages
    assert "CERTIFICATE_VERIFY_FAILED" in refused[0]
    assert [read_checkpoint(line, KEY).seq for line in checkpoints.read_text().splitlines()] == [
        1,
        2,
    ]


def test_a_collector_that_never_answers_does_not_slow_sealing(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: a host on the path swallows the packets to the collector, so each send
    waits out its timeout. Were sealing to wait with it, the time between seals (the window
    in which unsealed entries can be removed unnoticed) would stretch to the timeout. Sealing
    keeps its pace; the newest checkpoint goes once the stuck send gives up."""
    monkeypatch.setattr(checkpoint_syslog, "TIMEOUT_SECONDS", 2)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"

    async def run(port: int) -> list[float]:
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000)
        address = SyslogAddress("tls", "127.0.0.1", port)  # accepted, never answered
        sealer = AuditSealer(engine, KEY, checkpoints, 1, address)
        took = []
        try:
            for _ in range(4):
                await written(fresh_url, KEY, 1)
                started = time.monotonic()
                await sealer.publish()
                took.append(time.monotonic() - started)
            await sealer.sent()
        finally:
            await engine.dispose()
        return took

    with socket.create_server(("127.0.0.1", 0)) as silent:
        took = asyncio.run(run(silent.getsockname()[1]))

    assert max(took) < 1, took
    assert [read_checkpoint(line, KEY).seq for line in checkpoints.read_text().splitlines()] == [
        1,
        2,
        3,
        4,
    ]
