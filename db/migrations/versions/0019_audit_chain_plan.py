"""The chain's lookup of the latest entry reads the index, whatever the statistics say.

The trigger that links each new entry to the one before it (migration 0010) looks up the latest
entry on every append, and PostgreSQL plans that lookup once per connection, with the statistics
of the moment. A connection that first appended while the trail had been analyzed empty (an
ANALYZE of a new database) kept a plan that reads the whole trail: every entry cost more than the
last, on every pooled connection, until autovacuum analyzed the table again, and for as long as
the connection lived where autovacuum does not run (tests/test_audit_chain_plans.py). With
sequential scans off inside the trigger, the lookup is the index's last entry, on an empty trail
or a large one.

Revision ID: 0019
Revises: 0018
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

CHAIN = "public.audit_log_chain()"


def upgrade() -> None:
    op.execute(f"ALTER FUNCTION {CHAIN} SET enable_seqscan = off")


def downgrade() -> None:
    op.execute(f"ALTER FUNCTION {CHAIN} RESET enable_seqscan")
