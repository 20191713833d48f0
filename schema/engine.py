"""The one execution path of every operation a client sends.

A document is parsed and validated once (per document and operation name; what a client may
use is decided at execution, by the scope guards, so the plan is the same for every client) and
planned; a request then coerces its variables and runs the plan when the operation has one
(every root field a record read that compiles: schema/plan.py), else graphql-core's executor,
whose root fields for records compile their selection into the same statements, in which
PostgreSQL writes the JSON (schema/compiled.py, embedded by schema/execution.py). Strawberry's
own request pipeline around the executor (its hooks, its result processing) cost more CPU than
a lookup's statement; its schema extensions are applied here, once: error coding, the audit
entry (with the operation's name) and the figure cache.

What this module does not answer (None) is left to Strawberry's view, which answers it with the
same schema and executor: documents that do not parse or validate and variables that do not
coerce (checked against the full schema, which is public as the SDL; their suggestions name
only what the client's own schema shows: schema/suggestions.py), introspection (answered on the
client's schema), batches. The view takes a document's validation from where the engine
left it (schema/validation.py): a document is validated once, not once by each.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.utilities import get_operation_ast

from auth.scopes import Scope
from db.errors import HeldUp, ReadTimedOut
from resolvers.access import AccessNotes, Audited, Touched
from resolvers.context import Context
from resolvers.policy import AccessPolicy
from schema.compiled import PLANS
from schema.documents import parse_document
from schema.errors import coded, graphql_schema, unexpected
from schema.execution import EmbeddingExecutionContext
from schema.figure_cache import FigureCache
from schema.introspection import INTROSPECTION_FIELDS, root_fields
from schema.mutation import WRITES
from schema.plan import Plan, Root, plan
from schema.query import PLANNED
from schema.touched import coerced_variables, conditional, touched_fields
from schema.validation import validation_errors

logger = logging.getLogger("sinergi.engine")
PLANNED_ROOTS: dict[OperationType, Mapping[str, Root]] = {
    OperationType.QUERY: PLANNED,
    OperationType.MUTATION: WRITES,
}
FIGURES = frozenset({"msmeFigures", "cooperativeFigures", "graduations", "__typename"})
"""Root fields of figures: an operation of nothing else may be answered from the figure cache."""


@dataclass(frozen=True, slots=True)
class Prepared:
    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    figures_only: bool
    plan: Plan | None
    """How the request runs without the executor, when it can (schema/plan.py)."""
    declared: frozenset[str]
    """The names of the variables the operation declares: no other changes its answer."""
    conditional: bool
    """Whether a @skip or @include makes what it hands out depend on the request's variables:
    then `touched` is found for each request, not kept (schema/touched.py)."""
    touched: dict[frozenset[Scope], Touched] = field(default_factory=dict)
    """What the operation hands out, by the scopes of the caller (see schema/touched.py)."""


class Engine:
    def __init__(
        self,
        schema: strawberry.Schema,
        *,
        figures_cache_seconds: int = 0,
        max_tokens: int | None = None,
        size: int = 512,
    ) -> None:
        """`figures_cache_seconds`: how long a published figure table may be served again
        (schema/figure_cache.py); 0 computes every table afresh. `max_tokens`: the request
        guard's, so the engine takes the document the guard already parsed (schema/documents)."""
        self.schema = graphql_schema(schema)
        self._strawberry = schema
        self._max_tokens = max_tokens
        self._size = size
        self._prepared: OrderedDict[tuple[str, str | None], Prepared | None] = OrderedDict()
        self.figures = FigureCache(figures_cache_seconds) if figures_cache_seconds else None
        """The figure cache, told of each release by the process's listener (sinergi/app.py)."""

    def prepare(self, query: str, operation_name: str | None) -> Prepared | None:
        """The document parsed, validated and its operation chosen, kept for the next request."""
        key = (query, operation_name)
        if key in self._prepared:
            self._prepared.move_to_end(key)
            return self._prepared[key]
        prepared = self._prepare(query, operation_name)
        self._prepared[key] = prepared
        if len(self._prepared) > self._size:
            self._prepared.popitem(last=False)
        return prepared

    def _prepare(self, query: str, operation_name: str | None) -> Prepared | None:
        document = parse_document(query, self._max_tokens)
        if isinstance(document, GraphQLError):
            return None
        if validation_errors(self.schema, document):
            return None
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is OperationType.SUBSCRIPTION:
            return None
        fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        roots = root_fields(operation.selection_set, fragments.get)
        if roots & INTROSPECTION_FIELDS:
            return None
        figures_only = operation.operation is OperationType.QUERY and roots <= FIGURES
        planned = PLANNED_ROOTS[operation.operation]
        operation_plan = plan(self._strawberry, operation, fragments, planned)
        if operation_plan is None:  # the executor's resolvers find their fields' plans made
            PLANS.register(operation, fragments, planned)
        declared = frozenset(
            definition.variable.name.value for definition in operation.variable_definitions or ()
        )
        return Prepared(
            document,
            operation,
            fragments,
            figures_only and roots != {"__typename"},
            operation_plan,
            declared,
            conditional(document),
        )

    async def answer(self, context: Context, payload: object) -> dict[str, Any] | None:
        """The response to a single operation, or None to leave it to Strawberry's view."""
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return None
        query: str = payload["query"]
        operation_name = payload.get("operationName")
        variables = payload.get("variables") or {}
        if not isinstance(operation_name, str | None) or not isinstance(variables, dict):
            return None
        prepared = self.prepare(query, operation_name)
        if prepared is None:
            return None
        cache = self.figures if prepared.figures_only and not context.wrote_recently else None
        key = None
        if cache is not None:
            key = cache.key(
                query, operation_name, variables, prepared.declared, context.policy.figure_audience
            )
            cached = None if key is None else cache.get(key)
            if cached is not None:
                return {"data": cached}
        generation = 0 if cache is None else cache.generation
        name = prepared.operation.name
        context.audited = Audited(
            query,
            None if name is None else name.value,
            functools.cache(functools.partial(self._touched, prepared, context.policy, variables)),
        )
        try:
            result = await self._planned(prepared, context, variables)
            if result is None:
                executed = execute(
                    self.schema,
                    prepared.document,
                    context_value=context,
                    variable_values=variables,
                    operation_name=operation_name,
                    executor_class=EmbeddingExecutionContext,
                )
                result = await executed if isawaitable(executed) else executed
            if result.data is None and all(error.path is None for error in result.errors or ()):
                return None  # variables refused, nothing ran: their errors name what it sees
            await context.record()
        except Exception as error:  # the audit entry not written: nothing goes out
            result = ExecutionResult(None, [unexpected(error)])
        release = context.reads.read_release
        if self.figures is not None and release is not None:
            self.figures.released(release.number)  # `figureRelease` too: no older table after it
        if result.errors:
            return {
                "data": result.data,
                "errors": [error.formatted for error in coded(result.errors)],
            }
        if cache is not None and key is not None and result.data is not None:
            number = None if release is None else release.number
            cache.put(key, result.data, release=number, generation=generation)
        return {"data": result.data}

    async def _planned(
        self, prepared: Prepared, context: Context, variables: dict[str, Any]
    ) -> ExecutionResult | None:
        """The answer its plan gives, or None for the executor to answer, from the start."""
        if prepared.plan is None:
            return None
        definitions = prepared.operation.variable_definitions
        # Without definitions there is nothing to coerce: values sent for none are ignored.
        coerced = (
            get_variable_values(self.schema, definitions, variables)
            if definitions
            else VariableValues({}, {})
        )
        if isinstance(coerced, list):
            return None  # the executor reports them
        try:
            return await prepared.plan.run(context, coerced)
        except (ReadTimedOut, HeldUp):
            raise  # the executor would only run past the statement or lock timeout again
        except Exception:  # NotPlanned, or a failure the executor reports where it happens
            context.accesses = AccessNotes()  # what the plan noted, the executor notes again
            return None

    def _touched(
        self, prepared: Prepared, policy: AccessPolicy, variables: dict[str, Any]
    ) -> Touched:
        """What the operation hands out to the caller `policy` answers for: given the policy,
        not the request's context, which holds this (`Context.audited`) and would otherwise be
        left to the cyclic garbage collector to free, request after request."""
        if prepared.conditional:
            coerced = coerced_variables(self.schema, prepared.operation, variables)
            return touched_fields(
                self.schema, prepared.operation, prepared.fragments, policy.may, coerced
            )
        scopes = policy.principal.scopes
        found = prepared.touched.get(scopes)
        if found is None:
            found = prepared.touched[scopes] = touched_fields(
                self.schema, prepared.operation, prepared.fragments, policy.may
            )
        return found
