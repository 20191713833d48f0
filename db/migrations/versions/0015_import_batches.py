"""A record an import creates gets one history entry per batch, not one row of its own.

An imported record's first history entry says only "created by this client's import, at this
time, with these values": the values are the record's own at version 1. Writing them again as
a row of JSON per record cost the import about a third of its time in PostgreSQL. Instead, the
import notes each run of record ids a chunk created in `msme_import_batches`, numbered from the
history's own sequence (so the entry sorts before every later change of those records), and
`record_history` is the history as it was: the rows of `record_changes`, and one entry per
record of a batch whose `changes` are rebuilt from the record as it is now, each column taken
back to its value before the first later change that touched it (every later change keeps
its `before`). Nothing the API answers about a record's history changes.

Records created with an owner keep a row of their own: the owner fields a creation set are
named in it, and their values are never kept, so they could not be rebuilt.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

RECORD_COLUMNS = (
    "nib",
    "name",
    "kbli_code",
    "kbli_section",
    "scale",
    "province_code",
    "regency_code",
    "district_code",
    "established_on",
    "capital",
    "annual_turnover",
    "turnover_year",
    "employees",
)
"""The columns a file gives a record: those the import's history entry of a creation names."""

_CURRENT = ", ".join(f"'{column}', m.{column}" for column in RECORD_COLUMNS)
_NAMES = ", ".join(f"'{column}'" for column in RECORD_COLUMNS)
# Each column's value at creation: its `before` in the earliest later change that names it
# (jsonb_object_agg keeps the last of repeated keys, hence newest first), else its value now.
# Columns that were empty at creation are left out, as the per-record entry left them out.
_CREATED = f"""
       (SELECT coalesce(jsonb_object_agg(f.key, jsonb_build_object('before', NULL, 'after', f.value)),
                        '{{}}')
          FROM jsonb_each(
                   jsonb_build_object({_CURRENT})
                   || coalesce((SELECT jsonb_object_agg(e.key, e.value -> 'before' ORDER BY c.id DESC)
                                  FROM record_changes c CROSS JOIN jsonb_each(c.changes) e
                                 WHERE c.record_kind = 'msme' AND c.record_id = m.id
                                   AND e.key = ANY (ARRAY[{_NAMES}])),
                               '{{}}')) f
         WHERE f.value <> 'null'::jsonb)"""

VIEW = f"""
CREATE VIEW record_history AS
SELECT id, at, client_id, organisation, record_kind, record_id, operation, version, changes,
       personal_fields
  FROM record_changes
 UNION ALL
SELECT b.id, b.at, b.client_id, b.organisation, 'msme'::varchar(15), m.id, 'import'::varchar(15),
       1,{_CREATED},
       '{{}}'::text[]
  FROM msmes m
  JOIN LATERAL (SELECT * FROM msme_import_batches b WHERE b.first_id <= m.id
                 ORDER BY b.first_id DESC LIMIT 1) b ON m.id <= b.last_id
"""


def upgrade() -> None:
    op.execute(
        "CREATE TABLE msme_import_batches ("
        " id bigint CONSTRAINT pk_msme_import_batches PRIMARY KEY,"
        " at timestamptz NOT NULL DEFAULT clock_timestamp(),"
        " client_id text NOT NULL,"
        " organisation text NOT NULL,"
        " first_id bigint NOT NULL,"
        " last_id bigint NOT NULL,"
        " CONSTRAINT ck_msme_import_batches_ids CHECK (first_id <= last_id))"
    )
    # Runs of ids never overlap: the run holding an id is the last one starting at or before it.
    op.execute(
        "CREATE UNIQUE INDEX uq_msme_import_batches_first_id ON msme_import_batches (first_id)"
    )
    op.execute(VIEW)


def downgrade() -> None:
    # The entries of a batch cannot go back into record_changes in their place among a record's
    # later changes (ids are taken), so a database that holds any stays at this revision.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT FROM msme_import_batches) THEN"
        " RAISE EXCEPTION 'imports recorded in msme_import_batches: cannot downgrade';"
        " END IF; END $$"
    )
    op.execute("DROP VIEW record_history")
    op.execute("DROP TABLE msme_import_batches")
