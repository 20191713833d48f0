"""Differencing attacks on the published figures, as a ministry, a BUMD or another province
would try them with nothing but the figure fields and their filters.

Each attack takes two or more published tables and adds and subtracts cells so that what is
left is a set of records no single cell shows: the businesses of a regency that are not micro,
a province's firms founded in one year (national minus the other provinces), the inactive
MSMEs of a province (an indicator minus a figure), and so on. With cell suppression alone such
differences gave the hidden values exactly (the harness checks that exact figures still give
them exactly). Under the cell-key method:

- no derived turnover or business volume of a protected set of records is exact;
- no derived count of a small protected set (1 to k-1 businesses) is certain: the counts
  consistent with everything published about it, under the public perturbation table, are
  always more than one, even after intersecting every derivation of the same set;
- the derived counts are wrong more often than right, and the attacker cannot tell which;
- the same records asked for through different queries always get the same figures.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import Principal
from auth.scopes import OrgKind, Scope
from db.engine import create_engine
from domain.identifiers import is_within
from tests.support.databases import as_service
from tests.support.demo_data import release_figures
from tests.support.graphql import LIMITS, principal, run

MINISTRY = principal(OrgKind.MINISTRY, "ID")
BUMD = principal(OrgKind.BUMD, "62")
KALBAR = principal(OrgKind.PROVINCE, "61")
EVERYWHERE = principal(OrgKind.PROVINCE, "ID")  # reads every record: every figure exact
TABLE = LIMITS.perturbation
K = LIMITS.suppression_k
PROVINCES = ("61", "62", "64")
SUM_FIELD = {"msmeFigures": "turnoverSum", "cooperativeFigures": "businessVolumeSum"}
ENUMS = {"scale", "type"}

Cells = dict[tuple[str | None, ...], dict[str, Any]]


@pytest.fixture(scope="module")
async def engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    """The attacks compare the ministry's figures, read from a release, with the truth, read
    from the records: a release made now, not the one of the session's start, which records
    other modules wrote since have outdated."""
    await asyncio.to_thread(release_figures, demo_url)
    engine = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


def _literal(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if name in ENUMS else f'"{value}"'


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


async def _table(
    engine: AsyncEngine,
    who: Principal,
    root: str,
    group_by: Iterable[str],
    given: Mapping[str, Any],
) -> Cells:
    arguments = [f"groupBy: [{', '.join(group_by)}]"]
    if given:
        pairs = ", ".join(f"{_camel(n)}: {_literal(n, v)}" for n, v in given.items())
        arguments.append(f"filter: {{{pairs}}}")
    document = (
        f"{{ {root}({', '.join(arguments)}) {{ key {{ value }} suppressed count "
        f"{SUM_FIELD[root]} }} }}"
    )
    result = await run(engine, who, document)
    assert result.errors is None, result.errors
    return {
        tuple(part["value"] for part in cell["key"]): {
            "count": cell["count"],
            "sum": None if cell[SUM_FIELD[root]] is None else int(cell[SUM_FIELD[root]]),
            "suppressed": cell["suppressed"],
        }
        for cell in result.data[root]
    }


VOLUME_TARGET_YEAR = 2025  # KOP_PRODUKSI_VOLUME's one target (Kalteng, sinergi/seed_data)


async def _indicators(engine: AsyncEngine, who: Principal, code: str) -> dict[str, Any]:
    document = (
        f'{{ indicator(code: "{code}") {{ targets {{ jurisdiction {{ code }} computedValue }} }} }}'
    )
    result = await run(engine, who, document)
    assert result.errors is None, result.errors
    return {
        target["jurisdiction"]["code"]: target["computedValue"]
        for target in result.data["indicator"]["targets"]
    }


def _records(
    root: str, given: Mapping[str, Any], group_by: Iterable[str], key: Iterable[str | None]
) -> tuple[Any, ...]:
    """What a set of records is, whichever query isolates it: so derivations of the same set
    through different attacks are recognised as one target."""
    constraints = {(name.upper(), value) for name, value in given.items() if name != "region"}
    region = given.get("region")
    if region is not None:
        constraints.add(("PROVINCE" if len(region) == 2 else "REGENCY", region))
    constraints |= {(name, value) for name, value in zip(group_by, key, strict=True) if value}
    if any(name == "REGENCY" for name, _ in constraints):
        constraints = {(name, value) for name, value in constraints if name != "PROVINCE"}
    return (root, *sorted(constraints))


def _region(group_by: list[str], key: tuple[str | None, ...], given: Mapping[str, Any]) -> Any:
    """The narrowest region a cell is about: its regency or province, else the filter's."""
    for dimension in ("REGENCY", "PROVINCE"):
        if dimension in group_by and key[group_by.index(dimension)] is not None:
            return key[group_by.index(dimension)]
    return given.get("region")


