"""Each shared request count knows the length of its window, so a purge keeps it until that
window is over.

Rows of `rate_limit_windows` were keyed by their window's start alone, and each process purged
those over by its own window's length: one counting a minute (the default) deleted, every five
minutes, the count of a client whose processes counted a day, once that day was an hour old, and
the client was admitted to its limit again. Processes over one database count windows of
different lengths while a change of `SINERGI_RATE_LIMIT_WINDOW` rolls out (and in the tests,
which run apps of several settings over one database). A count now records its window's length
(`window_seconds`, the longest of those counted into it), and a purge reads it.

The column may be NULL: an instance of the previous release, still serving during an upgrade,
adds counts without it, and the primary key is unchanged so that its statement still finds its
row; a purge takes such a row's length to be the purging process's own, as before. The owner's
CHECK refuses a length under one second.

Revision ID: 0064
Revises: 0063
"""

from alembic import op

revision = "0064"
down_revision = "0063"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE rate_limit_windows ADD COLUMN window_seconds integer"
        " CONSTRAINT ck_rate_limit_windows_window_seconds CHECK (window_seconds > 0)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE rate_limit_windows DROP COLUMN window_seconds")
