"""Credit-guarantee rule sets as data, versioned by effective date (docs/domain.md,
Credit-guarantee eligibility).

A rule set declares the rules it applies (`rules`, by id), so the catalogue can grow without
invalidating a stored version, and a decision replays under the rules it was made with.

Thresholds, rates and messages change by regulation (the KUR Permenko changes yearly) or by a
guarantor's board, so they live in JSON files or database rows, never in code. Reading is strict:
a typo in a rule-set file must stop the load, naming the key, rather than quietly becoming a
default that approves loans. What stays in code is the catalogue of rules: their stable ids and
codes, and the reasons each can give with the outcome each reason means; and, for a reason added
to a rule after versions were published, its wording in those versions, which are frozen.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from domain.dates import iso_date
from domain.errors import InvalidValue
from domain.identifiers import RUPIAH_MAX, is_province_code
from domain.scale import Scale
from domain.text import UNSTORABLE, storable

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")

# The rule sets shipped with Sinergi; a deployment may load others from the database instead.
BUNDLED_RULESETS = Path(__file__).with_name("rulesets")

SCALES = tuple(str(scale) for scale in Scale)
KSP_HEALTH = ("sehat", "cukup_sehat", "kurang_sehat", "tidak_sehat")


class Outcome(StrEnum):
    PASS = "PASS"  # noqa: S105 - an outcome, not a password
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"
    NOT_APPLICABLE = "NOT_APPLICABLE"


@dataclass(frozen=True)
class Message:
    """One reason's text in Indonesian (`id`) and English (`en`), with {placeholders}."""

    id: str
    en: str


@dataclass(frozen=True)
class RuleSpec:
    """A rule's stable code and the reasons it can give, each fixing the outcome it means.

    `later` words the reasons added after rule sets were published: a stored version is frozen
    and holds no message for them, so a rule set may word one itself and otherwise gets this."""

    code: str
    reasons: Mapping[str, Outcome]
    later: Mapping[str, Message] = field(default_factory=lambda: MappingProxyType({}))


_P, _F, _U, _NA = Outcome.PASS, Outcome.FAIL, Outcome.UNKNOWN, Outcome.NOT_APPLICABLE


def _spec(code: str, **reasons: Outcome) -> RuleSpec:
    return RuleSpec(code, MappingProxyType({"pass": _P, **reasons}))


# An MSME the register marks inactive (deactivateMsme) is a closed business. The reason came
# after versions 2026.1 and 2026.3; it names no value of the record, as 2026.3's reasons do not.
_INACTIVE = Message(
    "Usaha tercatat tidak aktif dalam register.",
    "The business is marked inactive in the register.",
)

# A borrower SLIK shows no credit facility (a first-time borrower) has no collectibility, so
# R06 passes. The reason came after versions up to 2026.5; it names only what the request states.
_NO_EXISTING_CREDIT = Message(
    "Pemberi kredit menyatakan SLIK tidak mencatat fasilitas kredit yang ada (debitur baru).",
    "The lender attests that SLIK shows no existing credit facility (a first-time borrower).",
)

RULES: Mapping[str, RuleSpec] = MappingProxyType({
    "R01": RuleSpec(
        "SUBJECT_REGISTERED",
        MappingProxyType({"pass": _P, "not_registered": _F, "unknown": _U, "inactive": _F}),
        MappingProxyType({"inactive": _INACTIVE}),
    ),
    "R02": _spec("SCALE_ELIGIBLE", cooperative=_NA, scale_unknown=_U, scale_not_allowed=_F,
                 sales_unknown=_U, sales_above_max=_F),
    "R03": _spec("BUSINESS_AGE_MIN_6M", too_young=_F, unknown=_U),
    "R04": _spec("FEASIBILITY_ASSESSED", not_feasible=_F, unknown=_U),
    "R05": _spec("NO_OTHER_PRODUCTIVE_CREDIT", has_other_credit=_F, unknown=_U),
    "R06": RuleSpec(
        "COLLECTIBILITY_OK",
        MappingProxyType({"pass": _P, "review": _U, "non_performing": _F, "unknown": _U,
                          "no_existing_credit": _P}),
        MappingProxyType({"no_existing_credit": _NO_EXISTING_CREDIT}),
    ),
    "R07": _spec("NOT_BLACKLISTED", blacklisted=_F, unknown=_U),
    "R08": _spec("DOCS_COMPLETE", nik_missing=_F, nik_unknown=_U, npwp_missing=_F,
                 npwp_unknown=_U),
    "R09": _spec("PLAFOND_IN_RANGE", below_min=_F, above_max=_F),
    "R10": _spec("IN_GUARANTOR_AREA", outside_area=_F, unknown=_U),
    "R11": _spec("COOP_ACTIVE", msme=_NA, status_unknown=_U, not_active=_F, rat_unknown=_U,
                 rat_overdue=_F, health_unknown=_U, unhealthy=_F),
    "R12": _spec("PROGRAM_CONFLICT", conflict=_F, unknown=_U),
    "R13": _spec("NO_GUARANTEE_DEFAULT", defaulted=_F),
})  # fmt: skip

