"""Tokens from other authorisation servers (a national SSO on Keycloak, say), trusted by config.

Each issuer is configured with its JWKS URL and how its claims map onto ours. What such a token
may grant is still capped by the org kind's bundle, exactly as for a client registered here.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from auth import outbound
from auth.cleartext import cleartext_refusal, without_userinfo
from auth.clients import JURISDICTION_LEVELS, allowed_scopes, jurisdiction_refusal
from auth.keys import kids
from auth.principal import Principal
from auth.scopes import OrgKind, Scope, usable
from auth.tokens import InvalidToken, shown, verify
from db.models import PRINCIPAL_ID_LENGTH
from domain.errors import InvalidValue
from domain.identifiers import RegionLevel, is_within, region_level
from domain.text import printable, storable

REFETCH_AFTER_SECONDS = 60.0
"""The shortest time from a fetch of an issuer's JWKS that succeeded to the next."""
RETRY_AFTER_FAILURE_SECONDS = 30.0
MAX_AGE_SECONDS = 300.0
"""How old a fetched JWKS may be before a token of its issuer makes Sinergi fetch it again: a
key the issuer deleted (leaked, or retired) verifies nothing in any process this long after,
however long the process has run (Sinergi's own keys are read again as often: auth/keyring.py)."""
STALE_GRACE_SECONDS = 600.0
"""How long past MAX_AGE_SECONDS the JWKS last fetched is still used while fetching it again
fails (the SSO down or unreachable): its users stay logged in through a short outage, but a
deleted key is not trusted indefinitely by whoever can keep Sinergi from reaching the SSO.
After it, the issuer's tokens are 401 until a fetch succeeds."""
FETCH_TIMEOUT_SECONDS = 5.0
MAX_KEY_SET_BYTES = 1 << 20
"""A key set is a few kilobytes. The fetch runs on a thread that may outlive the timeout above
(by the time it takes to connect), so an issuer (or whatever answers at its URL) sending an
endless body grew the process until it stopped: more than this is refused as a failed fetch,
read no further."""
DEFAULT_CLIENT_ID_CLAIM = "azp"
"""The client a token names unless configured: Keycloak's authorised party, the app the user
logged in through; a token without it is the principal of its `sub`."""
DEFAULT_MAX_LIFETIME_SECONDS = 3600
"""How long an external issuer's tokens may be valid for (`exp` less `iat`) unless configured:
an hour, well above an SSO's usual access-token lifespan (Keycloak's is 5 minutes)."""


@dataclass(frozen=True, slots=True)
class ExternalIssuer:
    """One trusted issuer. `scope_map` renames its scopes or roles to ours; scopes beyond what
    the org kind may hold are dropped, since an SSO token carries roles for many systems, as is
    a write without the read it needs (auth.scopes.usable), and `pii:read` comes only from a
    role mapped to it. The jurisdiction claimed must be a region of the level the org kind has
    (a province's a province), as a registered client's must. A token valid for longer than
    `max_lifetime` seconds is refused: one signed with a leaked key may carry any `exp`.
    `client_id_claim` names the client within the issuer (`sub` standing in for the default
    `azp` alone: a token without a claim configured otherwise is refused); the principal is
    that client as the token's org kind and jurisdiction (`external_client_id`), refused when
    that id is longer than Sinergi keeps (PRINCIPAL_ID_LENGTH). `org_kinds` and `jurisdictions`,
    when given, cap what its tokens may claim (`_cap_refusal`): the claims are the SSO's word,
    and a cap is how the operator bounds what a compromised or misconfigured SSO can say."""

    issuer: str
    jwks_url: str
    audience: str
    scope_claim: str = "scope"
    jurisdiction_claim: str = "jurisdiction"
    org_kind_claim: str = "org_kind"
    client_id_claim: str = DEFAULT_CLIENT_ID_CLAIM
    organisation_claim: str = "org_name"
    scope_map: Mapping[str, str] = field(default_factory=dict)
    purpose: str = ""
    max_lifetime: int = DEFAULT_MAX_LIFETIME_SECONDS
    org_kinds: tuple[OrgKind, ...] | None = None
    jurisdictions: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ValueError("issuer must be the issuer's URL, as its tokens' iss claim has it")
        if "#" in self.issuer:
            # ISSUER#CLIENT is a principal's id: `a` and `a#b` would share `a#b#app`.
            raise ValueError(f"issuer {self.issuer!r} holds a '#', which parts principals' ids")
        if not isinstance(self.jwks_url, str):
            raise ValueError("jwks_url must be a URL")
        refusal = cleartext_refusal(self.jwks_url, "lets anyone on the path serve their own key")
        if refusal is not None:
            raise ValueError(f"jwks_url {refusal}")
        if (shown := without_userinfo(self.jwks_url)) != self.jwks_url:
            # urllib takes them for part of the host: every fetch would fail, its reason (logged
            # with each token refused) holding the password.
            raise ValueError(f"jwks_url {shown}: holds a user and password, which are never sent")
        if isinstance(self.max_lifetime, bool) or not isinstance(self.max_lifetime, int):
            raise ValueError("max_lifetime must be a whole number of seconds")
        if self.max_lifetime < 1:
            raise ValueError("max_lifetime must be at least 1 second")
        if self.org_kinds is not None:
            object.__setattr__(self, "org_kinds", _org_kinds(self.org_kinds))
        if self.jurisdictions is not None:
            object.__setattr__(self, "jurisdictions", _jurisdictions(self.jurisdictions))
        if self.org_kinds is not None and self.jurisdictions is not None:
            _check_caps_meet(self.org_kinds, self.jurisdictions)


