"""The bounds on a GraphQL request (schema.limits checks a document against them), apart from
the checks: settings read them, and a command that serves no GraphQL does not load graphql-core
to read its settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5_000
    max_cost: int = 50_000
    max_document_bytes: int = 100_000
    max_batch: int = 10
    max_body_bytes: int = 2_000_000
    max_response_bytes: int = 5_000_000
    default_page_size: int = 20