# The names a message template may use; the engine fills every one of them. A guarantor is given
# the decision and its reasons, no value of the record (docs/domain.md, Credit-guarantee
# eligibility): a reason may name the rule set's thresholds, and what the request itself states
# (the loan, the check date, the collectibility the lender attests), which tell the asker nothing
# it did not know.
REQUEST_AND_THRESHOLD_PLACEHOLDERS = frozenset({
    "check_date", "loan_amount", "max_collectibility", "min_plafond", "max_plafond",
    "npwp_required_above", "allowed_scales", "max_annual_sales", "min_business_age_months",
    "collectibility_pass_max", "guarantor_province", "required_rat_book_year",
    "disallowed_ksp_health",
})  # fmt: skip
# Values of the business's record: its scale (for a sole proprietor, a band of the owner's sales,
# personal financial data), sales, start date, province, and a cooperative's status, last RAT
# and savings-and-loan health. Only versions published before the rule of
# RECORD_VALUES_WITHHELD_FROM name them; those are frozen, stored decisions replaying under them.
RECORD_PLACEHOLDERS = frozenset({
    "scale", "annual_sales", "business_start_date", "province_code", "coop_status",
    "last_rat_book_year", "ksp_health",
})  # fmt: skip
PLACEHOLDERS = REQUEST_AND_THRESHOLD_PLACEHOLDERS | RECORD_PLACEHOLDERS
RECORD_VALUES_WITHHELD_FROM = date(2026, 12, 6)
"""The day 2026.5, the first version whose reasons name no value of the record, took effect: a
version published since whose reasons name one is refused (`withholding_refusal`), whatever its
effective date. 2026.3 withheld some of them but 2026.4 still named the scale, province and a
cooperative's status and health, and only the loader can keep a next version from doing so."""
PUBLISHED_BEFORE_WITHHOLDING = MappingProxyType({
    ("JAMKRIDA_KTG_PRODUKTIF", "2026.1"):
        "b2d7c1da4a1bf19e334edb54c068d1eeb14cdbea30d8c544a04bc5956b67c49f",
    ("JAMKRIDA_KTG_PRODUKTIF", "2026.3"):
        "4f53253407510c9f5a62270e80ca54b03be9465a950bf18215b839979fe46d76",
    ("JAMKRIDA_KTG_PRODUKTIF", "2026.4"):
        "eb32e8bba6e10fe52d5fb028e6192e2dfb3edb4b4a7e762171a819681418694f",
})  # fmt: skip
"""The bundled versions published before that rule, whose reasons name values of the record,
each by its `content_digest`: preparation stores them on every database, new ones included, so
they are exempt; by their exact content, so that neither an effective date nor a reused version
label lets another version through. The digest hashes `to_dict()`, so a field added to
`RuleSet`, even with a default, changes every digest here: recompute the pins then."""


