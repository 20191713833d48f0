"""How `sinergi serve` logs: one JSON object per line on stdout, each carrying the request id.

Log shippers (Loki, Elasticsearch, Cloud Logging) parse a JSON line without configuration, and
the request id joins the access-log line to every other line the same request caused. This is
the one place logging is set up for serving; uvicorn receives the same configuration for its
workers. Other commands keep plain human-readable lines (see `sinergi.cli.main`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from sinergi import exchange
from sinergi.settings import Settings

# Fields the access log (sinergi.observe) attaches to its records.
EXTRA_FIELDS = ("method", "path", "status", "duration_ms", "client_id", "operation", "error_codes")


def _request_id() -> str | None:
    now = exchange.current()
    return None if now is None else now.request_id


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id(),
        }
        for name in EXTRA_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """For a developer's terminal (SINERGI_LOG_FORMAT=text): the same facts, one readable line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = _request_id()
        return line if request_id is None else f"{line} [{request_id}]"


def log_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary, also handed to uvicorn as its `log_config`."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter}
        if settings.log_format == "json"
        else {"()": TextFormatter, "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # uvicorn's own access log is off: sinergi.access writes a richer one.
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
        },
    }
