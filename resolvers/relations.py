"""Nested relations. Each goes through a per-request loader: one statement per level per page."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from strawberry import Parent
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from db.queries.indicator_values import COMPUTABLE
from db.queries.indicators import TargetKey
from db.queries.paging import Page
from domain.identifiers import RegionLevel, province_of, region_level
from domain.personal import owner_finances
from resolvers import Node
from resolvers.aggregates import indicator_value, own_part
from resolvers.context import Context
from resolvers.lookahead import node_columns, selected_columns
from resolvers.paging import PageResult, decode_cursor, page_size

Source = Parent[Node]


async def regency(root: Source, info: Info[Context, Any]) -> Node:
    return await info.context.loaders.region.load(root.regency_code)


async def province(root: Source, info: Info[Context, Any]) -> Node:
    return await info.context.loaders.region.load(root.province_code)


async def district(root: Source, info: Info[Context, Any]) -> Node | None:
    if root.district_code is None:
        return None
    return await info.context.loaders.region.load(root.district_code)


async def region_parent(root: Source, info: Info[Context, Any]) -> Node | None:
    if root.parent_code is None:
        return None
    return await info.context.loaders.region.load(root.parent_code)


async def region_province(root: Source, info: Info[Context, Any]) -> Node | None:
    """The province a region lies in (a province is its own); none for the nation."""
    if region_level(root.code) is RegionLevel.NATIONAL:
        return None
    return await info.context.loaders.region.load(province_of(root.code))


async def region_children(root: Source, info: Info[Context, Any]) -> list[Node]:
    return await info.context.loaders.region_children.load(root.code)


async def jurisdiction_region(root: Source, info: Info[Context, Any]) -> Node:
    return await info.context.loaders.region.load(root.jurisdiction)


async def cooperative_of_msme(root: Source, info: Info[Context, Any]) -> Node | None:
    if root.cooperative_id is None:
        return None
    found = await info.context.loaders.cooperative.load(
        (root.cooperative_id, selected_columns(info))
    )
    info.context.accesses.records_returned("cooperative", found is not None)
    return found


async def member_count(root: Source, info: Info[Context, Any]) -> int:
    return await info.context.loaders.member_count.load(root.id)


async def member_msmes(
    root: Source, info: Info[Context, Any], first: int | None = None, after: str | None = None
) -> PageResult:
    """A page of the members; `after`, an MSME cursor (a page's `endCursor`), applies to every
    cooperative the field is resolved for, so the loader still reads them in one statement."""
    size = page_size(first, info.context.limits)
    start = decode_cursor(after, "msme")
    page = await info.context.loaders.members.load((root.id, size, start, node_columns(info)))
    info.context.accesses.rows_returned("msme", page.rows)

    async def count() -> int:
        return await info.context.loaders.member_count.load(root.id)

    return PageResult("msme", page.rows, page.has_next, count)


async def owner(root: Source, info: Info[Context, Any]) -> Node | None:
    """Selects the personal columns the policy allows of those asked for (with the NIK, which
    names the data subject in the audit log)."""
    columns = info.context.policy.owner_columns(selected_columns(info))
    if not columns:
        return None
    found = await info.context.loaders.owner.load((root.id, columns))
    if found is not None:
        info.context.accesses.personal_data_of(found.nik)
    return found


async def scale_history(root: Source, info: Info[Context, Any]) -> list[Node]:
    """The scale changes, when their figures are selected, the owners whose figures they are
    named (the owner's finances, domain.personal.OWNER_FINANCES): each change keeps the owner
    on record at its write (migration 0062)."""
    figures = bool(owner_finances("ScaleChange", selected_columns(info)))
    changes: list[Node] = await info.context.loaders.scale_history.load((root.id, figures))
    if figures:
        for nik in {nik for change in changes for nik in change.owner_niks}:
            if nik is not None:
                info.context.accesses.personal_data_of(nik)
    return changes


async def msme_participations(
    root: Source, info: Info[Context, Any], first: int | None = None
) -> list[Node]:
    return await _participations(info.context.loaders.msme_participations, root, info, first)


async def cooperative_participations(
    root: Source, info: Info[Context, Any], first: int | None = None
) -> list[Node]:
    return await _participations(info.context.loaders.cooperative_participations, root, info, first)


async def _participations(
    loader: DataLoader[tuple[int, int], Page],
    root: Source,
    info: Info[Context, Any],
    first: int | None,
) -> list[Node]:
    """The first participations: a business may take part under any number of roles."""
    page = await loader.load((root.id, page_size(first, info.context.limits)))
    info.context.accesses.records_returned("participation", len(page.rows))
    return list(page.rows)


async def participation_programme(root: Source, info: Info[Context, Any]) -> Node:
    return await info.context.loaders.programme.load(root.programme_id)


async def participation_msme(root: Source, info: Info[Context, Any]) -> Node | None:
    if root.msme_id is None:
        return None
    found = await info.context.loaders.msme.load((root.msme_id, selected_columns(info)))
    info.context.accesses.rows_returned("msme", () if found is None else (found,))
    return found


async def participation_cooperative(root: Source, info: Info[Context, Any]) -> Node | None:
    if root.cooperative_id is None:
        return None
    found = await info.context.loaders.cooperative.load(
        (root.cooperative_id, selected_columns(info))
    )
    info.context.accesses.records_returned("cooperative", found is not None)
    return found


async def participants(
    root: Source, info: Info[Context, Any], first: int | None = None
) -> list[Node]:
    """The first participants the caller may see (those whose business is in its jurisdiction)."""
    size = page_size(first, info.context.limits)
    page = await info.context.loaders.participants.load((root.id, size))
    info.context.accesses.records_returned("participation", len(page.rows))
    return list(page.rows)


async def targets(root: Source, info: Info[Context, Any]) -> list[Node]:
    return await info.context.loaders.targets.load(root.code)


async def realisations(
    root: Source, info: Info[Context, Any], first: int | None = None
) -> list[Node]:
    return await reports(info, (root.indicator_code, root.jurisdiction, root.year), first)


async def reports(info: Info[Context, Any], key: TargetKey, first: int | None) -> list[Node]:
    """The latest reports for (indicator, jurisdiction, year): every report is kept, so the
    history is paged like participants. A target's and an indicator's `realisations` both read
    them here, through one loader: the keys resolved together are one statement per page size."""
    size = page_size(first, info.context.limits)
    page = await info.context.loaders.realisations.load((key, size))
    return list(page.rows)


async def computed_value(root: Source, info: Info[Context, Any]) -> Decimal | None:
    """The indicator worked out from the records, beside what was reported, under the same
    disclosure control as the figures: from the live records when exact, else from the
    current figure release, as their figures are."""
    if root.indicator_code not in COMPUTABLE:
        return None
    key = (root.indicator_code, root.jurisdiction, root.year)
    part = own_part(info.context, root.jurisdiction)
    loaders = info.context.loaders
    released = info.context.policy.reads_released_figures(root.jurisdiction)
    loader = loaders.released_indicator if released else loaders.computed_indicator
    if part is None:
        computed, own = await loader.load(key), None
    else:  # in the same batch as every other target's
        own_key = (root.indicator_code, part, root.year)
        computed, own = await loader.load_many([key, own_key])
    if computed is None:
        return None
    return indicator_value(info.context, computed, root.jurisdiction, own)


async def progress(root: Source, info: Info[Context, Any]) -> Decimal | None:
    """Latest reported realisation (else the computed value) as a share of the target."""
    if root.kind != "target" or not root.value:
        return None
    reports = await realisations(root, info)
    achieved = reports[0].value if reports else await computed_value(root, info)
    if achieved is None:
        return None
    return (Decimal(achieved) / Decimal(root.value)).quantize(Decimal("0.0001"))


async def target_indicator(root: Source, info: Info[Context, Any]) -> Node:
    return await info.context.loaders.indicator.load(root.indicator_code)


def key_region_code(part: Source) -> str | None:
    """The region named by a province or regency part of an aggregate cell's key."""
    if part.dimension not in ("province", "regency") or part.value is None:
        return None
    return str(part.value)


async def key_region(root: Source, info: Info[Context, Any]) -> Node | None:
    code = key_region_code(root)
    if code is None:
        return None
    return await info.context.loaders.region.load(code)
