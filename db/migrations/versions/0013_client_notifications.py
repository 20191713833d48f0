"""Tell every server process at once when a client's registration or write note changes.

Each process keeps the registrations it has read, and when each client last wrote, rather than
read them on every request; a trigger NOTIFYs the channel `sinergi_clients` with the client id
(an empty payload: every client, after a TRUNCATE) whenever either table changes, by any means,
and every process LISTENs and forgets what it held (auth/registry.py). The notification is sent
when the changing transaction commits, so a revocation reaches every process as it takes effect.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TABLES = ("oauth_clients", "client_writes")


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_client_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_LEVEL = 'STATEMENT' THEN
                PERFORM pg_notify('sinergi_clients', '');
            ELSIF TG_OP = 'DELETE' THEN
                PERFORM pg_notify('sinergi_clients', OLD.client_id);
            ELSE
                PERFORM pg_notify('sinergi_clients', NEW.client_id);
                IF TG_OP = 'UPDATE' AND OLD.client_id <> NEW.client_id THEN
                    PERFORM pg_notify('sinergi_clients', OLD.client_id);
                END IF;
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for table in _TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION notify_client_changed()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_notify_truncate AFTER TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION notify_client_changed()"
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TRIGGER {table}_notify_truncate ON {table}")
        op.execute(f"DROP TRIGGER {table}_notify ON {table}")
    op.execute("DROP FUNCTION notify_client_changed()")
