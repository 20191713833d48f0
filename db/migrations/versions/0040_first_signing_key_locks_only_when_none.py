"""The first-key function takes its lock only when no key signs.

`make_first_signing_key` (migration 0036), which the service may call, locked `signing_keys`
before looking for a key, and the lock lasts to the end of the caller's transaction. Whoever
held the service's credentials could call it in a transaction left open, and so hold the
table: the owner's `sinergi keys rotate`, run to end that very leak, waited on it without a
word, and every worker starting meanwhile hung in its start-up call. It now returns false at
once, locking nothing, while a key signs; the lock is taken only when none does (a new
database, where workers starting together must make one key between them), and the check is
made again under it. The service may lock the table no other way: its SELECT allows only
ACCESS SHARE, which a rotation's lock does not wait for.

Revision ID: 0040
Revises: 0039
"""

from alembic import op

revision = "0040"
down_revision = "0039"
branch_labels = None
depends_on = None

SIGNS = "EXISTS (SELECT FROM public.signing_keys WHERE retired_at IS NULL)"

MAKE_FIRST = f"""
CREATE OR REPLACE FUNCTION make_first_signing_key(new_kid text, new_private jsonb, new_public jsonb)
RETURNS boolean LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF {SIGNS} THEN
        RETURN false;
    END IF;
    -- Against a rotation and another worker starting: both write the table under this lock.
    LOCK TABLE public.signing_keys IN SHARE ROW EXCLUSIVE MODE;
    IF {SIGNS} THEN
        RETURN false;
    END IF;
    INSERT INTO public.signing_keys (kid, private_jwk, public_jwk)
        VALUES (new_kid, new_private, new_public);
    RETURN true;
END
$$
"""

LOCK_FIRST = f"""
CREATE OR REPLACE FUNCTION make_first_signing_key(new_kid text, new_private jsonb, new_public jsonb)
RETURNS boolean LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    LOCK TABLE public.signing_keys IN SHARE ROW EXCLUSIVE MODE;
    IF {SIGNS} THEN
        RETURN false;
    END IF;
    INSERT INTO public.signing_keys (kid, private_jwk, public_jwk)
        VALUES (new_kid, new_private, new_public);
    RETURN true;
END
$$
"""
"""Migration 0036's function."""


def upgrade() -> None:
    op.execute(MAKE_FIRST)  # its owner and the service's EXECUTE stay as they were


def downgrade() -> None:
    op.execute(LOCK_FIRST)
