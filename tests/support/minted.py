"""Tokens as the app under test issues them, for tests that need one its token endpoint would
not give (issued in the past, for another issuer): signed with a key the test holds, and sealed
with the seal key of the tests' audit key (auth/tokens.py), as every token the app accepts is."""

from __future__ import annotations

from functools import cache
from typing import Any

from joserfc.jwk import ECKey

from auth import tokens
from tests.support.feed_cursors import default_audit_key


@cache
def seal_key() -> bytes:
    """The tokens' seal key of an app made with the tests' default settings."""
    return tokens.seal_key(default_audit_key())


def minted(key: ECKey, **arguments: Any) -> str:
    """`tokens.issue`'s token, signed with `key` and sealed as the app under test seals."""
    return tokens.issue(key, seal_key=seal_key(), **arguments)


def sealed(claims: dict[str, Any]) -> dict[str, Any]:
    """`claims` with their seal, as the app under test seals them: for a test signing claims
    `tokens.issue` would never write (no `iat`, an `exp` of its own) with a key it holds."""
    return {**claims, tokens.SEAL_CLAIM: tokens.seal(seal_key(), claims)}
