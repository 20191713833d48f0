"""How `sinergi serve` logs: one JSON object per line on stdout, each carrying the request id.

Log shippers (Loki, Elasticsearch, Cloud Logging) parse a JSON line without configuration, and
the request id joins the access-log line to every other line the same request caused. This is
the one place logging is set up for serving; uvicorn receives the same configuration for its
workers. Other commands keep plain human-readable lines (see `sinergi.cli.main`).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
import traceback
from types import TracebackType
from typing import Any, TextIO

import orjson

from db.errors import loggable
from sinergi import exchange
from sinergi.settings import Settings

# Fields the access log (sinergi.observe) attaches to its records.
EXTRA_FIELDS = ("method", "path", "status", "duration_ms", "client_id", "operation", "error_codes")


def _request_id() -> str | None:
    now = exchange.current()
    return None if now is None else now.request_id


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def exception_text(error: BaseException) -> str:
    """The traceback of `error` and of the exceptions it was raised from, as Python prints it,
    except that a database error is told by `db.errors.loggable`: its DETAIL (the failing row's
    values, personal data) would otherwise reach the log in each of the three exceptions a
    failed statement chains (asyncpg's, SQLAlchemy's adapter's, SQLAlchemy's)."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    parts: list[str] = []
    for each, link_to_next in reversed(chain):
        parts.append(_one_exception(each))
        parts.append(link_to_next)
    return "".join(parts).rstrip("\n")


def _one_exception(error: BaseException) -> str:
    frames = traceback.format_tb(error.__traceback__)
    head = ["Traceback (most recent call last):\n", *frames] if frames else []
    told = loggable(error)
    if told is None:
        tail = traceback.format_exception_only(type(error), error)
    else:
        kind = type(error)
        name = kind.__qualname__
        if kind.__module__ not in ("__main__", "builtins"):
            name = f"{kind.__module__}.{name}"
        tail = [f"{name}: {told}\n"]
    if isinstance(error, BaseExceptionGroup):
        for number, member in enumerate(error.exceptions, 1):
            nested = exception_text(member).replace("\n", "\n  | ")
            tail.append(f"  +---- {number} ----\n  | {nested}\n")
    return "".join(head + tail)


def _told(record: logging.LogRecord) -> logging.LogRecord:
    """`record`, or when it carries an exception or a database error as its message
    (`log.error(error)`) or among its arguments (`log.warning("could not …: %s", error)`), a
    copy whose message and arguments tell database errors, and exceptions raised from them, as
    `db.errors.loggable` does, and whose traceback is formatted afresh: another handler's
    formatter may have cached its own text of it on the record."""
    arguments = record.args if isinstance(record.args, tuple) else ()
    told = [
        loggable(argument) if isinstance(argument, BaseException) else None
        for argument in arguments
    ]
    message = loggable(record.msg) if isinstance(record.msg, BaseException) else None
    if not record.exc_info and not any(told) and message is None:
        return record
    copy = logging.makeLogRecord(record.__dict__)
    copy.exc_text = None
    if message is not None:
        copy.msg = message
    if any(told):
        copy.args = tuple(
            argument if text is None else text
            for argument, text in zip(arguments, told, strict=True)
        )
    return copy


