"""schema.visible on its own: what a scope set's schema holds, and that each is built once.
Each client's view over HTTP is tested in test_introspection.py."""

from __future__ import annotations

import graphql

from auth.scopes import Scope
from schema.build import sdl
from schema.visible import ClientSchemas

FULL = graphql.build_schema(sdl())


def test_every_scope_sees_the_whole_published_schema() -> None:
    every = ClientSchemas(sdl).for_scopes(Scope).schema
    assert set(every.type_map) == set(FULL.type_map)
    for name, kind in FULL.type_map.items():
        if isinstance(kind, graphql.GraphQLObjectType | graphql.GraphQLInputObjectType):
            assert set(every.type_map[name].fields) == set(kind.fields), name  # type: ignore[union-attr]


def test_no_scope_sees_only_the_unguarded_fields_and_what_they_reach() -> None:
    nothing = ClientSchemas(sdl).for_scopes(()).schema
    assert nothing.mutation_type is None
    assert set(nothing.query_type.fields) == {  # type: ignore[union-attr]
        "indonesia",
        "programme",
        "programmes",
        "region",
        "viewer",
    }
    assert "participants" not in nothing.type_map["Programme"].fields  # type: ignore[union-attr]


def test_each_scope_set_is_built_once() -> None:
    read: list[str] = []

    def full() -> str:
        read.append("sdl")
        return sdl()

    schemas = ClientSchemas(full)
    figures = schemas.for_scopes([Scope.AGGREGATES_READ])
    assert schemas.for_scopes({"aggregates:read"}) is figures
    assert schemas.for_scopes([Scope.AGGREGATES_READ, Scope.TARGETS_READ]) is not figures
    assert read == ["sdl"]
