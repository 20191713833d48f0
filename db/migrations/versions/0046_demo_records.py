"""The records the demo loaded, listed: `sinergi demo-data` deletes those and nothing else.

It deleted every MSME whose NIB starts with 999 and every cooperative whose legal-entity number
starts with AHU-999, with their owners, history, participations, eligibility decisions and
guarantees, taking the range for one no real business has. OSS draws NIBs at random (they are
checked for shape only), so about one real NIB in a thousand starts with 999, and a client may
register one: the next `demo-data` erased it, and no audit entry said so. `demo.load` now lists
the ids it creates here, in its transaction, and the reload deletes exactly those.

Owner-only tables: the service holds nothing on them (db/roles.py), so neither a client nor
whoever holds the service's credentials can list a real record (nor take a demo one off).

Records earlier demo runs loaded are listed by what only they are: in the demo's ranges, and
created by no client, as their history tells (every write through the API since records could
be written, migration 0004, records a creation; an import, its batch, or for a record it created
with an owner, an 'import' entry at the record's first version; the service can add to the
history, never take from it). A real 999… business registered through the API has its creation
in the history, so it is not listed. An 'import' entry at a later version is an import updating
the record, which a client may do to a demo one: that record is still the demo's, listed.

Revision ID: 0046
Revises: 0045
"""

import sqlalchemy as sa
from alembic import op

revision = "0046"
down_revision = "0045"
branch_labels = None
depends_on = None

_LOADED_BY_THE_DEMO = """
INSERT INTO {listing} ({column})
SELECT r.id FROM {records} r
 WHERE r.{identifier} LIKE '{prefix}%'
   AND NOT EXISTS (SELECT 1 FROM record_history h
                    WHERE h.record_kind = '{kind}' AND h.record_id = r.id
                      AND (h.operation = 'create' OR h.operation = 'import' AND h.version = 1))
"""


def upgrade() -> None:
    for listing, column, records in (
        ("demo_msmes", "msme_id", "msmes"),
        ("demo_cooperatives", "cooperative_id", "cooperatives"),
    ):
        op.create_table(
            listing,
            sa.Column(column, sa.BigInteger(), nullable=False),
            sa.ForeignKeyConstraint(
                [column],
                [f"{records}.id"],
                name=op.f(f"fk_{listing}_{column}_{records}"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint(column, name=op.f(f"pk_{listing}")),
        )
    op.execute(
        _LOADED_BY_THE_DEMO.format(
            listing="demo_msmes",
            column="msme_id",
            records="msmes",
            identifier="nib",
            prefix="999",
            kind="msme",
        )
    )
    op.execute(
        _LOADED_BY_THE_DEMO.format(
            listing="demo_cooperatives",
            column="cooperative_id",
            records="cooperatives",
            identifier="legal_entity_no",
            prefix="AHU-999",
            kind="cooperative",
        )
    )


def downgrade() -> None:
    op.drop_table("demo_cooperatives")
    op.drop_table("demo_msmes")
