"""Direct answers for aggregate figures (`msmeFigures`, `cooperativeFigures`, `graduations`).

A national figure table by province and scale has some 150 cells of half a dozen fields each:
graphql-core completing them one by one costs more CPU than the rollup statement behind them.
Here the cells come from the very functions the resolvers call (schema/figure_query.py: same
argument checks, rollup choice and small-cell suppression) and are rendered straight from the
shape of the selection; key regions are fetched in one batch like those of record pages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLObjectType,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values

from resolvers.context import Context
from schema import figure_query
from schema.direct_shapes import Shape, Unsupported, guard_scopes, shape_of, strawberry_input
from schema.inputs import CooperativeFilter, MsmeFilter

Cells = Callable[[Context, dict[str, Any]], Awaitable[list[SimpleNamespace]]]


async def _msme_figures(context: Context, arguments: dict[str, Any]) -> list[SimpleNamespace]:
    given = strawberry_input(MsmeFilter, arguments.get("filter"))
    return await figure_query.msme_figures(context, arguments["groupBy"], given)


async def _cooperative_figures(
    context: Context, arguments: dict[str, Any]
) -> list[SimpleNamespace]:
    given = strawberry_input(CooperativeFilter, arguments.get("filter"))
    return await figure_query.cooperative_figures(context, arguments["groupBy"], given)


async def _graduations(context: Context, arguments: dict[str, Any]) -> list[SimpleNamespace]:
    return await figure_query.graduations(
        context, arguments["year"], arguments["groupBy"], arguments.get("region")
    )


FIGURES: dict[str, Cells] = {
    "msmeFigures": _msme_figures,
    "cooperativeFigures": _cooperative_figures,
    "graduations": _graduations,
}


@dataclass(frozen=True, slots=True)
class FigurePlan:
    key: str
    root: str
    node: FieldNode
    definition: GraphQLField
    scopes: tuple[Any, ...]
    cell_shape: Shape


def figure_plan(
    key: str,
    node: FieldNode,
    definition: GraphQLField,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> FigurePlan:
    cell_type = get_named_type(definition.type)
    if not isinstance(cell_type, GraphQLObjectType):
        raise Unsupported("not a list of objects")
    cell_shape = shape_of(cell_type, node.selection_set, fragments)
    return FigurePlan(key, node.name.value, node, definition, guard_scopes(definition), cell_shape)


async def fetch_figures(
    context: Context, plan: FigurePlan, variables: VariableValues
) -> list[SimpleNamespace]:
    """The published cells; input errors raise GraphQLError, so the executor reports them."""
    arguments = get_argument_values(plan.definition, plan.node, variables)
    cells = await FIGURES[plan.root](context, arguments)
    context.accesses.field_used(f"Query.{plan.root}", (scope.value for scope in plan.scopes))
    return cells