@dataclass(frozen=True)
class Term:
    sign: int
    count: int | None
    total: int | None
    exact: bool  # the attacker may read these records: the value is not perturbed
    summed: bool = True  # a figure cell publishes a sum (None: no record has a value)
    split: bool = False  # perturbed in two parts (`Attack.split`): two draws of noise
    partial: bool = False  # of members: a part too small to show may be left out, or the cell


@dataclass
class Derivation:
    family: str
    target: tuple[Any, ...]
    terms: list[Term]
    truth_count: int
    truth_total: int | None
    region: str | None  # where the records it isolates are (None: anywhere)
    others: int  # how many of them the attacker may not read

    @property
    def counted(self) -> bool:
        """Every count it needs was published."""
        return all(term.count is not None for term in self.terms)

    @property
    def count(self) -> int:
        return sum(term.sign * (term.count or 0) for term in self.terms)

    @property
    def total(self) -> int | None:
        published = (term.count is not None or term.total is not None for term in self.terms)
        if not all(term.summed for term in self.terms) or not all(published):
            return None
        return sum(term.sign * (term.total or 0) for term in self.terms)


def _candidates(term: Term) -> set[int]:
    """The true counts a published count may come from, under the public table."""
    assert term.count is not None
    if term.exact:
        return {term.count}
    if term.split:  # any split of the count into two parts, each within its noise
        reach = 2 * TABLE.max_noise
        shown = set(range(max(0, term.count - reach), term.count + reach + 1))
    else:
        low = max(0, term.count - TABLE.max_noise)
        shown = {
            count
            for count in range(low, term.count + TABLE.max_noise + 1)
            if term.count - count in TABLE.distribution(count)
        }
    if not term.partial:
        return shown
    # Each part left out held fewer than k once perturbed: up to k - 1 + D records.
    left_out = (2 if term.split else 1) * (K - 1 + TABLE.max_noise)
    return {count + more for count in shown for more in range(left_out + 1)}


def feasible(derivation: Derivation) -> set[int]:
    """Every value of the derived count consistent with what was published."""
    values = {0}
    for term in derivation.terms:
        values = {value + term.sign * count for value in values for count in _candidates(term)}
    return {value for value in values if value >= 0}


def _of_members(group_by: Iterable[str], given: Mapping[str, Any]) -> bool:
    """A table of members, whose cells too few to show are left out: a programme's
    participants, or businesses by or of a scale (their owners' finances)."""
    return "programme" in given or "scale" in given or "SCALE" in group_by


