"""What every record mutation shares: the transaction, the actor, and turning refusals into the
contract's error codes (NOT_FOUND, CONFLICT, BAD_USER_INPUT, FORBIDDEN, SERVICE_UNAVAILABLE)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from auth.principal import Principal
from auth.scopes import Scope
from db.writes import (
    Duplicate,
    ImportInProgress,
    NotFound,
    NotPermitted,
    StaleVersion,
    msmes,
    vocabulary,
)
from db.writes.history import Actor
from domain.errors import InvalidValue
from domain.identifiers import validate_record_id
from domain.records import Namer, Vocabulary, validate_place
from resolvers import Node, calendar
from resolvers.context import Context
from resolvers.errors import ErrorCode, bad_input, coded_error
from resolvers.policy import AccessPolicy


class _Draft(Protocol):
    """What `checked_record` reads of a draft before the domain check: its region."""

    @property
    def region(self) -> str: ...


class _Placed(Protocol):
    """What `checked_record` reads of a checked record to place it."""

    @property
    def regency_code(self) -> str: ...

    @property
    def district_code(self) -> str | None: ...


_D = TypeVar("_D", bound=_Draft)
_C = TypeVar("_C", bound=_Placed)
_D_in = TypeVar("_D_in", bound=_Draft, contravariant=True)
_C_out = TypeVar("_C_out", bound=_Placed, covariant=True)


class _Check(Protocol[_D_in, _C_out]):
    """A domain check of a whole draft (check_registered_msme, check_cooperative)."""

    def __call__(
        self, draft: _D_in, vocabulary: Vocabulary, /, *, name: Namer
    ) -> _C_out | list[InvalidValue]: ...


def actor_of(principal: Principal) -> Actor:
    return Actor(principal.client_id, principal.organisation or principal.org_kind.value)


def record_key(raw: str, field: str) -> int:
    """Record ids are the `id` the read API returns: digits."""
    try:
        return validate_record_id(raw, field=field)
    except InvalidValue as error:
        raise bad_input(error.field, error.reason) from None


def invalid(errors: list[InvalidValue]) -> GraphQLError:
    """The first broken rule as the error, all of them in `extensions.problems`."""
    error = bad_input(errors[0].field, errors[0].reason)
    if len(errors) > 1 and error.extensions is not None:
        error.extensions["problems"] = [
            {"field": problem.field, "reason": problem.reason} for problem in errors
        ]
    return error


def needs_personal_data_scope(policy: AccessPolicy, field: str) -> None:
    """Writing an owner's personal data takes pii:read as well as records:write."""
    if not policy.reads_personal_data:
        raise coded_error(
            ErrorCode.FORBIDDEN,
            f"{field}: writing personal data requires scope {Scope.PII_READ.value}",
            field=field,
            requiredScopes=[Scope.PII_READ.value],
        )


async def check_place(
    connection: AsyncConnection,
    policy: AccessPolicy,
    *,
    regency: str,
    district: str | None,
    fields: tuple[str, str],
) -> None:
    """A record may only be put (or moved) inside the writer's jurisdiction, in a real region."""
    if not policy.places(regency):
        raise coded_error(
            ErrorCode.FORBIDDEN,
            f"{fields[0]}: {regency} is outside your jurisdiction ({policy.records.code})",
            field=fields[0],
        )
    wanted: Collection[str] = {regency} if district is None else {regency, district}
    known = await vocabulary.existing_regions(connection, wanted)
    if regency not in known:
        raise bad_input(fields[0], f"{regency} is not a known regency or city code")
    if district is not None and district not in known:
        raise bad_input(fields[1], f"{district} is not a known kecamatan code")


async def check_region_first(
    connection: AsyncConnection, policy: AccessPolicy, region: str, fields: tuple[str, str]
) -> None:
    """The region on its own, before any other rule: moving a record out of the jurisdiction
    is FORBIDDEN and a region that does not exist is a region error, even when the stored
    kecamatan no longer fits the new region (which the full check would report first)."""
    try:
        place = validate_place(region, None, region_field=fields[0], district_field=fields[1])
    except InvalidValue:
        return  # a malformed code: the full check names it with the record's other errors
    await check_place(connection, policy, regency=place.regency, district=None, fields=fields)


async def rules(connection: AsyncConnection) -> Vocabulary:
    return await vocabulary.load(connection, today=calendar.today())


async def checked_record(
    connection: AsyncConnection,
    policy: AccessPolicy,
    draft: _D,
    argument: str,
    check: _Check[_D, _C],
) -> _C:
    """A record's draft checked whole by its domain `check`, its fields named under `argument`
    ("input" or "changes"), and placed: the region alone first (`check_region_first`), then
    the checked regency and kecamatan inside the writer's jurisdiction (`check_place`)."""
    fields = (f"{argument}.region", f"{argument}.district")
    await check_region_first(connection, policy, draft.region, fields)
    checked = check(draft, await rules(connection), name=lambda field: f"{argument}.{field}")
    if isinstance(checked, list):
        raise invalid(checked)
    await check_place(
        connection,
        policy,
        regency=checked.regency_code,
        district=checked.district_code,
        fields=fields,
    )
    return checked


def at_version(current: Node, version: int) -> Node:
    """The record `lock` returned, if it is still at the version the client read; else
    StaleVersion, which `writing` turns into CONFLICT."""
    if current.version != version:
        raise StaleVersion(current.version)
    return current


@asynccontextmanager
async def writing(info: Info[Context, Any]) -> AsyncIterator[AsyncConnection]:
    """One transaction per mutation: the change, its history and its audit entry commit
    together or not at all. The writer notes what it wrote (`Context.accesses`) inside the
    block, last, so that its entry is appended within the transaction (`Context.transaction`)."""
    try:
        async with info.context.transaction() as connection:
            yield connection
    except NotFound as missing:
        raise coded_error(ErrorCode.NOT_FOUND, str(missing), field=missing.field) from None
    except StaleVersion as stale:
        raise coded_error(
            ErrorCode.CONFLICT,
            f"version: the record was changed meanwhile and is now at version {stale.current}; "
            "read it again and reapply your change",
            field="version",
            currentVersion=stale.current,
        ) from None
    except Duplicate as duplicate:
        raise coded_error(
            ErrorCode.CONFLICT, f"{duplicate.field}: {duplicate.reason}", field=duplicate.field
        ) from None
    except NotPermitted as refused:
        raise coded_error(
            ErrorCode.FORBIDDEN, f"{refused.field}: {refused.reason}", field=refused.field
        ) from None
    except InvalidValue as error:
        raise bad_input(error.field, error.reason) from None
    except ImportInProgress:
        raise import_in_progress() from None


async def after_imports(connection: AsyncConnection) -> None:
    """`msmes.after_imports` outside `writing` (an eligibility check, a guarantee): a write that
    names an MSME waits for an import in progress, and is refused as `writing` refuses it."""
    try:
        await msmes.after_imports(connection)
    except ImportInProgress:
        raise import_in_progress() from None


def import_in_progress() -> GraphQLError:
    """Not the caller's doing and not a fault: the same write succeeds once the import ends."""
    return coded_error(
        ErrorCode.SERVICE_UNAVAILABLE,
        "a bulk import is writing the MSME register; this mutation changed nothing: send it "
        "again after Retry-After seconds",
    )