_CAPPED_LEVELS = frozenset(level for levels in JURISDICTION_LEVELS.values() for level in levels)
"""The levels a token's jurisdiction may be: a cap below them (a district's) would admit none."""


def _listed(name: str, value: object, items: str, choices: str = "") -> list[Any]:
    """`value` as the JSON list of `items` the field `name` must be: neither empty (a cap that
    admits no token is a slip, not a way to disable an issuer) nor naming one item twice."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be a JSON list of {items}{choices}, got {value!r}")
    if not value:
        raise ValueError(
            f"{name} is empty, which admits no token: list the {items} the issuer may speak for,"
            " or leave it out for any"
        )
    for index, item in enumerate(value):
        if item in value[:index]:
            raise ValueError(f"{name} lists {item!r} twice")
    return list(value)


def _org_kinds(value: object) -> tuple[OrgKind, ...]:
    choices = f" ({', '.join(OrgKind)})"
    kinds = []
    for kind in _listed("org_kinds", value, "org kinds", choices):
        try:
            kinds.append(OrgKind(kind))
        except ValueError:
            raise ValueError(f"org_kinds: {kind!r} is not an org kind{choices}") from None
    return tuple(kinds)


def _jurisdictions(value: object) -> tuple[str, ...]:
    """Region codes as a jurisdiction is written (`ID` the nation, a province's, a regency's or
    a city's), exactly: a token's jurisdiction is compared with them as it is spelt."""
    codes = _listed("jurisdictions", value, "region codes")
    for code in codes:
        if not isinstance(code, str):
            raise ValueError(
                f'jurisdictions: {code!r} is not a region code (a string, such as "62")'
            )
        try:
            level = region_level(code, field="jurisdictions")
        except InvalidValue as error:
            raise ValueError(f"jurisdictions: {code!r} {error.reason}") from None
        if level not in _CAPPED_LEVELS:
            raise ValueError(
                f"jurisdictions: {code!r} is a {level.value}'s code, within which no token's"
                " jurisdiction lies (ID, a province's, a regency's or a city's)"
            )
    return tuple(codes)


_DEPTH = {
    RegionLevel.NATIONAL: 0,
    RegionLevel.PROVINCE: 1,
    RegionLevel.REGENCY: 2,
    RegionLevel.CITY: 2,
}
"""How far below the nation each level a jurisdiction may be lies: a region lies within a cap
only at the cap's depth or deeper."""


def _reaches(kind: OrgKind, cap: str) -> bool:
    """Whether some jurisdiction a token of `kind` may claim lies within `cap`: a ministry's
    (the nation) lies within no province, a province's within no regency."""
    depth = _DEPTH[region_level(cap)]
    return any(_DEPTH[RegionLevel(level)] >= depth for level in JURISDICTION_LEVELS[kind])


def _check_caps_meet(kinds: tuple[OrgKind, ...], caps: tuple[str, ...]) -> None:
    """Refuses the two caps when part of either admits no token with the other: each is an
    operator's slip (`["ministry"]` with `["62"]` admits nothing at all), which, like an empty
    cap, is not a way to disable an issuer and would only surface as every token refused."""
    for kind in kinds:
        if not any(_reaches(kind, cap) for cap in caps):
            raise ValueError(
                f"org_kinds: no jurisdiction of a {kind.value} lies within the jurisdictions"
                f" ({', '.join(caps)}): no token of it would be admitted"
            )
    for cap in caps:
        if not any(_reaches(kind, cap) for kind in kinds):
            raise ValueError(
                f"jurisdictions: {cap!r} holds no jurisdiction of the org_kinds"
                f" ({', '.join(kinds)}): no token within it would be admitted"
            )


def _cap_refusal(issuer: ExternalIssuer, org_kind: OrgKind, jurisdiction: str) -> str | None:
    """Why a token of `issuer` may not claim `org_kind` and `jurisdiction` (a code of a level
    the org kind may have, checked before), or None when it may: the org kind must be one of its
    `org_kinds`, the jurisdiction one of its `jurisdictions` or lie within one (is_within: `ID`
    holds every jurisdiction, a province its regencies and cities). The one rule for a token
    and for an id an operator names (`external_principal`)."""
    if issuer.org_kinds is not None and org_kind not in issuer.org_kinds:
        return (
            f"org kind {org_kind.value!r} is not among the org_kinds of {issuer.issuer}"
            f" ({', '.join(issuer.org_kinds)})"
        )
    if issuer.jurisdictions is not None and not any(
        is_within(jurisdiction, cap) for cap in issuer.jurisdictions
    ):
        return (
            f"jurisdiction {jurisdiction!r} lies within none of the jurisdictions of"
            f" {issuer.issuer} ({', '.join(issuer.jurisdictions)})"
        )
    return None


def parse_external_issuers(raw: str) -> dict[str, ExternalIssuer]:
    """`SINERGI_EXTERNAL_ISSUERS`: a JSON list of objects with ExternalIssuer's fields, each
    issuer once (listed twice, the last was kept alone, silently)."""
    if not raw.strip():
        return {}
    try:
        entries = json.loads(raw)
        issuers = [ExternalIssuer(**entry) for entry in entries]
    except (TypeError, ValueError) as error:
        raise ValueError(
            "SINERGI_EXTERNAL_ISSUERS must be a JSON list of objects with issuer, jwks_url, "
            f"audience and optional claim names: {error}"
        ) from None
    by_name: dict[str, ExternalIssuer] = {}
    for issuer in issuers:
        if issuer.issuer in by_name:
            raise ValueError(
                f"SINERGI_EXTERNAL_ISSUERS lists the issuer {issuer.issuer!r} twice: list it once"
            )
        by_name[issuer.issuer] = issuer
    return by_name


def _claim_scopes(value: Any) -> list[str]:
    """An issuer's own claim, split on any whitespace as issuers write it: unlike a scope asked
    of our token endpoint (auth.scopes.parse_scopes), its names grant nothing themselves, only
    through the issuer's configured mapping."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


def _lookup(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by dotted path, so Keycloak's `realm_access.roles` can be mapped."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _refuse_other_than_access_tokens(claims: Mapping[str, Any]) -> None:
    """An SSO signs ID and refresh tokens with the keys it signs access tokens with, and few
    mark an access token `at+jwt` (RFC 9068) in the header, which is why that is not required
    here. Keycloak says what each token is in a `typ` claim instead: an ID token handed to an app
    whose client id is this audience would otherwise open the API, though it was meant only to
    tell that app who logged in. Issuers that set no such claim are unaffected."""
    kind = claims.get("typ")
    if kind is not None and str(kind).lower() != "bearer":
        raise InvalidToken(f"external claims: not an access token (typ {kind!r})")


def _check_text(name: str, value: str) -> None:
    """The client id and the organisation become the principal's id and name, which its
    decisions, guarantees, audit entries and log lines hold: one no text column can store
    (domain.text.storable) would fail its first query as an INTERNAL error, and a control or
    invisible character (a newline, a terminal escape, a bidirectional override) would forge,
    hide or garble the lines that name it: held to the rule of every name a record holds
    (domain.text.printable)."""
    if not (storable(value) and printable(value)):
        raise InvalidToken(
            f"external claims: the {name} holds a NUL, a lone surrogate, a control or an"
            " invisible character"
        )


async def principal_from_claims(
    issuer: ExternalIssuer,
    claims: Mapping[str, Any],
    level_of: Callable[[str], Awaitable[str | None]],
) -> Principal:
    """The principal an external token's verified claims stand for. Its jurisdiction is held to
    the rule a registered client's is (clients.jurisdiction_refusal), `level_of` looking up the
    regions the serving process holds."""
    _refuse_other_than_access_tokens(claims)
    try:
        org_kind = OrgKind(str(_lookup(claims, issuer.org_kind_claim)))
    except ValueError as error:
        raise InvalidToken(f"external claims: {error}") from None
    allowed = {scope.value: scope for scope in allowed_scopes(org_kind)}
    claimed = _claim_scopes(_lookup(claims, issuer.scope_claim))
    # pii:read only through a role the operator mapped to it, as a client registered here gets
    # it only when granted: an SSO user's own role named "pii:read" is not that grant.
    mapped = (
        issuer.scope_map.get(item, item)
        for item in claimed
        if item in issuer.scope_map or item != Scope.PII_READ.value
    )
    scopes = usable(frozenset(allowed[item] for item in mapped if item in allowed))
    jurisdiction = _lookup(claims, issuer.jurisdiction_claim)
    client_id = _lookup(claims, issuer.client_id_claim)
    if not client_id and issuer.client_id_claim == DEFAULT_CLIENT_ID_CLAIM:
        # A token issued to the user's own session has no `azp`. A claim the operator chose is
        # required: falling back, a token without it made a principal of each user, not the app.
        client_id = claims.get("sub")
    if not isinstance(jurisdiction, str) or not isinstance(client_id, str) or not client_id:
        raise InvalidToken(
            f"external claims: jurisdiction ({issuer.jurisdiction_claim}) and client id"
            f" ({issuer.client_id_claim}) are required"
        )
    _check_text("client id", client_id)
    organisation = str(_lookup(claims, issuer.organisation_claim) or issuer.issuer)
    _check_text("organisation", organisation)
    if (refusal := await jurisdiction_refusal(org_kind, jurisdiction, level_of)) is not None:
        raise InvalidToken(f"external claims: {refusal}")
    if (refusal := _cap_refusal(issuer, org_kind, jurisdiction)) is not None:
        raise InvalidToken(f"external claims: {refusal}")
    principal_id = external_client_id(issuer.issuer, client_id, org_kind, jurisdiction)
    if len(principal_id) > PRINCIPAL_ID_LENGTH:
        # Its first check would fail storing the decision, as an INTERNAL error, after the work.
        raise InvalidToken(
            f"external claims: the client id {principal_id[:60]!r}... is {len(principal_id)}"
            f" characters, longer than the {PRINCIPAL_ID_LENGTH} Sinergi keeps: configure a"
            " shorter client_id_claim"
        )
    return Principal(
        client_id=principal_id,
        org_kind=org_kind,
        jurisdiction=jurisdiction,
        scopes=scopes,
        organisation=organisation,
        purpose=issuer.purpose,
        legacy_client_id=_legacy_client_id(issuer.issuer, client_id, org_kind),
    )


def _legacy_client_id(issuer: str, claimed: str, org_kind: OrgKind) -> str | None:
    """The id the principal had before its org kind and jurisdiction were part of it,
    `ISSUER#CLAIMED`, under which its decisions and guarantees stored then are kept (those
    inside its jurisdiction are still its own: resolvers/policy.py). Only an org kind that
    checks eligibility (a BUMD) stored any: a province's user of the same app has none. A claim
    holding an `@` has none either: `ISSUER#CLAIMED` would then spell another principal's
    current id (`ISSUER#portal@bumd:62` is the app `portal`'s principal in 62), whose rows would
    pass for its own."""
    if Scope.ELIGIBILITY_CHECK not in allowed_scopes(org_kind) or "@" in claimed:
        return None
    return f"{issuer}#{claimed}"


def external_client_id(issuer: str, claimed: str, org_kind: OrgKind, jurisdiction: str) -> str:
    """`ISSUER#CLAIMED@ORG_KIND:JURISDICTION`: whose decisions, guarantees, audit entries, rate
    limit and guarantee feed an external token's are. The org kind and jurisdiction come from
    each token, not with the client: a Keycloak user token's `azp` is the app the user logged in
    through, which users of every province share, and `ISSUER#azp` alone made one principal of
    them all, so a BUMD of 61 read a BUMD of 62's decisions. Neither ever holds an `@` (an org
    kind is a word, a jurisdiction a region code), so the last `@` parts the id again and no
    claim can pass for another principal's."""
    return f"{issuer}#{claimed}@{org_kind.value}:{jurisdiction}"


def external_principal(issuers: Mapping[str, ExternalIssuer], client_id: str) -> str | None:
    """Why `client_id` is not the id of a principal a token of an issuer in `issuers` could
    carry (`external_client_id`), or None when it is: `ISSUER#CLIENT@ORG_KIND:JURISDICTION` of a
    configured issuer, an org kind, a jurisdiction of its level, both within the issuer's caps
    (`_cap_refusal`), no longer than a token's may be. What an operator sets for an id no token
    carries (an equity, trusted documents) would be set for nobody."""
    issuer = next((name for name in issuers if client_id.startswith(f"{name}#")), None)
    if issuer is None:
        return "not ISSUER#CLIENT@ORG_KIND:JURISDICTION of an issuer in SINERGI_EXTERNAL_ISSUERS"
    claimed, at, principal = client_id[len(issuer) + 1 :].rpartition("@")
    kind, _, jurisdiction = principal.partition(":")
    if not (claimed and at):  # the older form ISSUER#CLIENT among them: no token carries it
        return f"not {issuer}#CLIENT@ORG_KIND:JURISDICTION"
    try:
        org_kind = OrgKind(kind)
    except ValueError as error:
        return str(error)
    if not _shaped_as_jurisdiction(org_kind, jurisdiction):
        return f"{jurisdiction!r} is not a jurisdiction of a {org_kind.value}"
    if (refusal := _cap_refusal(issuers[issuer], org_kind, jurisdiction)) is not None:
        return refusal
    if len(client_id) > PRINCIPAL_ID_LENGTH:
        return f"longer than the {PRINCIPAL_ID_LENGTH} characters a token's client id may be"
    return None


def _shaped_as_jurisdiction(org_kind: OrgKind, jurisdiction: str) -> bool:
    """Whether `jurisdiction` is shaped as a code of a level `org_kind` may have: all that is
    checked of an id the settings or a command name (`external_principal`), read where no
    regions are at hand; a token naming a region that does not exist is refused all the same
    (clients.jurisdiction_refusal), so an id naming one is set for nobody."""
    try:
        level = region_level(jurisdiction, field="jurisdiction")
    except InvalidValue:
        return False
    return level in JURISDICTION_LEVELS[org_kind]


def external_guarantor(issuers: Mapping[str, ExternalIssuer], client_id: str) -> str | None:
    """Why `client_id` is not the id of an external principal that may issue guarantees
    (`sinergi guarantors set-equity`), or None when it is: an external principal's
    (`external_principal`) of an org kind whose bundle holds `guarantees:write`."""
    if (reason := external_principal(issuers, client_id)) is not None:
        return reason
    org_kind = OrgKind(client_id.rpartition("@")[2].partition(":")[0])
    if Scope.GUARANTEES_WRITE not in allowed_scopes(org_kind):
        return f"a {org_kind.value} does not issue guarantees ({Scope.GUARANTEES_WRITE.value})"
    return None


def is_external(issuers: Mapping[str, ExternalIssuer], client_id: str) -> bool:
    """Whether `client_id` names a principal of an issuer in `issuers` rather than a client
    registered here (whose ids hold no `#`): to be checked with `external_principal`."""
    return any(client_id.startswith(f"{issuer}#") for issuer in issuers)


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only within the JWKS URL's origin (scheme, host and port): urllib's
    default follows one anywhere, https to plain http too, past the check `jwks_url` had, and
    whoever answered there would choose the keys. A redirect elsewhere fails the fetch."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if _origin(newurl) != _origin(req.full_url):
            raise urllib.error.HTTPError(
                req.full_url,
                code,
                f"redirected to another origin ({newurl}): not followed",
                headers,
                fp,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def _fetch(url: str) -> dict[str, Any]:
    """The key set at `url`, read within FETCH_TIMEOUT_SECONDS in all (outbound.opener): each
    read's timeout alone let an issuer trickling its answer hold the issuer's thread, which is
    no daemon, and so the process's exit, for as long as the answer came."""
    opener = outbound.opener(FETCH_TIMEOUT_SECONDS, FETCH_TIMEOUT_SECONDS, _SameOrigin())
    with opener.open(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
        body = response.read(MAX_KEY_SET_BYTES + 1)
    if len(body) > MAX_KEY_SET_BYTES:
        raise ValueError(f"its key set is over {MAX_KEY_SET_BYTES} bytes: not read")
    return dict(json.loads(body))


@dataclass(slots=True)
class _IssuerKeys:
    """One issuer's keys as last fetched and when, why its last fetch failed, and when the next
    may start. Its fetches run one at a time (`fetching`) on a thread of its own (`lane`)."""

    fetching: asyncio.Lock = field(default_factory=asyncio.Lock)
    lane: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="jwks")
    )
    keys: KeySet | None = None
    fetched_at: float = 0.0  # time.monotonic()
    failure: str = ""
    next_fetch: float = 0.0  # time.monotonic()

    def age(self) -> float:
        return time.monotonic() - self.fetched_at


class ExternalKeys:
    """Each issuer's JWKS, fetched on first use, again on an unknown kid, and again once older
    than MAX_AGE_SECONDS, each fetch replacing the keys (those the issuer dropped are gone): one
    fetch per issuer at a time, and none sooner than REFETCH_AFTER_SECONDS after the last
    (RETRY_AFTER_FAILURE_SECONDS after one that failed), so tokens naming an issuer and a
    made-up kid cannot make Sinergi fetch once each. A token with an unknown kid waits for the
    fetch and shares its outcome; one with a known kid of a set merely too old waits only when
    it finds no fetch under way (it starts one), else it is verified with the keys in hand. Each
    issuer's fetch has a thread of its own, not the default executor the token endpoint's scrypt
    runs on: an issuer that answers slowly, or never, delays only its own tokens."""

    def __init__(self) -> None:
        self._issuers: dict[str, _IssuerKeys] = {}

    async def verify(
        self,
        issuer: ExternalIssuer,
        token: str,
        kid: str | None,
        level_of: Callable[[str], Awaitable[str | None]],
    ) -> Principal:
        known = self._issuers.setdefault(issuer.issuer, _IssuerKeys())
        keys = known.keys
        if (
            keys is None
            or (kid is not None and kid not in kids(keys))
            or known.age() >= MAX_AGE_SECONDS + STALE_GRACE_SECONDS
            or (known.age() >= MAX_AGE_SECONDS and not known.fetching.locked())
        ):
            keys = await _refresh(issuer, known)
        if kid is not None and kid not in kids(keys):
            # Named here, escaped: joserfc's refusal names it as sent, a newline in it forging
            # a line of the text log.
            raise InvalidToken(f"unknown kid {shown(kid)}")
        claims = verify(
            token,
            keys,
            issuer=issuer.issuer,
            audience=issuer.audience,
            max_lifetime=issuer.max_lifetime,
            require_type=False,
            require_iat=False,
        )
        return await principal_from_claims(issuer, claims, level_of)


async def _refresh(issuer: ExternalIssuer, known: _IssuerKeys) -> KeySet:
    """The issuer's keys, fetched again unless fetched too recently; those fetched before when
    this fetch fails (the unknown kid is then refused, the known ones still verify), until they
    are older than MAX_AGE_SECONDS and STALE_GRACE_SECONDS together: then none."""
    async with known.fetching:
        if time.monotonic() >= known.next_fetch:
            await _fetch_into(issuer, known)
    if known.keys is None:
        raise InvalidToken(f"JWKS of {issuer.issuer} unavailable: {known.failure}")
    if known.age() >= MAX_AGE_SECONDS + STALE_GRACE_SECONDS:
        raise InvalidToken(
            f"JWKS of {issuer.issuer} last fetched {known.age():.0f} s ago, too long to trust"
            f" its keys still: {known.failure}"
        )
    return known.keys


async def _fetch_into(issuer: ExternalIssuer, known: _IssuerKeys) -> None:
    fetching = asyncio.get_running_loop().run_in_executor(known.lane, _fetch, issuer.jwks_url)
    try:
        # The fetch's own deadline starts once connected: this bounds the wait from the start.
        document = await asyncio.wait_for(fetching, FETCH_TIMEOUT_SECONDS)
        keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
    except (OSError, ValueError, LookupError, TypeError, RecursionError, JoseError) as error:
        # Whatever answered at the URL chose the body: one json.loads cannot read (nested too
        # deeply: RecursionError) is a failed fetch like any other, backed off, the keys in
        # hand serving for the grace.
        known.failure = str(error) or type(error).__name__
        known.next_fetch = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
        return
    known.keys, known.fetched_at, known.failure = keys, time.monotonic(), ""
    known.next_fetch = known.fetched_at + REFETCH_AFTER_SECONDS
