"""Each audit entry carries a MAC under the audit key, made by the service as it writes it.

The service's role may insert entries, and the chain trigger and the sealer took whatever it
inserted: with only the database's credentials (never the audit key), an insider could insert
an entry naming another agency as having received a person's data, and it was chained, sealed
and checkpointed like any other, `sinergi audit verify` calling the trail intact. Now the
service computes an HMAC, under a key derived from the audit key, of each entry's client id,
entry, subjects and a random nonce of its own (db/seals.py `entry_mac`), and stores both here;
sealing and `audit verify` check it (db/queries/audit.py). A nonce is unique, so a genuine
entry copied whole (its MAC with it) is refused by the index, and, if the owner dropped the
index, named by `audit verify`.

The append-only trigger already refuses an UPDATE of any column, these included, and the
service is granted INSERT on them alone (db/roles.py). The chain's hash does not cover them:
`audit_log_hash()` stays the function every entry before this was chained with, and a MAC or
nonce changed (by the owner, with the triggers off) fails the MAC check itself.

Entries written before this migration have no MAC. `audit_entry_macs` records the first entry
that must carry one, the next after the newest at this migration (taken under the chain's lock,
so none is written meanwhile); `audit verify` takes a MAC-less entry only below it. One row,
written once: a trigger refuses to change or remove it, and the service may only read it.
An instance of an older release, still running after the migration, would write entries with
no MAC, and `audit verify` would name each as not written by the service for good: an upgrade
slip read as an insider's forgery. A trigger refuses such an entry instead (SQLSTATE 23514), so
the old instance's requests fail loudly. It is named to fire after `audit_log_chain` (BEFORE
triggers fire in name order), so it sees the entry's place in the chain, and refuses only from
the boundary on: every entry written after the migration is there, and an entry before it, as
a restore of an older dump loads them, is left as it was. The migration's role owns it, so the
service's role can neither drop, disable nor replace it (tests/test_roles.py).

Revision ID: 0051
Revises: 0050
"""

import sqlalchemy as sa
from alembic import op

revision = "0051"
down_revision = "0050"
branch_labels = None
depends_on = None

REFUSE = """
CREATE FUNCTION audit_entry_macs_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_entry_macs is written once: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""


UNSIGNED = """
CREATE FUNCTION audit_log_refuse_unsigned() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF (NEW.entry_mac IS NULL OR NEW.entry_nonce IS NULL)
            AND NEW.seq >= (SELECT from_seq FROM public.audit_entry_macs) THEN
        RAISE EXCEPTION 'audit entry refused: it carries no MAC; an instance of a release older'
            ' than migration 0051 is still running: stop it (README, Upgrading)'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("entry_mac", sa.Text(), nullable=True))
    op.add_column("audit_log", sa.Column("entry_nonce", sa.Text(), nullable=True))
    op.create_unique_constraint(op.f("uq_audit_log_entry_nonce"), "audit_log", ["entry_nonce"])
    op.create_table(
        "audit_entry_macs",
        sa.Column("singleton", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("from_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("singleton", name=op.f("ck_audit_entry_macs_one_row")),
        sa.PrimaryKeyConstraint("singleton", name=op.f("pk_audit_entry_macs")),
    )
    # The chain trigger's lock: no entry is written between reading the newest and committing.
    op.execute("SELECT pg_advisory_xact_lock(hashtext('sinergi.audit_log'))")
    op.execute(
        "INSERT INTO audit_entry_macs (from_seq)"
        " SELECT coalesce(max(seq), 0) + 1 FROM audit_log"
    )
    op.execute(REFUSE)
    op.execute(
        "CREATE TRIGGER audit_entry_macs_written_once BEFORE UPDATE OR DELETE"
        " ON audit_entry_macs FOR EACH ROW EXECUTE FUNCTION audit_entry_macs_refuse()"
    )
    op.execute(
        "CREATE TRIGGER audit_entry_macs_no_truncate BEFORE TRUNCATE ON audit_entry_macs"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_macs_refuse()"
    )
    op.execute(UNSIGNED)
    # After `audit_log_chain` in name order: it has given the entry its seq.
    op.execute(
        "CREATE TRIGGER audit_log_signed BEFORE INSERT ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_unsigned()"
    )


def downgrade() -> None:
    # As the seals (migration 0010): a MAC is made under a key the database never sees, and
    # one dropped cannot be made again; the entries after the boundary would lose their proof
    # that the service wrote them. A database that holds any stays at this revision.
    op.execute(
        "DO $$ DECLARE signed bigint; BEGIN"
        " SELECT count(*) INTO signed FROM audit_log WHERE entry_mac IS NOT NULL;"
        " IF signed > 0 THEN RAISE EXCEPTION 'audit_log holds % entries with a MAC, each the"
        " keyed proof that the service wrote it; dropping them loses that proof for good:"
        " cannot downgrade', signed; END IF; END $$"
    )
    op.execute("DROP TRIGGER audit_log_signed ON audit_log")
    op.execute("DROP FUNCTION audit_log_refuse_unsigned()")
    op.drop_table("audit_entry_macs")
    op.execute("DROP FUNCTION audit_entry_macs_refuse()")
    op.drop_constraint(op.f("uq_audit_log_entry_nonce"), "audit_log", type_="unique")
    op.drop_column("audit_log", "entry_nonce")
    op.drop_column("audit_log", "entry_mac")
