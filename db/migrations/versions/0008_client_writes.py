"""When each client last wrote: reads go to a replica only once its own writes can be there.

Like the rate-limit counters, worth nothing after a crash (a lost mark costs at most a few reads
from a lagging replica), so the table skips the WAL: UNLOGGED, and not modelled.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE UNLOGGED TABLE client_writes ("
        " client_id text CONSTRAINT pk_client_writes PRIMARY KEY,"
        " written_at timestamptz NOT NULL)"
    )


def downgrade() -> None:
    op.execute("DROP TABLE client_writes")
