"""The GraphQL schema: types, inputs and the scopes each guarded field requires."""
