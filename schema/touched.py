"""Every field an operation hands out, derived from its document, for the audit entry.

A field the caller may not use answers null with FORBIDDEN, so neither it nor anything below it
is handed out; everything else the document selects is. Personal data is what lies below a field
guarded by `pii:read` (the one declaration that makes a field personal), itemised: `Owner.nik`,
`Owner.fullName`, `Owner.phone`, … Derived once per document and scope set (schema/engine.py),
identically for every request that sends it. An owner handed out inside a JSON record (the
change feed's `record`) is named by no field of the document: the access policy itemises it
(AccessPolicy.audit_entry). An MSME's figures that are its owner's finances
(domain.personal.OWNER_FINANCES: `Msme.annualTurnover`, `ScaleChange.capital`, …) are personal
too, whoever reads them: the entry names their owner as the data subject.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
)
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
) -> Touched:
    """What `touched_fields` finds for the document's operation named `operation_name`."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return Touched()
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    return touched_fields(schema, operation, fragments, may)


def touched_fields(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    may: Callable[..., bool],
) -> Touched:
    """Every field the operation hands out to a caller for whom `may(*scopes)` tells which
    guarded fields answer."""
    found: set[str] = set()
    personal: set[str] = set()

    def walk(
        parent: GraphQLNamedType | None,
        selection_set: SelectionSetNode | None,
        below_personal: bool = False,
    ) -> None:
        if parent is None or selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                fields = getattr(parent, "fields", {})
                if name.startswith("__") or name not in fields:
                    continue
                field = fields[name]
                scopes: tuple[Scope, ...] = guard_scopes(field)
                if scopes and not may(*scopes):
                    continue
                found.add(f"{parent.name}.{name}")
                if below_personal or _owner_finances(parent.name, field):
                    personal.add(f"{parent.name}.{name}")
                personal_below = below_personal or Scope.PII_READ in scopes
                walk(get_named_type(field.type), selection.selection_set, personal_below)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                narrowed = parent if condition is None else schema.get_type(condition.name.value)
                walk(narrowed, selection.selection_set, below_personal)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    spread = schema.get_type(fragment.type_condition.name.value)
                    walk(spread, fragment.selection_set, below_personal)

    walk(schema.get_root_type(operation.operation), operation.selection_set)
    return Touched(tuple(sorted(found)), tuple(sorted(personal)))


def _owner_finances(type_name: str, field: GraphQLField) -> bool:
    """Whether the field is an owner's finances (domain.personal.OWNER_FINANCES)."""
    definition = field.extensions.get("strawberry-definition")
    return definition is not None and bool(owner_finances(type_name, [definition.python_name]))