@dataclass
class Attack:
    """Runs each query as the attacker and as an exact reader, and records derivations."""

    engine: AsyncEngine
    attacker: Principal
    derivations: list[Derivation] = field(default_factory=list)

    def split(self, region: str | None) -> bool:
        """A cell about `region` holds records of the attacker's jurisdiction and others, and it
        may read neither: each part is perturbed on its own key, so the published count's noise
        is the sum of two draws."""
        jurisdiction = self.attacker.jurisdiction
        if jurisdiction == "ID" or self.attacker.has(Scope.RECORDS_READ):
            return False
        return region is None or (region != jurisdiction and is_within(jurisdiction, region))

    def exact(self, region: str | None) -> bool:
        jurisdiction = self.attacker.jurisdiction
        return (
            region is not None
            and self.attacker.org_kind is OrgKind.PROVINCE
            and (region == jurisdiction or region.startswith(f"{jurisdiction}."))
        )

    async def both(
        self, root: str, group_by: list[str], given: Mapping[str, Any]
    ) -> tuple[Cells, Cells]:
        """The table as published to the attacker, and exact, each exact cell with how many of
        its records the attacker may read (`own`)."""
        published = await _table(self.engine, self.attacker, root, group_by, given)
        truth = await _table(self.engine, EVERYWHERE, root, group_by, given)
        region = given.get("region")
        if self.exact(region):
            own = truth
        elif region is None and self.exact(self.attacker.jurisdiction):
            mine = {**given, "region": self.attacker.jurisdiction}
            own = await _table(self.engine, EVERYWHERE, root, group_by, mine)
        else:
            own = {}
        for key, cell in truth.items():
            cell["own"] = own.get(key, {"count": 0})["count"]
        if _of_members(group_by, given):  # a cell of members too few to show is left out
            for key in truth:
                published.setdefault(key, {"count": 0, "sum": None, "suppressed": False})
            for cell in published.values():
                cell["partial"] = True
        return published, truth

    def add(
        self,
        family: str,
        target: tuple[Any, ...],
        region: str | None,
        parts: list[tuple[int, dict[str, Any] | None, dict[str, Any] | None, str | None]],
    ) -> None:
        """`parts`: (sign, published cell, exact cell, region of the cell); a missing cell
        holds no record (the table has no row for it), or in a table of a programme's
        participants none it may show (`both` fills it in)."""
        empty: dict[str, Any] = {"count": 0, "sum": None}
        terms = []
        truth_count, truth_total, own_count = 0, 0, 0
        for sign, published, exact, region in parts:
            shown = published or empty
            real = exact or empty
            summed = shown.get("summed", True)
            exact, split = self.exact(region), self.split(region)
            partial = shown.get("partial", False)
            terms.append(Term(sign, shown["count"], shown["sum"], exact, summed, split, partial))
            truth_count += sign * real["count"]
            truth_total += sign * (real["sum"] or 0)
            own_count += sign * real.get("own", 0)
        summed_all = all(term.summed for term in terms)
        self.derivations.append(
            Derivation(
                family,
                target,
                terms,
                truth_count,
                truth_total if summed_all else None,
                region,
                truth_count - own_count,
            )
        )

    async def with_and_without(
        self, root: str, group_by: list[str], base: dict[str, Any], extra: dict[str, Any]
    ) -> None:
        """A table with and without one more filter: each cell's difference is the records
        the filter leaves out."""
        all_published, all_truth = await self.both(root, group_by, base)
        some_published, some_truth = await self.both(root, group_by, {**base, **extra})
        for key, cell in all_truth.items():
            region = _region(group_by, key, base)
            target = (
                root,
                tuple(sorted(base.items())),
                tuple(group_by),
                key,
                "not",
                *extra.items(),
            )
            self.add(
                "with and without a filter",
                target,
                region,
                [
                    (1, all_published[key], cell, region),
                    (-1, some_published.get(key), some_truth.get(key), region),
                ],
            )

    async def national_against_provinces(
        self, root: str, dimension: str, given: dict[str, Any]
    ) -> None:
        """A national table against the same table per province: each province's cell is the
        national one minus the others; the province's own published cell is one more
        observation of the same records."""
        national, national_truth = await self.both(root, [dimension], given)
        provinces, provinces_truth = await self.both(root, ["PROVINCE", dimension], given)
        for (value,), cell in national_truth.items():
            if value is None:
                continue
            for province in PROVINCES:
                if (province, value) not in provinces_truth:
                    continue
                target = _records(root, given, ["PROVINCE", dimension], [province, value])
                others = [
                    (-1, provinces.get((other, value)), provinces_truth.get((other, value)), other)
                    for other in PROVINCES
                    if other != province
                ]
                self.add(
                    "national against per province",
                    target,
                    province,
                    [(1, national[(value,)], cell, None), *others],
                )
                self.add(
                    "the cell itself",
                    target,
                    province,
                    [
                        (
                            1,
                            provinces[(province, value)],
                            provinces_truth[(province, value)],
                            province,
                        )
                    ],
                )

    async def totals_against_subtotals(
        self, root: str, group_by: list[str], given: dict[str, Any]
    ) -> None:
        """Within one table: a total minus every other part of it is the remaining part."""
        published, truth = await self.both(root, group_by, given)
        for key in truth:
            for dimension, value in enumerate(key):
                if value is None:
                    continue
                total = (*key[:dimension], None, *key[dimension + 1 :])
                siblings = [
                    other
                    for other in truth
                    if other != key
                    and other[dimension] is not None
                    and all(other[i] == key[i] for i in range(len(key)) if i != dimension)
                ]
                target = _records(root, given, group_by, key)
                self.add(
                    "total minus subtotals",
                    target,
                    _region(group_by, key, given),
                    [
                        (1, published[total], truth[total], _region(group_by, total, given)),
                        *[
                            (-1, published[s], truth[s], _region(group_by, s, given))
                            for s in siblings
                        ],
                    ],
                )

    async def indicator_against_figures(
        self, code: str, root: str, given: dict[str, Any], sums: bool = False
    ) -> None:
        """An indicator for a province minus the figure of the same province: KOP_JUMLAH
        counts the cooperatives that are not dissolved, UMKM_JUMLAH the active micro, small and
        medium enterprises, KOP_PRODUKSI_VOLUME the volume of the target's book year of producers
        that are not dissolved; the figures count them all, so the difference is the dissolved
        or inactive ones (and the large enterprises, which are no MSMEs). A book year without
        figures (the demo's books reach 2024, the volume target is 2025's) has no volume (null)
        and leaves nothing to take apart."""
        if not self.attacker.has(Scope.TARGETS_READ):
            return
        published = await _indicators(self.engine, self.attacker, code)
        truth = await _indicators(self.engine, EVERYWHERE, code)
        for province, value in truth.items():
            if province not in PROVINCES or value is None:
                continue
            figures, figures_truth = await self.both(
                root, ["BOOK_YEAR", "STATUS"] if sums else [], {**given, "region": province}
            )
            shown = published[province]
            if sums:  # the indicator publishes no count: the truth's comes from the figures
                year = str(VOLUME_TARGET_YEAR)
                left_out = figures_truth.get((year, "dissolved"), {"count": 0})["count"]
                indicator = {"count": None, "sum": None if shown is None else int(shown)}
                exact = {
                    "count": figures_truth[(year, None)]["count"] - left_out,
                    "sum": int(value),
                }
                whole, whole_truth = figures[(year, None)], figures_truth[(year, None)]
            else:
                indicator = {"count": None if shown is None else int(shown), "summed": False}
                exact = {"count": int(value), "sum": None}
                whole, whole_truth = figures[()], figures_truth[()]
            self.add(
                "indicator against a figure",
                (code, province),
                province,
                [(1, whole, whole_truth, province), (-1, indicator, exact, province)],
            )

    async def share_against_figures(self) -> None:
        """UKM_PROPORSI (small and medium among the active businesses of every scale) times
        the published count of the active businesses gives the count of small and medium ones;
        minus the small ones, the medium ones. The figures' total of the active businesses is
        that whole (the same records, a large enterprise included)."""
        if not self.attacker.has(Scope.TARGETS_READ):
            return
        published = await _indicators(self.engine, self.attacker, "UKM_PROPORSI")
        truth = await _indicators(self.engine, EVERYWHERE, "UKM_PROPORSI")
        for region, share in published.items():
            given = {"region": region, "active": True} if region != "ID" else {"active": True}
            scales, scales_truth = await self.both("msmeFigures", ["SCALE"], given)
            whole, whole_truth = scales[(None,)], scales_truth[(None,)]
            if share is None or whole["count"] is None:
                continue
            both = {"count": round(Decimal(share) * whole["count"] / 100), "sum": None}
            both_truth = {
                "count": round(Decimal(truth[region]) * whole_truth["count"] / 100),
                "sum": None,
            }
            scope = None if region == "ID" else region
            self.add(
                "share against figures",
                _records("msmeFigures", given, ["SCALE"], ["medium"]),
                scope,
                [
                    (1, {**both, "summed": False}, both_truth, scope),
                    (-1, scales.get(("small",)), scales_truth.get(("small",)), scope),
                ],
            )


