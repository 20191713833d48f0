"""Which eligibility decisions and guarantees are a caller's own, as one value every statement asks.

The request's access policy (resolvers/policy.py) makes it from the token: the client ids that
name the caller and its row scope. Reading and reviewing a decision, recording a guarantee on
it and changing its status, R13's defaults, the gearing limit's outstanding cover, the
guarantee change feed and the guarantees published exactly in figures all ask this value, so
"own" is written once: a rule written in each of them drifted apart (R13, gearing and the feed
named the client id alone, the rest its jurisdiction too). Equal values are equal, so a
statement built for one serves the next.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_

from db.models import ELIGIBILITY_DECISIONS, GUARANTEES
from db.queries.scoping import RowScope


@dataclass(frozen=True, slots=True)
class Ownership:
    client_ids: tuple[str, ...]
    """The ids whose rows are the caller's: its client's, and an external principal's id of
    the older form (auth.principal.Principal.legacy_client_id)."""
    scope: RowScope
    """Its jurisdiction: a row of its ids outside it is not its own."""

    def names(self, client_id: ColumnElement[str]) -> ColumnElement[bool]:
        """A client-id column names the caller. Alone only where the place is asked apart, as
        the change feed asks of an entry where its record was and went."""
        return or_(*(client_id == one for one in self.client_ids))

    @property
    def decisions(self) -> ColumnElement[bool]:
        """The decisions it asked for about a business that lay inside its jurisdiction when
        checked."""
        return and_(
            self.names(ELIGIBILITY_DECISIONS.c.client_id), self.scope.rows(ELIGIBILITY_DECISIONS)
        )

    @property
    def guarantees(self) -> ColumnElement[bool]:
        """The guarantees it issued on a business inside its jurisdiction."""
        return and_(self.names(GUARANTEES.c.guarantor_client_id), self.scope.rows(GUARANTEES))
