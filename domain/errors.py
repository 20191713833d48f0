"""The one error the business rules raise for bad input."""


class InvalidValue(ValueError):
    """A value broke a domain rule; `field` names the input it came from so callers can say so."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
