"""The authenticated caller, as every layer below the HTTP edge sees it."""

from __future__ import annotations

from dataclasses import dataclass

from auth.scopes import OrgKind, Scope


@dataclass(frozen=True, slots=True)
class Principal:
    """A client acting within a jurisdiction ("ID", "62" or "62.01") with a set of scopes."""

    client_id: str
    org_kind: OrgKind
    jurisdiction: str
    scopes: frozenset[Scope]
    organisation: str = ""
    purpose: str = ""
    legacy_client_id: str | None = None
    """An external principal's id of the older form, `ISSUER#CLIENT` (auth.external): the
    decisions and guarantees kept under it inside the principal's jurisdiction are still its
    own (resolvers/policy.py). None for a client registered here."""

    def has(self, *scopes: Scope) -> bool:
        return all(scope in self.scopes for scope in scopes)