class StrictObject:
    """One JSON object read key by key; `done()` rejects any key nobody asked for.

    Shared by rule sets and stored eligibility facts, which must both round-trip losslessly.
    """

    def __init__(self, data: object, path: str = "") -> None:
        if not isinstance(data, dict):
            raise InvalidValue(path or "(root)", "must be a JSON object")
        self._data: dict[str, object] = data
        self._path = path
        self._seen: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _raw(self, key: str) -> object:
        if key not in self._data:
            raise InvalidValue(self._name(key), "is missing")
        self._seen.add(key)
        return self._data[key]

    def _typed(self, key: str, kind: type[T], value: object) -> T:
        # bool is an int in Python but never a number in these files.
        if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
            raise InvalidValue(self._name(key), f"must be of type {kind.__name__}")
        if isinstance(value, str) and not storable(value):
            # Stored as the document and in text columns: a NUL or a lone surrogate (JSON
            # spells one "\ud800") would fail there as a database or encoding error.
            raise InvalidValue(self._name(key), UNSTORABLE)
        return value

    def has(self, key: str) -> bool:
        return key in self._data

    def get(self, key: str, kind: type[T]) -> T:
        return self._typed(key, kind, self._raw(key))

    def optional(self, key: str, kind: type[T]) -> T | None:
        value = self._raw(key)
        return None if value is None else self._typed(key, kind, value)

    def fact(self, key: str, kind: type[T]) -> T | None:
        """A value that may be unknown: null, or absent from an object stored before the key
        existed (a fact added for a later rule), which is just as unknown."""
        return self.optional(key, kind) if self.has(key) else None

    def flag(self, key: str) -> bool:
        """A yes/no that is never unknown once gathered: false when absent from an object stored
        before the key existed, the decision then having been made without it."""
        return self.get(key, bool) if self.has(key) else False

    def day(self, key: str) -> date:
        try:
            return iso_date(self.get(key, str))
        except ValueError:
            raise InvalidValue(self._name(key), "must be a date written YYYY-MM-DD") from None

    def optional_day(self, key: str) -> date | None:
        return None if self._raw(key) is None else self.day(key)

    def fact_day(self, key: str) -> date | None:
        """As `fact`, for a date."""
        return self.optional_day(key) if self.has(key) else None

    def decimal(self, key: str) -> Decimal:
        """Rates are decimal strings ("0.70"): a JSON float would not survive a round trip."""
        text = self.get(key, str)
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise InvalidValue(self._name(key), "must be a decimal string like 0.70") from None
        if not value.is_finite():
            raise InvalidValue(self._name(key), "must be a finite decimal")
        return value

    def optional_decimal(self, key: str) -> Decimal | None:
        return None if self._raw(key) is None else self.decimal(key)

    def texts(self, key: str) -> tuple[str, ...]:
        items = self.get(key, list)
        if not all(isinstance(item, str) for item in items):
            raise InvalidValue(self._name(key), "must be a list of strings")
        if not all(storable(item) for item in items):
            raise InvalidValue(self._name(key), UNSTORABLE)
        return tuple(items)

    def child(self, key: str) -> StrictObject:
        return StrictObject(self._raw(key), self._name(key))

    def done(self) -> None:
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            raise InvalidValue(self._name(unknown[0]), "is not a known key")


def as_plain_dict(instance: DataclassInstance) -> dict[str, object]:
    """A dataclass as JSON-able values; decimals as strings, so nothing is lost to floats."""
    return {name: _plain(getattr(instance, name)) for name in _field_names(type(instance))}


@cache
def _field_names(cls: type[DataclassInstance]) -> tuple[str, ...]:
    """A dataclass's field names, found once per class: every eligibility check stores its
    facts, and `fields` walks the class's field table anew on each call."""
    return tuple(item.name for item in fields(cls))


def _plain(value: object) -> object:
    if value is None or isinstance(value, str | int | float):  # most values: as they are
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return as_plain_dict(value)
    return value


@dataclass(frozen=True)
class RuleText:
    """What a rule set says about one rule: its code (checked), legal basis and messages."""

    code: str
    legal_basis: str
    messages: Mapping[str, Message]