class _DatabaseErrorsTold(logging.Formatter):
    """The formatters' common part: tracebacks by `exception_text`."""

    def formatException(  # noqa: N802 (logging.Formatter's name)
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        return "" if ei[1] is None else exception_text(ei[1])


class JsonFormatter(_DatabaseErrorsTold):
    """Every request writes an access-log line, so the line is cheap: the time's text is
    formatted once per second, and the entry encoded by orjson."""

    _second = -1
    _second_text = ""

    def _time(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond, as `datetime.isoformat` writes it."""
        fraction, whole = math.modf(created)  # rounded as datetime.fromtimestamp rounds
        second, microseconds = int(whole), round(fraction * 1_000_000)
        if microseconds >= 1_000_000:
            second, microseconds = second + 1, microseconds - 1_000_000
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{microseconds // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        record = _told(record)
        entry: dict[str, Any] = {
            "time": self._time(record.created),
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


class TextFormatter(_DatabaseErrorsTold):
    """For a developer's terminal (SINERGI_LOG_FORMAT=text): the same facts, one readable line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(_told(record))
        request_id = _request_id()
        return line if request_id is None else f"{line} [{request_id}]"


FLUSH_SECONDS = 0.5
MAX_PENDING = 1_000


class BatchedStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes lines in batches: a warning or worse at once, with the lines
    before it, other lines (the access log's, one per request) within FLUSH_SECONDS, by a thread
    of this handler's, or once MAX_PENDING lines are waiting. The handler keeps the lines itself
    rather than leaving it to the stream's buffer: with PYTHONUNBUFFERED set (as in the image)
    stdout writes each line through, a system call per request. Logging flushes what is left
    when the process exits."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._flusher: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING or len(self._pending) >= MAX_PENDING:
                self.flush()
            elif self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_now_and_then, name="sinergi-log-flush", daemon=True
                )
                self._flusher.start()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()  # emit holds it already; the flushing thread and logging's exit do not
        try:
            if self._pending:
                lines, self._pending = "".join(self._pending), []
                self.stream.write(lines)
            super().flush()
        finally:
            self.release()

    def _flush_now_and_then(self) -> None:
        """Until the stream is closed under the handler (stdout as the interpreter exits):
        nothing can be written to it any more, and the thread died with a traceback."""
        while True:
            time.sleep(FLUSH_SECONDS)
            try:
                self.flush()
            except ValueError:  # "I/O operation on closed file"
                if not self.stream.closed:
                    raise
                return


class AccessRecords:
    """The access log's records, one per request, copied from a record made once rather than
    made by `Logger.makeRecord`: every access line has the same origin, so the work a record
    does to describe where it was logged (the source file's name, the caller's, the extra
    fields' clash checks) is done once, and what remains is the time. Handlers and formatters
    receive a complete LogRecord, as from any logger. Like every record of a serving process
    (`lean_records`), it names no process, thread or task."""

    def __init__(self, logger: logging.Logger) -> None:
        made = logging.LogRecord(logger.name, logging.INFO, __file__, 0, "", None, None)
        made.process = made.processName = made.thread = made.threadName = None
        made.__dict__["taskName"] = None  # an attribute from Python 3.12
        self._made_at = made.created
        self._template = made.__dict__

    def make(self, level: int, message: str, fields: dict[str, Any]) -> logging.LogRecord:
        """A record of `message` at `level` carrying `fields` (sinergi.logs.EXTRA_FIELDS)."""
        record = logging.LogRecord.__new__(logging.LogRecord)
        attributes = record.__dict__
        attributes.update(self._template)
        attributes.update(fields)
        created = time.time()
        attributes["msg"] = message
        attributes["levelno"] = level
        attributes["levelname"] = logging.getLevelName(level)
        attributes["created"] = created
        attributes["msecs"] = int((created - int(created)) * 1000) + 0.0
        attributes["relativeCreated"] = (
            self._template["relativeCreated"] + (created - self._made_at) * 1000
        )
        return record


def lean_records() -> None:
    """Log records skip what no line of ours prints: the process id (a system call for every
    record, so every request), the thread's and the multiprocessing process's names, and from
    Python 3.12 the asyncio task's name (a lookup of the running task per record). Logging's
    own switches for it, set in each serving process."""
    logging.logProcesses = False
    logging.logThreads = False
    logging.logMultiprocessing = False
    if sys.version_info >= (3, 12):
        logging.logAsyncioTasks = False


class WebSocketFramesWithheld(logging.Filter):
    """Drops what the websockets library logs below INFO: at debug it logs the handshake's
    headers and every frame, a `connection_init` with its bearer token and the change feed's
    pages of records among them. uvicorn hands it its own logger (uvicorn.error), so the lines
    are told apart by the file that logs them; uvicorn's own debug lines stay."""

    _LIBRARY = f"{os.sep}websockets{os.sep}"

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or self._LIBRARY not in record.pathname


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
        "filters": {"websocket_frames": {"()": WebSocketFramesWithheld}},
        "handlers": {
            "stdout": {
                "()": BatchedStreamHandler,
                "formatter": "default",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # uvicorn's own access log is off: sinergi.access writes a richer one.
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {
                "level": level,
                "handlers": [],
                "propagate": True,
                "filters": ["websocket_frames"],
            },
            # Alembic's INFO lines ("Context impl PostgresqlImpl.") come with every /readyz
            # probe, which reads the migration state; probes log at debug, and migrations
            # that run log through `sinergi migrate --verbose`.
            "alembic": {"level": "WARNING"},
        },
    }
