"""Scope guards, declared once per field and published in the SDL as `@requiresScopes`.

A guarded field that the caller is not entitled to resolves to null with a FORBIDDEN error at its
path; the rest of the answer is unaffected. The guard runs before the field's resolver, so the
data behind a refused field is never read.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLField
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location
from strawberry.types import Info
from strawberry.types.field import StrawberryField

from auth.scopes import Scope
from resolvers.context import Context
from resolvers.errors import ErrorCode

REQUIRES_SCOPES = "requiresScopes"


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name=REQUIRES_SCOPES,
    description="The field answers only for tokens that carry all of these scopes.",
)
class RequiresScopes:
    scopes: list[str]


class HasScopes(BasePermission):
    def __init__(self, *scopes: Scope) -> None:
        self.scopes = scopes
        names = [scope.value for scope in scopes]
        self.message = f"requires scope {' '.join(names)}"
        self.error_extensions = {"code": ErrorCode.FORBIDDEN.value, "requiredScopes": names}
        self._directive = RequiresScopes(scopes=names)

    @property
    def schema_directive(self) -> object:
        """Publishes the required scopes on the field in the SDL."""
        return self._directive

    def has_permission(self, source: Any, info: Info[Context, Any], **kwargs: Any) -> bool:
        return admitted(info.context, f"{info.path.typename}.{info.field_name}", self.scopes)


def admitted(context: Context, field: str, scopes: tuple[Scope, ...]) -> bool:
    """Whether the caller may use `field` (`Type.field`), guarded by `scopes`; a field used is
    noted with its scopes for the audit entry."""
    granted = context.policy.may(*scopes)
    if granted:
        context.accesses.field_used(field, (scope.value for scope in scopes))
    return granted


def requires(*scopes: Scope, **field_options: Any) -> Any:
    """A `strawberry.field` that only answers for callers holding every one of `scopes`."""
    guard = PermissionExtension(permissions=[HasScopes(*scopes)])
    return strawberry.field(
        extensions=[guard, *field_options.pop("extensions", [])], **field_options
    )


def guard_scopes(field: GraphQLField) -> tuple[Scope, ...]:
    """The scopes `requires` guards a field of the built schema with; none when unguarded."""
    definition = field.extensions.get("strawberry-definition")
    return () if definition is None else declared_scopes(definition)


def declared_scopes(field: StrawberryField) -> tuple[Scope, ...]:
    """The scopes `requires` guards a field's declaration with; none when unguarded."""
    scopes: tuple[Scope, ...] = ()
    for extension in field.extensions:
        if isinstance(extension, PermissionExtension):
            for permission in extension.permissions:
                if isinstance(permission, HasScopes):
                    scopes += permission.scopes
    return scopes
