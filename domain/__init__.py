"""Business rules of Sinergi as plain functions.

Nothing here knows about GraphQL, HTTP or the database: the rules take plain values and return
plain values, so they are tested on their own and reused by the resolvers, the CLI and the bench.
"""
