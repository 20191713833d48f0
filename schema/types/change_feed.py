"""The change feed: pull a page of changes after a cursor (Query), or follow them as they commit
(Subscription over graphql-transport-ws). One feed per record kind, each under the scope that
reads that kind; the record travels as JSON holding only the fields its type shows the client.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql.execution.values import VariableValues
from strawberry.permission import PermissionExtension
from strawberry.scalars import JSON
from strawberry.types import Info

from auth.scopes import Scope
from resolvers import change_feed
from resolvers.access import AccessNotes, Audited
from resolvers.context import Context
from schema import compiled
from schema.audit import sent_document
from schema.errors import raw_info
from schema.permissions import HasScopes, requires
from schema.touched import touched_fields

AFTER = "Entries after this cursor (an `endCursor` or an entry's `cursor`); none: from the start."
FIRST = (
    f"At most this many entries (1 to {change_feed.MAX_PAGE_SIZE}; "
    f"default {change_feed.DEFAULT_PAGE_SIZE})."
)


@strawberry.enum(description="What a change means to the client's copy.")
class ChangeKind(Enum):
    CREATED = "CREATED"
    """Created, or moved into the client's jurisdiction: add it."""
    UPDATED = "UPDATED"
    """Changed, a reactivation too (`isActive` true again): replace your copy."""
    DEACTIVATED = "DEACTIVATED"
    """Still a record (`isActive` false, or a cooperative no longer active): keep it."""
    REMOVED = "REMOVED"
    """Moved out of the client's jurisdiction, or deleted: drop it. Nothing more follows."""


@strawberry.type(description="One change, in commit order.")
class ChangeEntry:
    cursor: str = strawberry.field(description="Resume after this entry.")
    id: strawberry.ID = strawberry.field(description="The record's id.")
    change: ChangeKind
    record: JSON | None = strawberry.field(
        description=(
            "The record as it is now, with the fields of its type the client may read, named as "
            "the type names them, but for regions and links, given by id under keys of the "
            "feed's own (provinceCode, regencyCode, districtCode, cooperativeId, …); "
            "`owner` only with pii:read. Null for a removal."
        )
    )


@strawberry.type(description="A page of changes.")
class ChangePage:
    """Read from a resolvers.change_feed.Page: its `rows`, or the `lists` PostgreSQL wrote."""

    rows: strawberry.Private[list[ChangeEntry]]
    lists: strawberry.Private[Mapping[str, Any]]

    @strawberry.field
    def entries(self, info: Info) -> list[ChangeEntry]:
        compiled = self.lists.get(str(info.path.key))
        return self.rows if compiled is None else compiled

    end_cursor: str = strawberry.field(
        description="Resume here: past the last entry, or past every change so far if none is left."
    )
    has_more: bool = strawberry.field(
        description="More changes are waiting now: ask again at once."
    )


def _pull(kind: str, scope: Scope, noun: str) -> Any:
    async def resolve(
        info: Info[Context, Any],
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
        first: Annotated[int | None, strawberry.argument(description=FIRST)] = None,
    ) -> ChangePage | None:
        plan = compiled.changes_plan(info, ChangeEntry)
        # A resolvers Page is read as the ChangePage.
        return await change_feed.page(info, kind, after=after, first=first, plan=plan)  # type: ignore[return-value]

    return requires(
        scope,
        resolver=resolve,
        description=(
            f"Every creation, update, deactivation, move and removal of {noun} in your "
            "jurisdiction, in commit order, after a cursor."
        ),
    )


def _follow(kind: str, scope: Scope, noun: str) -> Any:
    async def resolve(
        info: Info[Context, Any],
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> AsyncGenerator[ChangePage, None]:
        context = info.context
        document = sent_document(info.operation)
        field = f"Subscription.{info.field_name}"
        plan = compiled.changes_plan(info, ChangeEntry)
        # Every delivery hands out what the subscription selects, listed as a query's entry is.
        raw = raw_info(info)
        # A subscription's resolvers get the variables as a plain dict, coerced already, though
        # typed as the executor holds them; the walk reads @skip and @include through
        # graphql-core, which wants them so.
        values: Mapping[str, Any] | VariableValues = raw.variable_values
        variables = (
            values if isinstance(values, VariableValues) else VariableValues({}, dict(values))
        )
        touched = touched_fields(
            raw.schema, raw.operation, raw.fragments, context.policy.may, variables
        )
        name = info.operation.name

        audited = Audited(document, name.value if name else None, lambda: touched)

        async def audit(notes: AccessNotes) -> None:
            notes.field_used(field, [scope.value])
            await context.record(notes, audited)

        async for page in change_feed.follow(info, kind, after=after, audit=audit, plan=plan):
            yield page  # type: ignore[misc]  # a resolvers Page is read as the ChangePage

    # `requires` makes a query field; a subscription field takes the same guard.
    return strawberry.subscription(
        resolver=resolve,
        extensions=[PermissionExtension(permissions=[HasScopes(scope)])],
        description=(
            f"Changes to {noun} in your jurisdiction as they commit, from a cursor: a page at "
            "once if any are waiting, then each time more commit. Ends when your client is revoked."
        ),
    )


FEEDS = (
    ("msme", Scope.RECORDS_READ, "MSMEs"),
    ("cooperative", Scope.RECORDS_READ, "cooperatives"),
    ("participation", Scope.RECORDS_READ, "programme participation"),
    ("guarantee", Scope.GUARANTEES_WRITE, "the guarantees you issued"),
)


@strawberry.type
class ChangeFeedQuery:
    msme_changes: ChangePage | None = _pull(*FEEDS[0])
    cooperative_changes: ChangePage | None = _pull(*FEEDS[1])
    participation_changes: ChangePage | None = _pull(*FEEDS[2])
    guarantee_changes: ChangePage | None = _pull(*FEEDS[3])


@strawberry.type(description="Changes as they commit, over a WebSocket (graphql-transport-ws).")
class Subscription:
    msme_changes: ChangePage = _follow(*FEEDS[0])
    cooperative_changes: ChangePage = _follow(*FEEDS[1])
    participation_changes: ChangePage = _follow(*FEEDS[2])
    guarantee_changes: ChangePage = _follow(*FEEDS[3])


__all__ = ["ChangeFeedQuery", "Subscription"]
