"""Every field an operation hands out, derived from its document, for the audit entry.

A field the caller may not use answers null with FORBIDDEN, so neither it nor anything below it
is handed out; everything else the document selects is. Personal data is what lies below a field
guarded by `pii:read` (the one declaration that makes a field personal), itemised: `Owner.nik`,
`Owner.fullName`, `Owner.phone`, … Derived once per document and scope set (schema/engine.py),
identically for every request that sends it. An owner handed out inside a JSON record (the
change feed's `record`) is named by no field of the document: the access policy itemises it
(AccessPolicy.audit_entry). An MSME's figures that are its owner's finances
(domain.personal.OWNER_FINANCES: `Msme.annualTurnover`, `ScaleChange.capital`, …) are personal
too, whoever reads them: the entry names their owner as the data subject. A selection that
@skip or @include leaves out hands out nothing: a document with either is derived again for
each request, from its variables (`conditional`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    BREAK,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLNamedType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    Visitor,
    get_directive_values,
    get_named_type,
    visit,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.utilities import get_operation_ast

from auth.scopes import Scope
from domain.personal import owner_finances
from resolvers.access import Touched
from schema.permissions import guard_scopes


def touched_by(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    may: Callable[..., bool],
    variables: dict[str, Any] | None,
) -> Touched:
    """What `touched_fields` finds for the document's operation named `operation_name`, with
    the `variables` the request sent."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return Touched()
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    coerced = None
    if conditional(document):
        coerced = coerced_variables(schema, operation, variables or {})
    return touched_fields(schema, operation, fragments, may, coerced)


def coerced_variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: dict[str, Any]
) -> VariableValues | None:
    """The values of the operation's variables as the executor coerces them; None when they
    are refused (nothing then ran)."""
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
    return None if isinstance(coerced, list) else coerced


CONDITIONS = frozenset({GraphQLSkipDirective.name, GraphQLIncludeDirective.name})


class _Conditions(Visitor):
    """Whether a document has a @skip or @include anywhere."""

    found = False

    def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
        if node.name.value in CONDITIONS:
            self.found = True
            return BREAK
        return None


def conditional(document: DocumentNode) -> bool:
    """Whether what the document hands out depends on the request's variables (@skip,
    @include): if not, what `touched_fields` finds holds for every request that sends it."""
    conditions = _Conditions()
    visit(document, conditions)
    return conditions.found


def touched_fields(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    may: Callable[..., bool],
    variables: VariableValues | None = None,
) -> Touched:
    """Every field the operation hands out to a caller for whom `may(*scopes)` tells which
    guarded fields answer, leaving out the selections @skip and @include leave out with the
    request's coerced `variables`; without them, every selection counts (a document with
    neither directive, or whose variables were refused, which hands out nothing)."""
    found: set[str] = set()
    personal: set[str] = set()

    def walk(
        parent: GraphQLNamedType | None,
        selection_set: SelectionSetNode | None,
        below_personal: bool = False,
    ) -> bool:
        """Whether the selection set hands out a field (`__typename` is none)."""
        if parent is None or selection_set is None:
            return False
        handed = False
        for selection in selection_set.selections:
            if variables is not None and not _included(selection, variables):
                continue
            if isinstance(selection, FieldNode):
                name = selection.name.value
                fields = getattr(parent, "fields", {})
                if name.startswith("__") or name not in fields:
                    continue
                field = fields[name]
                scopes: tuple[Scope, ...] = guard_scopes(field)
                if scopes and not may(*scopes):
                    continue
                handed = True
                found.add(f"{parent.name}.{name}")
                guarded = Scope.PII_READ in scopes
                below = walk(
                    get_named_type(field.type), selection.selection_set, below_personal or guarded
                )
                # a person selected for no field of theirs (`owner { __typename }`) is still
                # shown, and named as a data subject: the field itself tells the trail why
                shown_alone = guarded and not below
                if below_personal or shown_alone or _owner_finances(parent.name, field):
                    personal.add(f"{parent.name}.{name}")
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                narrowed = parent if condition is None else schema.get_type(condition.name.value)
                handed = walk(narrowed, selection.selection_set, below_personal) or handed
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    spread = schema.get_type(fragment.type_condition.name.value)
                    handed = walk(spread, fragment.selection_set, below_personal) or handed
        return handed

    walk(schema.get_root_type(operation.operation), operation.selection_set)
    return Touched(tuple(sorted(found)), tuple(sorted(personal)))


def _included(selection: SelectionNode, variables: VariableValues) -> bool:
    """Whether the executor answers `selection`, as its @skip and @include decide."""
    if not selection.directives:
        return True
    skip = get_directive_values(GraphQLSkipDirective, selection, variables)
    if skip is not None and skip["if"]:
        return False
    include = get_directive_values(GraphQLIncludeDirective, selection, variables)
    return include is None or bool(include["if"])


def _owner_finances(type_name: str, field: GraphQLField) -> bool:
    """Whether the field is an owner's finances (domain.personal.OWNER_FINANCES)."""
    definition = field.extensions.get("strawberry-definition")
    return definition is not None and bool(owner_finances(type_name, [definition.python_name]))
