"""A request header read straight from the ASGI scope, for the layers every /graphql request
passes through. Starlette's `Headers` builds a wrapper, lower-cases and encodes the name on each
lookup, and raises KeyError inside `.get` for a header that is absent; here a lookup is one pass
over the list. Names are compared as ASGI servers give them, in lower case, as `Headers` does."""

from __future__ import annotations

from starlette.types import Scope


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of the header `name` (lower case), or None when the request has none."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
