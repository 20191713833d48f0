"""A cooperative's date of establishment, and failed client authentications.

`cooperatives.established_on` is the deed's date (akta pendirian), which R03 (six months of
operation) measures from; without it, the year of the Kemenkumham legal-entity number bounds it.

`auth_failures` counts failed client authentications per client id and per address in fixed
windows. Shared by every server process, as the request counters are, so the throttle holds
however many workers answer. Like them, worth nothing after a crash (a lost count gives an
attacker a few more guesses, once), so the table skips the WAL: UNLOGGED, and not modelled.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cooperatives", sa.Column("established_on", sa.Date(), nullable=True))
    op.execute(
        "CREATE UNLOGGED TABLE auth_failures ("
        " subject text NOT NULL,"
        " window_start timestamptz NOT NULL,"
        " failures integer NOT NULL,"
        " CONSTRAINT pk_auth_failures PRIMARY KEY (subject, window_start))"
    )


def downgrade() -> None:
    op.execute("DROP TABLE auth_failures")
    op.drop_column("cooperatives", "established_on")
