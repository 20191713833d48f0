"""GraphQL object types. Their sources are database rows, read by attribute name."""
