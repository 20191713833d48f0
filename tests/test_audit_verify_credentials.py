"""Which credentials `sinergi audit verify` reads the trail with: the owner's when the
deployment gives them (DATABASE_OWNER_URL, or the embedded server's owner role), not the
service's, which an insider attacking the trail may hold; the service's DATABASE_URL only when
no owner's is given, and then it says so."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support.audit_trail import ENTRIES, sealed_trail, verify
from tests.support.databases import as_service

INTACT = f"audit chain intact: {ENTRIES} entries verified, {ENTRIES} sealed"

AS_THE_SERVICE = (
    "sinergi audit verify: note: verifying with DATABASE_URL's credentials, the service's own,"
    " which an insider attacking the trail may hold; set DATABASE_OWNER_URL (and"
    " DATABASE_OWNER_PASSWORD_FILE) to the owner's to verify as the owner\n"
)


def test_verify_connects_as_the_owner_when_given_the_owners_url(
    fresh_url: str, tmp_path: Path
) -> None:
    """A DATABASE_URL naming a role PostgreSQL does not know, beside the owner's URL: verify
    passes, so it never connected with DATABASE_URL; given that URL alone, it cannot connect."""
    trail = sealed_trail(fresh_url, tmp_path / "audit-checkpoints.jsonl")
    nobody = make_url(as_service(fresh_url)).set(username="sinergi_no_such_role")
    service_url = nobody.render_as_string(hide_password=False)
    alone = verify(trail, urls={"DATABASE_URL": service_url})
    assert alone.returncode == 2, alone.stdout + alone.stderr
    assert 'role "sinergi_no_such_role" does not exist' in alone.stderr
    as_owner = verify(trail, urls={"DATABASE_URL": service_url, "DATABASE_OWNER_URL": fresh_url})
    assert (as_owner.returncode, as_owner.stderr) == (0, ""), as_owner.stdout + as_owner.stderr
    assert INTACT in as_owner.stdout


def test_verify_with_the_services_url_alone_says_so(fresh_url: str, tmp_path: Path) -> None:
    """Compose's API container holds the service's URL alone: verify still runs, with the
    service's credentials, and says so in one line naming how to give it the owner's."""
    trail = sealed_trail(fresh_url, tmp_path / "audit-checkpoints.jsonl")
    verified = verify(trail)
    assert (verified.returncode, verified.stderr) == (0, AS_THE_SERVICE), verified.stdout
    assert INTACT in verified.stdout
