"""Trusted documents may be registered for an SSO's principals, not only for registered clients.

With SINERGI_TRUSTED_DOCUMENTS on, every client is held to the operations registered for it,
an SSO's users too; but `trusted_documents.client_id` referenced `oauth_clients` and was at most
64 characters, so none could be registered for a principal (`ISSUER#CLIENT@ORG_KIND:JURISDICTION`,
up to 200 characters, registered nowhere) and every one of its requests was refused. The
column now holds any principal's id, as `guarantors.client_id` does. Clients are revoked, never
deleted, so the cascade the foreign key gave deleted nothing.

Revision ID: 0057
Revises: 0056
"""

import sqlalchemy as sa
from alembic import op

revision = "0057"
down_revision = "0056"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(
        "fk_trusted_documents_client_id_oauth_clients", "trusted_documents", type_="foreignkey"
    )
    op.alter_column(
        "trusted_documents",
        "client_id",
        type_=sa.String(length=200),
        existing_type=sa.String(length=64),
        existing_nullable=False,
    )


def downgrade() -> None:
    # What only a principal registered nowhere here held cannot be kept under the foreign key.
    op.execute(
        "DELETE FROM trusted_documents t"
        " WHERE NOT EXISTS (SELECT FROM oauth_clients c WHERE c.client_id = t.client_id)"
    )
    op.alter_column(
        "trusted_documents",
        "client_id",
        type_=sa.String(length=64),
        existing_type=sa.String(length=200),
        existing_nullable=False,
    )
    op.create_foreign_key(
        "fk_trusted_documents_client_id_oauth_clients",
        "trusted_documents",
        "oauth_clients",
        ["client_id"],
        ["client_id"],
        ondelete="CASCADE",
    )
