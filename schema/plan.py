"""The plan of an operation whose every root field reads records in a shape PostgreSQL can
write, or makes a write whose stored row it shows.

graphql-core's executor walks an operation field by field: for a lookup whose whole answer is
one statement's JSON, building its execution context, coercing each argument again and wrapping
the one resolver in Strawberry's layers cost more CPU than the statement. So the engine plans
each document once (schema/engine.py): when every root field is `__typename`, or one of the
record reads (and the `viewer`, which the request's token answers) schema/query.py names
(`PLANNED`), or of the writes schema/mutation.py names (`WRITES`), and each one's selection
compiles (schema/compiled.py, schema/planned_write.py),
the plan holds, per root field, what a request needs to run it: the arguments coerced once,
with holes for their variables (schema/arguments.py), the scopes that guard it, the compiled
shape. A request then asks the access policy, runs the same statements the executor's resolvers
run (`compiled.record_json`, `compiled.page_json`, a write's own function) and places their
answers in the response in selection order.

A read's plan never writes an error. Whatever it does not take on (a guard that refuses, an
argument a check refuses, a non-null field that turns out null) raises, `NotPlanned` or the
check's own error, and the executor answers the request from the start, as it answers every
other document, with the same resolvers: one way to answer each field, one place errors are
made. A write is the exception once it has begun: answering it again would write again. The
write's function raises the same coded errors whoever calls it, and the plan locates them as
the executor does (graphql-core's `located_error`, at the field's node and path); what comes
before it (the guard, the arguments) still goes back to the executor. So an operation makes at
most one write by its plan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import strawberry
from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    OperationDefinitionNode,
    located_error,
)
from graphql.execution.values import VariableValues
from strawberry.types.base import StrawberryList
from strawberry.types.nodes import SelectedField

from auth.scopes import Scope
from resolvers.context import Context
from resolvers.paging import PageResult, encode_cursor
from schema import compiled
from schema.arguments import Arguments, coerced_arguments
from schema.errors import graphql_schema
from schema.permissions import admitted, guard_scopes
from schema.planned_write import RowShape, WriteRoot


@dataclass(frozen=True, slots=True)
class ContextRoot:
    """A root field whose answer the request's context holds, so no statement reads it
    (`viewer`): `of` makes the object that both its resolver and its plan answer from."""

    node_type: type
    of: Callable[[Context], object]


Root = compiled.RecordRoot | compiled.ListRoot | compiled.PageRoot | WriteRoot | ContextRoot
_PLAIN = (str, int, bool)
"""The field types a context root's plan answers as they are: JSON has them as they are."""


class NotPlanned(Exception):
    """The executor answers this request instead (see the module's docstring)."""


class _Failed(Exception):
    """A write's error, located as the executor locates it: the field answers null with it."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True, slots=True)
class _Step:
    key: str
    run: Callable[[Context, VariableValues], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[_Step, ...]

    async def run(self, context: Context, variables: VariableValues) -> ExecutionResult:
        """The operation's answer; raises NotPlanned, or the error of a read, for the executor
        to answer instead. Steps run one after the other, as the executor runs a mutation's."""
        data: dict[str, Any] = {}
        errors: list[GraphQLError] = []
        for step in self.steps:
            try:
                data[step.key] = await step.run(context, variables)
            except _Failed as failed:
                data[step.key] = None
                errors.append(failed.error)
        return ExecutionResult(data, errors or None)


