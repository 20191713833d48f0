"""Every document is validated once, whoever asks: the engine (schema/engine.py) preparing it and
Strawberry's view answering what the engine leaves to it (a document that does not validate,
say) take the errors from here, so a document the engine refused is not validated again.

Validation is worth doing once: its work grows with the square of the fields sharing a response
name in a selection (OverlappingFieldsCanBeMerged); the request guard bounds the fields a
document may select (QueryLimits.max_fields).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, GraphQLSchema, specified_rules
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from schema.errors import graphql_schema
from schema.introspection import IntrospectionAlone

RULES = (*specified_rules, IntrospectionAlone)


@lru_cache(maxsize=512)
def _validated(schema: GraphQLSchema, document: DocumentNode) -> tuple[GraphQLError, ...]:
    return tuple(validate_document(schema, document, RULES))


def validation_errors(schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
    """What is wrong with `document` on `schema`: GraphQL's rules, Strawberry's and ours. Keyed
    by the document object: both callers take it from schema/documents.py's one parse."""
    return list(_validated(schema, document))


class SharedValidation(SchemaExtension):
    """Strawberry's validation step, answered from `validation_errors`."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:
            context.pre_execution_errors = validation_errors(
                graphql_schema(context.schema), context.graphql_document
            )
        yield
