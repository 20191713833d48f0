"""Who is asking: OAuth2 clients, tokens, scopes and jurisdictions.

Imports nothing from schema/ or resolvers/; the resource side hands a `Principal` to the rest.
"""
