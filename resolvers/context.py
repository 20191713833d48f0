"""What every resolver receives: the caller, its loaders and the limits it runs under."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from auth.principal import Principal
from db.engine import autocommit
from resolvers.access import AccessNotes
from resolvers.loaders import Loaders


@dataclass(frozen=True, slots=True)
class Limits:
    max_page_size: int
    default_page_size: int
    suppression_k: int = 5


@dataclass
class Context:
    principal: Principal
    engine: AsyncEngine
    limits: Limits
    request: Request | None = None
    autocommit_view: InitVar[AsyncEngine | None] = None
    reads: AsyncEngine = field(init=False)
    loaders: Loaders = field(init=False)
    accesses: AccessNotes = field(default_factory=AccessNotes)

    def __post_init__(self, autocommit_view: AsyncEngine | None) -> None:
        """`engine` is for writes that need a transaction; `reads` (autocommit) for the rest. The
        app passes the one view its lifespan made; building one costs a little per request."""
        self.reads = autocommit_view or autocommit(self.engine)
        self.loaders = Loaders(self.reads, self.principal.jurisdiction)