MAX_BUSINESS_AGE_MONTHS = 120
"""Ten years: longer than any guarantee product asks a business to have run. R03 counts the
months forward from the business's start date, so a minimum of thousands of years would carry
every check past the calendar's last year (R03 is then UNKNOWN, domain/eligibility.py). Held to
when publishing (`bounds_refusal`), not when reading."""
PRODUCT_MAX = 60
"""The longest product name a rule set may have: `eligibility_rulesets.product` and a
decision's `product` (db/models.py) are varchar of this length."""
VERSION_MAX = 40
"""The longest version label a rule set may have: `eligibility_rulesets.version` and a
decision's `ruleset_version` (db/models.py) are varchar of this length."""
_AMOUNT = f"must be between 0 and {RUPIAH_MAX:,} rupiah"
"""As domain/identifiers.py bounds every amount: a larger one is a unit slip (cents)."""


@dataclass(frozen=True, kw_only=True)
class RuleSet:
    """One version of a guarantee product's rules; amounts in rupiah, bounds inclusive."""

    product: str
    version: str
    effective_from: date
    notes: str
    guarantor_province: str
    coverage_rate: Decimal
    ijp_rate: Decimal | None
    min_plafond: int
    max_plafond: int
    allowed_scales: tuple[str, ...]
    max_annual_sales: int | None
    min_business_age_months: int
    npwp_required_above: int
    collectibility_pass_max: int
    collectibility_review_max: int
    rat_grace_months: int
    disallowed_ksp_health: tuple[str, ...]
    rules: Mapping[str, RuleText] = field(repr=False)

    def __post_init__(self) -> None:
        require(bool(self.product.strip()), "product", "must not be empty")
        require(
            len(self.product) <= PRODUCT_MAX, "product", f"must be at most {PRODUCT_MAX} characters"
        )
        require(bool(self.version.strip()), "version", "must not be empty")
        require(
            len(self.version) <= VERSION_MAX, "version", f"must be at most {VERSION_MAX} characters"
        )
        require(is_province_code(self.guarantor_province), "guarantor_province", "must be 2 digits")
        require(0 < self.coverage_rate <= 1, "coverage_rate", "must be in (0, 1]")
        require(self.ijp_rate is None or 0 <= self.ijp_rate < 1, "ijp_rate", "must be in [0, 1)")
        require(0 < self.min_plafond <= self.max_plafond, "min_plafond", "must be in (0, max]")
        require(_subset(self.allowed_scales, SCALES), "allowed_scales", f"allowed: {SCALES}")
        require((self.max_annual_sales or 0) >= 0, "max_annual_sales", "must not be negative")
        require(self.min_business_age_months >= 0, "min_business_age_months", "must be >= 0")
        require(self.npwp_required_above >= 0, "npwp_required_above", "must not be negative")
        require(
            1 <= self.collectibility_pass_max <= self.collectibility_review_max <= 5,
            "collectibility_review_max",
            "need 1 <= collectibility_pass_max <= collectibility_review_max <= 5",
        )
        require(0 <= self.rat_grace_months <= 12, "rat_grace_months", "must be in 0..12")
        require(
            _subset(self.disallowed_ksp_health, KSP_HEALTH),
            "disallowed_ksp_health",
            f"allowed: {KSP_HEALTH}",
        )
        _check_rules(self.rules)

    @classmethod
    def from_dict(cls, data: object) -> RuleSet:
        """Reads the JSON shape of `to_dict`; every key is required, unknown keys are refused."""
        obj = StrictObject(data)
        ruleset = cls(
            product=obj.get("product", str),
            version=obj.get("version", str),
            effective_from=obj.day("effective_from"),
            notes=obj.get("notes", str),
            guarantor_province=obj.get("guarantor_province", str),
            coverage_rate=obj.decimal("coverage_rate"),
            ijp_rate=obj.optional_decimal("ijp_rate"),
            min_plafond=obj.get("min_plafond", int),
            max_plafond=obj.get("max_plafond", int),
            allowed_scales=obj.texts("allowed_scales"),
            max_annual_sales=obj.optional("max_annual_sales", int),
            min_business_age_months=obj.get("min_business_age_months", int),
            npwp_required_above=obj.get("npwp_required_above", int),
            collectibility_pass_max=obj.get("collectibility_pass_max", int),
            collectibility_review_max=obj.get("collectibility_review_max", int),
            rat_grace_months=obj.get("rat_grace_months", int),
            disallowed_ksp_health=obj.texts("disallowed_ksp_health"),
            rules=_read_rules(obj.child("rules")),
        )
        obj.done()
        return ruleset

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of the rule-set files, so a database row can hold one verbatim."""
        return as_plain_dict(self)


def require(condition: bool, key: str, reason: str) -> None:
    """Raises InvalidValue naming `key` unless `condition` holds."""
    if not condition:
        raise InvalidValue(key, reason)


def _subset(values: Iterable[str], allowed: Iterable[str]) -> bool:
    return set(values) <= set(allowed)


def _read_rules(obj: StrictObject) -> Mapping[str, RuleText]:
    """The rules the set declares, in catalogue order; an id the catalogue lacks is refused."""
    rules = {
        rule_id: _read_rule(obj.child(rule_id), spec)
        for rule_id, spec in RULES.items()
        if obj.has(rule_id)
    }
    obj.done()
    return MappingProxyType(rules)


def _read_rule(obj: StrictObject, spec: RuleSpec) -> RuleText:
    messages_obj = obj.child("messages")
    messages = {
        reason: _read_message(messages_obj.child(reason))
        for reason in spec.reasons
        if reason not in spec.later or messages_obj.has(reason)
    }
    messages_obj.done()
    text = RuleText(obj.get("code", str), obj.get("legal_basis", str), MappingProxyType(messages))
    obj.done()
    return text


def _read_message(obj: StrictObject) -> Message:
    message = Message(obj.get("id", str), obj.get("en", str))
    obj.done()
    return message


def _check_rules(rules: Mapping[str, RuleText]) -> None:
    """A rule set applies the rules it declares, each one the catalogue knows: a rule added to
    the catalogue later (R14) leaves every stored version valid, applying what it applied."""
    require(bool(rules), "rules", "must declare at least one rule")
    unknown = sorted(set(rules) - set(RULES))
    require(not unknown, f"rules.{unknown[0] if unknown else ''}", "is not a known rule")
    for rule_id, text in rules.items():
        spec = RULES[rule_id]
        require(text.code == spec.code, f"rules.{rule_id}.code", f"must be {spec.code}")
        require(
            set(spec.reasons) - set(spec.later) <= set(text.messages) <= set(spec.reasons),
            f"rules.{rule_id}.messages",
            f"must hold exactly {sorted(spec.reasons)}"
            + (f" ({', '.join(sorted(spec.later))} optional)" if spec.later else ""),
        )
        for key, template in _templates(rule_id, text):
            _check_template(template, key)


def _templates(rule_id: str, text: RuleText) -> Iterable[tuple[str, str]]:
    """Each message template of a rule, with the key that names it in the file."""
    for reason, message in text.messages.items():
        for lang, template in (("id", message.id), ("en", message.en)):
            yield f"rules.{rule_id}.messages.{reason}.{lang}", template


def _check_template(template: str, key: str) -> None:
    """Placeholders are bare known names, so rendering can never fail at decision time."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        raise InvalidValue(key, f"bad template: {error}") from None
    for _, name, spec, conversion in parts:
        if name is not None and (name not in PLACEHOLDERS or spec or conversion):
            raise InvalidValue(key, f"unknown placeholder {{{name}}}")
    require(bool(template.strip()), key, "must not be empty")


