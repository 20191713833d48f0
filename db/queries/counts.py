"""The bound of the shared counts (db/queries/rate_limits.py, db/queries/auth_failures.py).

The service's role may write those counts, so whoever holds its credentials can plant one at
PostgreSQL's largest integer: an addition that overflowed failed every request of that client
(and every process's sync of all its clients with it), and the right secret was answered 500.
Each addition is made in bigint and held to COUNT_MAX, bound as the statement's `:count_max`,
so a planted count refuses its client as over the limit, nothing more."""

from __future__ import annotations

COUNT_MAX = 2**31 - 1
"""PostgreSQL's largest `integer`, the counts' type."""