async def _run_attacks(engine: AsyncEngine, attacker: Principal) -> Attack:
    attack = Attack(engine, attacker)
    micro = {"scale": "MICRO"}
    for group_by in (["REGENCY"], ["REGENCY", "KBLI_SECTION"], ["REGENCY", "ACTIVE"]):
        await attack.with_and_without("msmeFigures", group_by, {}, micro)
    await attack.with_and_without("msmeFigures", ["REGENCY"], {}, {"active": True})
    await attack.with_and_without("msmeFigures", ["PROVINCE", "SCALE"], {}, {"kbli_section": "C"})
    await attack.with_and_without("msmeFigures", ["PROVINCE", "ESTABLISHED_YEAR"], {}, micro)
    for programme in ("PR-MBG", "PR-MMM"):
        given = {"programme": programme}
        await attack.with_and_without("msmeFigures", ["REGENCY"], given, micro)
        await attack.with_and_without("msmeFigures", ["REGENCY"], {}, given)
    await attack.with_and_without("cooperativeFigures", ["REGENCY", "TYPE"], {}, {"active": True})
    await attack.with_and_without(
        "cooperativeFigures", ["REGENCY"], {"type": "PRODUSEN"}, {"active": True}
    )
    for dimension in ("ESTABLISHED_YEAR", "KBLI_SECTION", "SCALE"):
        await attack.national_against_provinces("msmeFigures", dimension, {})
    await attack.national_against_provinces("msmeFigures", "ESTABLISHED_YEAR", micro)
    await attack.national_against_provinces("cooperativeFigures", "TYPE", {})
    await attack.totals_against_subtotals("msmeFigures", ["PROVINCE", "SCALE"], {})
    for province in PROVINCES:
        await attack.totals_against_subtotals(
            "msmeFigures", ["REGENCY", "SCALE"], {"region": province}
        )
    await attack.share_against_figures()
    await attack.indicator_against_figures("KOP_JUMLAH", "cooperativeFigures", {})
    await attack.indicator_against_figures("UMKM_JUMLAH", "msmeFigures", {})
    await attack.indicator_against_figures(
        "KOP_PRODUKSI_VOLUME", "cooperativeFigures", {"type": "PRODUSEN"}, sums=True
    )
    return attack