def plan(
    schema: strawberry.Schema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    planned: Mapping[str, Root],
) -> Plan | None:
    """The operation's plan, or None when the executor answers it; `planned`: the root fields
    of the operation's type that a plan may answer."""
    root_type = graphql_schema(schema).get_root_type(operation.operation)
    if root_type is None or operation.directives:
        return None
    steps: list[_Step] = []
    keys: set[str] = set()
    writes = 0
    for node in operation.selection_set.selections:
        if not isinstance(node, FieldNode) or node.directives:
            return None
        key = node.alias.value if node.alias else node.name.value
        if key in keys:  # merged by GraphQL: the executor's to do
            return None
        keys.add(key)
        name = node.name.value
        if name == "__typename":
            steps.append(_Step(key, _constant(root_type.name)))
            continue
        root = planned.get(name)
        if root is None:
            return None
        graphql_field = root_type.fields[name]
        strawberry_field = schema.get_field_for_type(name, root_type.name)
        assert strawberry_field is not None
        arguments = coerced_arguments(schema, graphql_field, strawberry_field.arguments, node)
        scopes = guard_scopes(graphql_field)
        (selected,) = compiled.selections([node], fragments)
        assert isinstance(selected, SelectedField)
        field_name = f"{root_type.name}.{name}"
        try:
            if isinstance(root, ContextRoot):
                run = _from_context(root, selected, scopes, field_name)
            elif isinstance(root, WriteRoot):
                writes += 1
                shape = _row_shape(schema, root, graphql_field, selected)
                run = _write(root, shape, node, key, arguments, scopes, field_name)
            elif isinstance(root, compiled.RecordRoot):
                run = _record(root, root.plan(selected), arguments, scopes, field_name)
            elif isinstance(root, compiled.ListRoot):
                run = _list(root, root.plan(selected), scopes, field_name)
            else:
                run = _page(root, selected, arguments, scopes, field_name)
        except compiled.Unsupported:
            return None
        steps.append(_Step(key, run))
    if writes > 1:  # a field refused after a write: the executor cannot start again
        return None
    return Plan(tuple(steps))


def _constant(value: str) -> Callable[[Context, VariableValues], Awaitable[Any]]:
    async def run(context: Context, variables: VariableValues) -> str:
        return value

    return run


def _from_context(
    root: ContextRoot, selected: SelectedField, scopes: tuple[Scope, ...], field_name: str
) -> Callable[[Context, VariableValues], Awaitable[Any]]:
    type_name, fields = compiled.definitions(root.node_type)
    picked: list[tuple[str, str | None]] = []  # response key, attribute (None: __typename)
    for key, inner in compiled.keyed(selected.selections, type_name):
        if inner.name == "__typename":
            picked.append((key, None))
            continue
        field_type = fields[inner.name].type
        if isinstance(field_type, StrawberryList):
            field_type = field_type.of_type
        if field_type not in _PLAIN:
            raise compiled.Unsupported(f"{type_name}.{inner.name}")
        picked.append((key, fields[inner.name].python_name))

    async def run(context: Context, variables: VariableValues) -> dict[str, Any]:
        _admit(context, scopes, field_name)
        value = root.of(context)
        return {key: type_name if name is None else getattr(value, name) for key, name in picked}

    return run


def _admit(context: Context, scopes: tuple[Scope, ...], field_name: str) -> None:
    """A guarded field is noted as used, as the executor's guard notes it; an unguarded one
    (the programmes) is not."""
    if scopes and not admitted(context, field_name, scopes):
        raise NotPlanned(field_name)


Found = orjson.Fragment | compiled.RowsNeeded | None
"""What a compiled read answers: its JSON, none, or ROWS_NEEDED."""


def _record(
    root: compiled.RecordRoot,
    record_plan: compiled.RecordPlan,
    arguments: Arguments,
    scopes: tuple[Scope, ...],
    field_name: str,
) -> Callable[[Context, VariableValues], Awaitable[Any]]:
    async def read(context: Context, variables: VariableValues) -> Found:
        (given,) = arguments(variables).values() if root.fixed is None else (root.fixed,)
        return await compiled.record_json(
            context, root, record_plan, root.checked(given), variables.coerced
        )

    return _compiled_read(read, scopes, field_name)


def _list(
    root: compiled.ListRoot,
    record_plan: compiled.RecordPlan,
    scopes: tuple[Scope, ...],
    field_name: str,
) -> Callable[[Context, VariableValues], Awaitable[Any]]:
    async def read(context: Context, variables: VariableValues) -> Found:
        return await compiled.list_json(context, root, record_plan, variables.coerced)

    return _compiled_read(read, scopes, field_name)


