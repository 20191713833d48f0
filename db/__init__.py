"""Persistence: tables, migrations, engines and the SQL each resolver runs.

Imports nothing from schema/, resolvers/ or auth/: the data layer takes plain values (a
jurisdiction code, a set of column names) and returns rows.
"""