@pytest.fixture(scope="module", params=[MINISTRY, BUMD, KALBAR], ids=["ministry", "bumd", "kalbar"])
async def attack(request: pytest.FixtureRequest, engine: AsyncEngine) -> Attack:
    return await _run_attacks(engine, request.param)


def _protected(attack: Attack, derivation: Derivation) -> bool:
    """The derivation isolates records the attacker may not read: its own come out exactly
    wherever they are (a national cell is its own records exact, the others perturbed)."""
    return not attack.exact(derivation.region) and derivation.others > 0


async def test_the_harness_recovers_every_cell_exactly_from_exact_figures(
    engine: AsyncEngine,
) -> None:
    """Against exact figures (what suppression published outside its hidden cells) every
    derivation gives the truth: the attacks below are real attacks."""
    exact = await _run_attacks(engine, EVERYWHERE)
    small = [d for d in exact.derivations if 0 < d.truth_count < K]
    assert len(small) > 100
    for derivation in exact.derivations:
        if derivation.counted:
            assert derivation.count == derivation.truth_count
        assert derivation.total == derivation.truth_total


async def test_no_sum_of_protected_records_comes_out_exactly(attack: Attack) -> None:
    """The turnover or business volume of the records a difference isolates is never exact,
    single businesses included."""
    isolated = [
        d
        for d in attack.derivations
        if _protected(attack, d) and d.truth_count > 0 and d.total is not None
    ]
    singles = [d for d in isolated if d.truth_count == 1]
    assert len(singles) >= 10, "the attacks isolate single businesses"
    exact = [d for d in isolated if d.total == d.truth_total]
    assert exact == []


