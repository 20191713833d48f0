"""The access log's lines, as `sinergi serve` writes them (JSON unless told), while a block runs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sinergi.logs import JsonFormatter


@contextmanager
def captured(formatter: logging.Formatter | None = None) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter or JsonFormatter())
    access = logging.getLogger("sinergi.access")
    access.addHandler(handler)
    previous = access.level
    access.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        access.removeHandler(handler)
        access.setLevel(previous)
