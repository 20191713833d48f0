"""Text a text column can hold: one rule for every string from outside that may reach a query.
The rule itself is the domain's (domain.text.storable), which holds its own values to it too."""

from __future__ import annotations

from domain.text import UNSTORABLE, storable

__all__ = ["UNSTORABLE", "storable"]