async def test_no_protected_count_is_ever_certain(attack: Attack) -> None:
    """Every derivation of a protected set of records, and all of them together (national
    minus the other provinces, the cell itself, total minus subtotals, ...), leave more than
    one count possible under the public perturbation table: small sets included."""
    possible: dict[tuple[Any, ...], set[int]] = {}
    derivations: dict[tuple[Any, ...], int] = defaultdict(int)
    truth: dict[tuple[Any, ...], int] = {}
    for derivation in attack.derivations:
        if not derivation.counted or not _protected(attack, derivation):
            continue
        if derivation.truth_count == 0:
            continue
        values = feasible(derivation)
        assert derivation.truth_count in values
        possible[derivation.target] = possible.get(derivation.target, values) & values
        derivations[derivation.target] += 1
        truth[derivation.target] = derivation.truth_count
    assert sum(0 < count < K for count in truth.values()) >= 20, "small sets are isolated"
    assert sum(n >= 2 for n in derivations.values()) >= 20, "sets are derived several ways"
    pinned = {target: values for target, values in possible.items() if len(values) < 2}
    assert pinned == {}


async def test_derived_counts_are_wrong_more_often_than_right(attack: Attack) -> None:
    """About a third of differences happen to hit the truth (when the noises cancel), small
    sets a little more often since their noise is narrower; nothing tells which."""
    attempts = [
        d for d in attack.derivations if d.counted and _protected(attack, d) and d.truth_count
    ]
    small = [d for d in attempts if d.truth_count < K]
    assert len(small) >= 20
    for derivations, bound in ((attempts, 0.5), (small, 0.6)):
        right = [d for d in derivations if d.count == d.truth_count]
        assert len(right) / len(derivations) < bound


async def _count_and_sum(
    engine: AsyncEngine, root: str, group_by: list[str], given: dict[str, Any], key: Any
) -> tuple[int | None, int | None]:
    cell = (await _table(engine, MINISTRY, root, group_by, given))[key]
    return cell["count"], cell["sum"]


async def test_the_same_records_get_the_same_figures_through_every_query(
    engine: AsyncEngine,
) -> None:
    """Kalteng's micro businesses as a cell of national tables, of a province's table, as a
    subtotal and as a filtered total, from rollups and from the records: one value, so asking
    again or in other words reveals nothing new."""
    micro = {"scale": "MICRO"}
    kalteng = {"region": "62"}
    ways = [
        ("msmeFigures", ["PROVINCE", "SCALE"], {}, ("62", "micro")),
        ("msmeFigures", ["SCALE", "PROVINCE"], {}, ("micro", "62")),
        ("msmeFigures", ["SCALE"], kalteng, ("micro",)),
        ("msmeFigures", ["PROVINCE"], micro, ("62",)),
        ("msmeFigures", [], {**kalteng, **micro}, ()),
        ("msmeFigures", ["REGENCY", "SCALE"], kalteng, (None, "micro")),
        ("msmeFigures", ["KBLI_SECTION"], {**kalteng, **micro}, (None,)),
        # Regency by founding year is in no rollup: these read the records.
        ("msmeFigures", ["REGENCY", "ESTABLISHED_YEAR"], {**kalteng, **micro}, (None, None)),
    ]
    answers = {await _count_and_sum(engine, *way) for way in ways}
    answers.add(await _count_and_sum(engine, *ways[0]))  # and the same query again
    (answer,) = answers
    assert answer[0] is not None

    producers = {"region": "62", "type": "PRODUSEN"}
    statuses = await _table(engine, EVERYWHERE, "cooperativeFigures", ["STATUS"], producers)
    assert ("dissolved",) not in statuses, "the indicator counts the producers not dissolved"
    by_year = await _table(engine, MINISTRY, "cooperativeFigures", ["BOOK_YEAR"], producers)
    cell = by_year.get((str(VOLUME_TARGET_YEAR),))  # none: no books of that year, no volume
    volume = None if cell is None else cell["sum"]
    indicator = await _indicators(engine, MINISTRY, "KOP_PRODUKSI_VOLUME")
    assert indicator["62"] == (None if volume is None else str(volume))  # suppressed, or no books
