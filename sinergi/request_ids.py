"""Request ids: the one every HTTP answer carries (X-Request-ID) and its log lines quote. Apart from
sinergi.observe, which imports the metrics, so that the HTTP protocol's own refusals get one
without the metrics' files being made before `serve` has passed its refusals."""

from __future__ import annotations

import random
import re

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def request_id_from(raw: str | None) -> str:
    """The caller's X-Request-ID when it is a sane token (so ids join up across systems),
    otherwise a fresh one: a header is never copied into logs unchecked."""
    if raw is not None and _ACCEPTABLE_ID.fullmatch(raw):
        return raw
    # Unique, not secret (a caller may choose its own): the random module's generator, reseeded
    # in each forked worker, saves a system call per request over os.urandom.
    return f"{random.getrandbits(128):032x}"
