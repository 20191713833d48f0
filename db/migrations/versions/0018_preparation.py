"""What the database was last prepared for, so a command can skip preparing it again.

Every `sinergi` command used to run the migrations, grant the service role its privileges and
load the reference data before doing its work (`sinergi.database.prepared`): all idempotent,
but a tenth of a second and the import of Alembic on every start, where the database was already
as those steps leave it. `preparation` holds one row, written by the owner in the transaction
that loads the reference data after the migrations and grants: a fingerprint of what the steps
applied (db/preparation.py) and the Alembic revisions the database was then at. A command whose
code has the same fingerprint, on a database still at those revisions, skips the steps.

The service role holds no privilege on it (db/roles.py): it cannot make the owner skip a step.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE preparation (
            singleton boolean NOT NULL DEFAULT true,
            fingerprint text NOT NULL,
            revisions text[] NOT NULL,
            prepared_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_preparation PRIMARY KEY (singleton),
            CONSTRAINT ck_preparation_one_row CHECK (singleton)
        )
        """
    )
    op.execute("REVOKE ALL ON preparation FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TABLE preparation")
