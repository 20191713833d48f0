"""A measurement whose requests failed measured the failures: it gets no ratio and no verdict.

Pure parts of the bench only (no server, no wrk): the report's judgement and the reading of
wrk's output.
"""

from __future__ import annotations

from bench.report import FLOOR, SINERGI, Measurement, _ratios, _verdicts
from bench.run import wrk_errors

WRK_OUTPUT = """Running 15s test @ http://127.0.0.1:8100/graphql
  2 threads and 32 connections
  Latency Distribution
     50%    2.10ms
     99%    9.80ms
  135000 requests in 15.00s, 40.00MB read
  Socket errors: connect 1, read 20, write 300, timeout 4000
  Non-2xx or 3xx responses: 120000
Requests/sec:   9000.00
"""


def _eligibility(target: str, per_second: float, errors: int) -> Measurement:
    return Measurement("eligibility", target, per_second, 2.0, 9.0, errors, 100.0, 32, round=1)


def test_a_measurement_with_errors_gets_no_ratio_and_no_verdict() -> None:
    results = [_eligibility(SINERGI, 9_000, errors=120_000), _eligibility(FLOOR, 1_500, errors=0)]

    assert not results[0].measured
    assert _ratios(results, "eligibility", FLOOR) == {1: None}
    (line,) = [line for line in _verdicts(results) if line.startswith("| eligibility ≥")]
    assert "| not measured |" in line


def test_every_error_wrk_reports_is_counted() -> None:
    """Non-2xx answers and every kind of socket error: read and write errors (a server that
    closes the connection) too."""
    assert wrk_errors(WRK_OUTPUT) == 120_000 + 1 + 20 + 300 + 4000
    assert wrk_errors("  1000 requests in 15.00s\nRequests/sec: 66.67\n") == 0