def _compiled_read(
    read: Callable[[Context, VariableValues], Awaitable[Found]],
    scopes: tuple[Scope, ...],
    field_name: str,
) -> Callable[[Context, VariableValues], Awaitable[Any]]:
    """`read` run once the field's guard admits the caller; NotPlanned when its statement
    cannot answer (a guarded field refused below the root, a null in a non-null field)."""

    async def run(context: Context, variables: VariableValues) -> orjson.Fragment | None:
        _admit(context, scopes, field_name)
        found = await read(context, variables)
        if isinstance(found, compiled.RowsNeeded):
            raise NotPlanned(field_name)
        return found

    return run


def _row_shape(
    schema: strawberry.Schema, root: WriteRoot, graphql_field: GraphQLField, selected: SelectedField
) -> RowShape:
    """A nullable object's shape: an error of a non-null write would null the whole answer."""
    if not isinstance(graphql_field.type, GraphQLObjectType):
        raise compiled.Unsupported("a non-null or abstract write")
    return root.shape(graphql_field.type, selected, schema.config.default_resolver)


def _write(
    root: WriteRoot,
    shape: RowShape,
    node: FieldNode,
    key: str,
    arguments: Arguments,
    scopes: tuple[Scope, ...],
    field_name: str,
) -> Callable[[Context, VariableValues], Awaitable[Any]]:
    async def run(context: Context, variables: VariableValues) -> dict[str, Any]:
        _admit(context, scopes, field_name)
        given = arguments(variables)
        try:
            return shape.answer(await root.write(context, **given))
        except Exception as error:  # refused, or written: answered here, never again
            raise _Failed(located_error(error, [node], [key])) from None

    return run


def _page(
    root: compiled.PageRoot,
    selected: SelectedField,
    arguments: Arguments,
    scopes: tuple[Scope, ...],
    field_name: str,
) -> Callable[[Context, VariableValues], Awaitable[Any]]:
    page_plan = root.plan(selected)
    connection = f"{root.type_name}Connection"
    parts = compiled.keyed(selected.selections, connection)
    for _, part in parts:
        if part.name == "pageInfo":
            for _, inner in compiled.keyed(part.selections, "PageInfo"):
                if inner.name not in ("hasNextPage", "endCursor", "__typename"):
                    raise compiled.Unsupported(inner.name)
        elif part.name not in ("nodes", "edges", "totalCount", "__typename"):
            raise compiled.Unsupported(part.name)
    if not page_plan.lists:
        raise compiled.Unsupported("a page without nodes or edges")

    async def run(context: Context, variables: VariableValues) -> dict[str, Any]:
        _admit(context, scopes, field_name)
        given = arguments(variables)
        where = await root.where(context, given.get("filter"))
        built = await compiled.page_json(
            context,
            root,
            page_plan,
            first=given.get("first"),
            after=given.get("after"),
            where=where,
            variables=variables.coerced,
        )
        if built is compiled.ROWS_NEEDED:
            raise NotPlanned(field_name)
        assert isinstance(built, PageResult)
        answer: dict[str, Any] = {}
        for key, part in parts:
            if part.name in ("nodes", "edges"):
                answer[key] = built.lists[key]
            elif part.name == "totalCount":
                answer[key] = await built.count()
            elif part.name == "__typename":
                answer[key] = connection
            else:
                answer[key] = _page_info(part, built)
        return answer

    return run


def _page_info(selected: SelectedField, built: PageResult) -> dict[str, Any]:
    end = None if built.end is None else encode_cursor(built.kind, built.end)
    values = {"hasNextPage": built.has_next, "endCursor": end, "__typename": "PageInfo"}
    return {
        key: values[inner.name] for key, inner in compiled.keyed(selected.selections, "PageInfo")
    }