def content_digest(ruleset: RuleSet) -> str:
    """The sha256 of a version's JSON (`to_dict`, keys sorted): what pins a bundled one."""
    text = json.dumps(ruleset.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def withholding_refusal(ruleset: RuleSet, stored: Collection[RuleSet] = ()) -> InvalidValue | None:
    """Why `ruleset` may not be published, or None: a reason of it names a value of the record,
    which the guarantor must not be told.

    Whatever its effective date: exempting versions in force before RECORD_VALUES_WITHHELD_FROM
    let one published today, backdated (the first of a new product is in force from its date on),
    quote the record. Exempt are only versions published already: the bundled ones published
    before the rule (`PUBLISHED_BEFORE_WITHHOLDING`, by content), which preparation stores on
    every database, and one identical to a version `stored` (an operator loading a directory of
    every version again, which adds nothing).

    Applied where rule sets are published (`load_rulesets`), not where they are read: a version
    an operator stored before this rule existed is frozen like any other, and refusing it at
    request time would fail every check of its product from its effective date. Stored ones are
    reported instead (sinergi/ruleset_review.py, which passes no `stored`), so the operator can
    supersede them."""
    pinned = PUBLISHED_BEFORE_WITHHOLDING.get((ruleset.product, ruleset.version))
    if pinned == content_digest(ruleset) or ruleset in stored:
        return None
    for rule_id, text in ruleset.rules.items():
        for key, template in _templates(rule_id, text):
            named = {name for _, name, _, _ in string.Formatter().parse(template) if name}
            if named & RECORD_PLACEHOLDERS:
                return InvalidValue(
                    key,
                    f"{{{min(named & RECORD_PLACEHOLDERS)}}} is a value of the record; since"
                    f" the version of {RECORD_VALUES_WITHHELD_FROM} a new version's reasons name"
                    " only the rule set's thresholds and what the request states, whatever its"
                    " effective date",
                )
    return None


def bounds_refusal(ruleset: RuleSet) -> InvalidValue | None:
    """Why `ruleset`'s thresholds may not be published, or None: a business age past ten years
    (`MAX_BUSINESS_AGE_MONTHS`), an amount past RUPIAH_MAX (a unit slip, as every amount).

    Applied where rule sets are published (`load_rulesets`), not where they are read, as
    `withholding_refusal` is: a version stored before these bounds existed (180 months, say) is
    frozen like any other, and refusing it when read would fail every check of its product, and
    every replay of a decision made under it. Stored ones are reported instead
    (sinergi/ruleset_review.py)."""
    amounts = {
        "max_plafond": ruleset.max_plafond,
        "max_annual_sales": ruleset.max_annual_sales or 0,
        "npwp_required_above": ruleset.npwp_required_above,
    }
    if ruleset.min_business_age_months > MAX_BUSINESS_AGE_MONTHS:
        return InvalidValue("min_business_age_months", f"must be in 0..{MAX_BUSINESS_AGE_MONTHS}")
    for key, amount in amounts.items():
        if amount > RUPIAH_MAX:
            return InvalidValue(key, _AMOUNT)
    return None


def _parse_json(text: str) -> object:
    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        for key in keys:
            require(keys.count(key) == 1, key, "appears more than once")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as error:
        raise InvalidValue("(file)", f"not valid JSON: {error}") from None


def load_rulesets(directory: Path, stored: Collection[RuleSet] = ()) -> list[RuleSet]:
    """Every `*.json` rule set in `directory`, to publish (`sinergi rulesets load`, the bundled
    ones at preparation): each held to the rules of publishing (`withholding_refusal`; `stored`:
    the versions the database holds; `bounds_refusal`). An error names the file and the key."""
    rulesets: list[RuleSet] = []
    for path in sorted(directory.glob("*.json")):
        try:
            ruleset = RuleSet.from_dict(_parse_json(path.read_text(encoding="utf-8")))
            refusal = bounds_refusal(ruleset) or withholding_refusal(ruleset, stored)
            if refusal is not None:
                raise refusal
            rulesets.append(ruleset)
        except InvalidValue as error:
            raise InvalidValue(error.field, f"{path.name}: {error.reason}") from error
    _check_unique(rulesets)
    return rulesets


def _check_unique(rulesets: list[RuleSet]) -> None:
    """Two versions of one product may share neither a version label nor an effective date,
    or replaying a stored decision, or choosing the rules for a date, would be ambiguous."""
    for key in ("version", "effective_from"):
        seen = [(r.product, getattr(r, key)) for r in rulesets]
        for pair in seen:
            require(seen.count(pair) == 1, key, f"{pair[0]} has two rule sets with {pair[1]}")


def select_ruleset(rulesets: Iterable[RuleSet], product: str, on_date: date) -> RuleSet:
    """The version of `product` in force on `on_date`: the latest effective_from not after it."""
    candidates = [r for r in rulesets if r.product == product and r.effective_from <= on_date]
    if not candidates:
        raise InvalidValue("product", f"no rule set for {product} in effect on {on_date}")
    return max(candidates, key=lambda r: r.effective_from)
