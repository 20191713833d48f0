"""The request counts and the failed-authentication counts are never negative.

The service's role writes `rate_limit_windows` and `auth_failures` (it must: every process adds
its counts there), and nothing held what it wrote to any range. Whoever held its credentials
could plant `hits = -2000000000` and lift a client's rate limit for the window, or a count of
2147483647 that the next addition overflowed: every request of that client answered 500, the
limiter's sync failed for every client while that one had counts pending, and the right secret
was answered 500 at /oauth/token. Rows may name windows yet to come, so that outlived a
rotation of the role's credentials. The additions now saturate at the integer's maximum
(db/queries/rate_limits.py, db/queries/auth_failures.py), and these CHECK constraints refuse a
negative count as it is written.

Rows stored before, negative ones included, are worth nothing after the current window (the
tables are UNLOGGED and purged), so a negative count is clamped to zero rather than kept: the
constraints are then validated, not NOT VALID. The table's owner (the migration's role) owns
them: the service's role can neither drop nor disable them.

Revision ID: 0063
Revises: 0062
"""

from alembic import op

revision = "0063"
down_revision = "0062"
branch_labels = None
depends_on = None

CHECKS = {
    ("rate_limit_windows", "ck_rate_limit_windows_hits"): "hits",
    ("auth_failures", "ck_auth_failures_failures"): "failures",
}
"""Each (table, constraint): its count's column."""


def upgrade() -> None:
    for (table, name), column in CHECKS.items():
        op.execute(f"UPDATE {table} SET {column} = 0 WHERE {column} < 0")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({column} >= 0)")


def downgrade() -> None:
    for table, name in CHECKS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
