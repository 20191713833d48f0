"""The audit trail's MACs, nonces and seals hold the shape the service writes, and no other.

The service's role may insert entries and seals (migrations 0010, 0051), and nothing held what
it wrote in their MAC columns to any shape: one INSERT with a MAC of 64 `é`s made every sealing
round fail (`hmac.compare_digest` refuses a str beyond ASCII), and `sinergi audit verify` crash
without naming the entry. The code now takes any such value as the mismatch it is (db/seals.py
`same_mac`); these CHECK constraints refuse it as it is written: an entry's `entry_mac` is 64
lowercase hex digits (an HMAC-SHA256 hexdigest) and its `entry_nonce` 32 (`secrets.token_hex(16)`),
when given (entries before migration 0051 carry neither), and a seal's `mac` 64.

Added NOT VALID: the trail is append-only, so a value stored before could not be corrected,
and one planted there must not stop the migration; `audit verify` names it (a MAC mismatch, or
a seal that does not match). Every row written from now on is checked all the same, and the
table's owner (the migration's role) owns the constraints: the service's role can neither drop
nor disable them (tests/test_roles.py).

Revision ID: 0052
Revises: 0051
"""

from alembic import op

revision = "0052"
down_revision = "0051"
branch_labels = None
depends_on = None

HEX_64 = "'^[0-9a-f]{64}$'"
CHECKS = {
    ("audit_log", "ck_audit_log_entry_mac_shape"): f"entry_mac ~ {HEX_64}",
    ("audit_log", "ck_audit_log_entry_nonce_shape"): "entry_nonce ~ '^[0-9a-f]{32}$'",
    ("audit_seals", "ck_audit_seals_mac_shape"): f"mac ~ {HEX_64}",
}


def upgrade() -> None:
    for (table, name), condition in CHECKS.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")


def downgrade() -> None:
    for table, name in CHECKS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
