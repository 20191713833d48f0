"""Signing keys: the service makes none beside the signing one.

An insider holding the service's credentials could insert a key of their own (the service held
INSERT on `signing_keys`, for the first start's key): every key not retired verified tokens with
no time limit, and `sinergi keys rotate`, run while the insider's insert was uncommitted, retired
what it saw and missed it, so the planted key stayed published and went on verifying tokens
forged with it (a province client's `pii:read`, owners' NIKs) after the rotation meant to end
the incident. db/roles.py now grants the service no INSERT there; it makes the first key through
`make_first_signing_key`, the owner's, which locks the table and inserts only when no key signs
(and rotation locks the table too, auth/keys.py).

Revision ID: 0036
Revises: 0033
"""

from alembic import op

revision = "0036"
down_revision = "0033"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp"

MAKE_FIRST = f"""
CREATE FUNCTION make_first_signing_key(new_kid text, new_private jsonb, new_public jsonb)
RETURNS boolean LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
    -- Against a rotation and another worker starting: both write the table under this lock.
    LOCK TABLE public.signing_keys IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT FROM public.signing_keys WHERE retired_at IS NULL) THEN
        RETURN false;
    END IF;
    INSERT INTO public.signing_keys (kid, private_jwk, public_jwk)
        VALUES (new_kid, new_private, new_public);
    RETURN true;
END
$$
"""


def upgrade() -> None:
    op.execute(MAKE_FIRST)
    # db/roles.py grants the service EXECUTE; nobody else holds it.
    op.execute("REVOKE EXECUTE ON FUNCTION make_first_signing_key(text, jsonb, jsonb) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION make_first_signing_key(text, jsonb, jsonb)")
