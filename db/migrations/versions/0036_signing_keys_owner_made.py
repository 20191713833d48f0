"""Signing keys: the service makes none beside the signing one, and a row is a key's shape.

An insider holding the service's credentials could insert a key of their own (the service held
INSERT on `signing_keys`, for the first start's key): every key not retired verified tokens with
no time limit, and `sinergi keys rotate`, run while the insider's insert was uncommitted, retired
what it saw and missed it, so the planted key stayed published and went on verifying tokens
forged with it (a province client's `pii:read`, owners' NIKs) after the rotation meant to end
the incident. db/roles.py now grants the service no INSERT there; it makes the first key through
`make_first_signing_key`, the owner's, which locks the table and inserts only when no key signs
(and rotation locks the table too, auth/keys.py).

The CHECK holds a row to what the code reads: an ES256 public key of the row's kid, and its
private half, or `{}` once retired. A row the code cannot import is still skipped (a point off
the curve passes a CHECK), but a typo in a hand-made row is refused at once. Rows already
there that fail it verify and sign nothing, so they go first: a public half that is not a key
is deleted, and a key whose private half is not its own is retired and erased.

Revision ID: 0036
Revises: 0035
"""

from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp"

PUBLIC_SHAPE = """coalesce(
    jsonb_typeof(public_jwk) = 'object'
    AND public_jwk ->> 'kty' = 'EC' AND public_jwk ->> 'crv' = 'P-256'
    AND jsonb_typeof(public_jwk -> 'x') = 'string' AND jsonb_typeof(public_jwk -> 'y') = 'string'
    AND public_jwk ->> 'kid' = kid AND NOT public_jwk ? 'd', false)"""
PRIVATE_SHAPE = """coalesce(CASE WHEN private_jwk = '{}' THEN retired_at IS NOT NULL
    ELSE jsonb_typeof(private_jwk) = 'object'
         AND private_jwk ->> 'kty' = 'EC' AND private_jwk ->> 'crv' = 'P-256'
         AND private_jwk -> 'x' = public_jwk -> 'x' AND private_jwk -> 'y' = public_jwk -> 'y'
         AND jsonb_typeof(private_jwk -> 'd') = 'string' END, false)"""
"""db/models.py's `SIGNING_KEY_SHAPE`, as this revision has it."""

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
    op.execute(f"DELETE FROM signing_keys WHERE NOT {PUBLIC_SHAPE}")
    op.execute(
        "UPDATE signing_keys SET retired_at = coalesce(retired_at, now()), private_jwk = '{}'"
        f" WHERE NOT {PRIVATE_SHAPE}"
    )
    op.execute(
        "ALTER TABLE signing_keys ADD CONSTRAINT ck_signing_keys_jwk"
        f" CHECK ({PUBLIC_SHAPE} AND {PRIVATE_SHAPE})"
    )
    op.execute(MAKE_FIRST)
    # db/roles.py grants the service EXECUTE; nobody else holds it.
    op.execute("REVOKE EXECUTE ON FUNCTION make_first_signing_key(text, jsonb, jsonb) FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION make_first_signing_key(text, jsonb, jsonb)")
    op.execute("ALTER TABLE signing_keys DROP CONSTRAINT ck_signing_keys_jwk")
