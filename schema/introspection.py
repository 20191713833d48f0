"""Introspection per client: open in development, in production only for listed clients.

Production integrations run known operations; the schema itself is published as
schema.graphql, so refusing introspection costs them nothing and denies a prober the map.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension

from resolvers.context import Context


class IntrospectionPolicy(SchemaExtension):
    def __init__(self, allows: Callable[[str], bool]) -> None:
        self.allows = allows

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        client_id = context.principal.client_id if isinstance(context, Context) else ""
        if not self.allows(client_id):
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                NoSchemaIntrospectionCustomRule,
            )
        yield


def policy(setting: str) -> Callable[[str], bool]:
    """'all', 'none', or a comma-separated list of client ids allowed to introspect."""
    if setting == "all":
        return lambda client_id: True
    allowed = frozenset(part.strip() for part in setting.split(",") if part.strip()) - {"none"}
    return allowed.__contains__
