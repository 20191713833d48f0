"""The authorisation server and the resource server's token check, over one engine.

Issuing follows RFC 6749 §4.4 (client credentials) with §5.2 errors; tokens are RFC 9068 JWTs.
Every accepted token is checked against the client registry on each request, so a revoked client
or a narrowed grant takes effect at once, in every process, without waiting for tokens to expire:
each process holds the registrations it has read and forgets one as soon as PostgreSQL notifies
that it changed (auth/registry.py).
"""

from __future__ import annotations

import hmac
import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from auth import clients, keys, tokens
from auth.external import ExternalIssuer, ExternalKeys
from auth.keyring import KeyRing
from auth.principal import Principal
from auth.registry import ClientRegistry, ClientState
from auth.scopes import (
    READ_BEHIND_WRITE,
    OrgKind,
    Scope,
    parse_scopes,
    unreadable_writes,
    usable,
)
from auth.tokens import InvalidToken
from db.engine import autocommit
from db.queries import auth_failures
from db.queries.regions import RegionDirectory

logger = logging.getLogger("sinergi.auth")

NO_KEY_RETRY_AFTER_SECONDS = 30
"""Retry-After while no usable key signs: until the operator's `sinergi keys rotate`, which
every process sees at its next token (the key is read for each)."""


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response."""

    def __init__(
        self, error: str, description: str, status: int = 400, *, retry_after: int | None = None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.retry_after = retry_after

    @property
    def code(self) -> str | None:
        """The contract's code beside OAuth's `error`, for a refusal for a while (one with a
        Retry-After): the token endpoint's and GraphiQL's demo token's answers carry it."""
        if self.retry_after is None:
            return None
        return "SERVICE_UNAVAILABLE" if self.status == 503 else "RATE_LIMITED"


def authentication_failed() -> OAuthError:
    """The one answer for a wrong secret and for a client id that names no active client."""
    return OAuthError("invalid_client", "client authentication failed", 401)


@dataclass(frozen=True, slots=True)
class FailureLimits:
    """Failed authentications allowed in a window per client id from one address, per client
    id from all addresses together, and per address (an IPv6 one as its /64:
    auth_failures.counted_address); beyond any, the token endpoint answers
    429 without checking the secret. Whoever knows a client id (it is no secret) locks it out
    only from their own address: beyond the total or the address's limit, a client id that got
    a token from that address lately (`remembered_seconds`) still has its secret checked, up
    to per_client. Guesses from elsewhere, and from that address for other client ids, do not;
    per_client_total bounds what they check. `tokens_per_client` bounds the right secrets one
    client id presents in a window, from anywhere, each a token issued or refused only after
    the check (its scope, or no key to sign): past it, 429 without checking the secret, so a
    client asking again and again with its right secret costs no more than that many scrypts."""

    per_client: int
    per_client_total: int
    per_address: int
    window_seconds: int
    tokens_per_client: int

    def exceeded(self, reserved: auth_failures.Reservation) -> bool:
        return (
            reserved.by_client_address > self.per_client
            or reserved.by_client > self.per_client_total
            or reserved.by_address > self.per_address
        )

    def exceeded_by_pair(self, reserved: auth_failures.Reservation) -> bool:
        """Over the limit of the client id from the address: what no success lets through."""
        return reserved.by_client_address > self.per_client

    def remembered_seconds(self, token_lifetime: int) -> int:
        """How long before its window's start a success counts as lately: a token lifetime and a
        window, so a client that renews its token as it expires is always remembered."""
        return token_lifetime + self.window_seconds

    def kept_seconds(self, token_lifetime: int) -> int:
        """How long a window's rows are kept: a day, or longer when a success is remembered
        longer (a token lifetime over a day), plus the window its attempt is counted in."""
        return max(86_400, self.remembered_seconds(token_lifetime) + self.window_seconds)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A bearer token's principal, and its client as the registry has it now."""

    principal: Principal
    state: ClientState


class AuthService:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        issuer: str,
        audience: str,
        token_lifetime_seconds: int,
        token_seal_key: bytes,
        failure_limits: FailureLimits,
        external_issuers: Mapping[str, ExternalIssuer] | None = None,
        secret_checks: int | None = None,
        throttle_connections: int = 1,
        refused_secret: str | None = None,
        demo_clients: frozenset[str] = frozenset(),
    ) -> None:
        self.engine = engine
        self.token_seal_key = token_seal_key
        """The key this server's tokens are sealed with (tokens.seal_key of the audit key): the
        signing key is readable with the database's credentials, this one is not."""
        self.refused_secret = refused_secret
        """A secret no client is issued a token with, whichever holds it: the published demo
        secret unless `serve --dev` (clients.refused_secret). `serve` refuses to start while a
        client holds it, but a demo client registered later (`serve --dev` run once against the
        same database) would otherwise get tokens from every server already running."""
        self.demo_clients = demo_clients
        """The clients `serve --dev` registers with the refused secret (sinergi.demo_mode):
        while that secret is refused, so are they, by id, whatever secret they hold now. A
        `serve --dev` on the same database issues their tokens with the signing keys this
        server checks them with, and a rotation would not take back those already issued."""
        self._refusals_logged: set[str] = set()
        """The active clients the refused secret was presented for, each logged once: no more
        of them than the registry holds, however many requests present it."""
        self.failure_limits = failure_limits
        self.secret_checks = clients.SecretChecks(secret_checks)
        self.client_checks = clients.SecretChecksByClient()
        self.throttle_turns = clients.SecretChecks(throttle_connections)
        """Token requests running the throttle's statements at once (`_admitted`), each on a
        pooled connection /graphql shares: `throttle_connections` of them (the server's: half
        its pool), four times as many waiting, any more 503 at once. They run before any turn
        of the secret checks, which a flood of made-up client ids never takes."""
        self.reads = autocommit(engine)
        self.issuer = issuer
        self.audience = audience
        self.token_lifetime = token_lifetime_seconds
        self.external_issuers = dict(external_issuers or {})
        self._external_keys = ExternalKeys()
        self.key_ring = KeyRing(
            self.reads,
            issuer=issuer,
            audience=audience,
            lifetime=token_lifetime_seconds,
            seal_key=token_seal_key,
        )
        """This server's keys; the process's listener tells it of rotations (keys.CHANNEL)."""
        self.registry = ClientRegistry(self.reads)
        self.regions = RegionDirectory(self.reads)
        """The regions this process holds: an external token's jurisdiction is looked up in
        them, as are the regions requests name and render (the app serves them as its own)."""

    async def startup(self) -> None:
        async with self.engine.begin() as connection:
            await keys.ensure_signing_key(connection)
        await self.key_ring.reload()

    async def issue_token(
        self, client_id: str, secret: str, requested_scope: str | None, *, address: str
    ) -> dict[str, Any]:
        """The token response for a client's credentials, or an OAuthError: 429 once the client
        id or the address has failed too often in the window (FailureLimits, which says whom a
        recent success still lets through), or the client id was issued as many tokens as it
        may, before the secret is checked; 429 too while this process checks as many of the
        client id's secrets as it may and as many more wait (clients.SecretChecksByClient);
        503 while it checks as many secrets of all clients as it may and as many more wait, or
        runs as many requests' throttle statements (`throttle_turns`), and while no usable key
        signs (`_token_response`). Every right secret counts against the client's cap, and as
        its success from the address, whatever follows its check (`_authenticated`): a scope
        refused it, or no key signing, cost its scrypt all the same, and a client retrying so
        is refused past the cap as one issued tokens is."""
        client = await self._authenticated(client_id, secret, address)
        return await self._token_response(client, _granted(client.scopes, requested_scope))

    async def _authenticated(self, client_id: str, secret: str, address: str) -> clients.Client:
        """The attempt is counted as failed before the secret is checked, and taken back if it
        matches, so however many arrive at once no more secrets are checked than the limits
        allow. Over the client id's total or the address's limit, the client id's own address
        still has its secrets checked if it got a token there lately (FailureLimits): others
        sharing the address (a NAT, a proxy uvicorn does not trust) or guessing from elsewhere
        do not lock its owner out. No connection is held while scrypt runs: only for the
        statements either side. A secret that matches is kept as a success there and then,
        before its scope is granted or a key signs, so that every scrypt of a right secret
        counts against the client's cap (FailureLimits.tokens_per_client)."""
        reserved, claimed = await self._admitted(auth_failures.Attempt(client_id, address))
        if self._refused(claimed, secret) or self._refuses_client(client_id):
            raise authentication_failed()  # counted as a failure, as a wrong secret is
        try:
            client = await self._checked(claimed, secret, client_id)
        except OAuthError:  # the secret was not checked: nothing to count
            async with self.reads.connect() as connection:
                await auth_failures.take_back(connection, reserved)
            raise
        if random.random() < 0.01:  # noqa: S311 (spreading clean-up, not security)
            # After successes too: each leaves a row, and a deployment may rarely see a failure.
            kept = self.failure_limits.kept_seconds(self.token_lifetime)
            async with self.reads.connect() as connection:
                await auth_failures.purge(connection, kept)
        if client is None:
            raise authentication_failed()
        async with self.reads.connect() as connection:
            await auth_failures.take_back(connection, reserved)
            await auth_failures.succeeded(connection, reserved)
        return client

    async def _admitted(
        self, attempt: auth_failures.Attempt
    ) -> tuple[auth_failures.Reservation, clients.Claim]:
        """The attempt counted as failed, and what its secret is checked against; the 429 when
        the throttle refuses it (`_throttled`), and 503 at once, before any statement, while
        this process runs as many requests' throttle statements as it may and as many more
        wait (`throttle_turns`)."""
        try:
            async with self.throttle_turns.turn(), self.reads.connect() as connection:
                window = self.failure_limits.window_seconds
                reserved = await auth_failures.reserve(connection, attempt, window)
                refusal = await self._throttled(connection, reserved)
                if refusal is not None:
                    await auth_failures.take_back(connection, reserved)
                    raise refusal
                return reserved, await clients.claim(connection, attempt.client)
        except clients.Busy:
            raise _busy() from None

    async def _throttled(
        self, connection: AsyncConnection, reserved: auth_failures.Reservation
    ) -> OAuthError | None:
        """The 429 for an attempt over the failure limits, or whose client id was issued as many
        tokens in the window as it may (FailureLimits); None when its secret may be checked.
        Both are one answer, until the window ends: it is given before any secret is checked,
        to whoever sends the client id, and one of its own for the cap would tell them the id
        is an active client's, as an unknown, revoked or wrong one's 401 does not
        (clients.claim). An unknown id's failures reach the same answer, from anywhere once
        its total is reached (FailureLimits.per_client_total)."""
        limits = self.failure_limits
        retry_after = max(1, math.ceil(reserved.seconds_left))
        refusal = _rate_limited(f"too many token requests; retry in {retry_after} s", retry_after)
        if limits.exceeded(reserved) and (
            limits.exceeded_by_pair(reserved)
            or not await auth_failures.succeeded_since(
                connection, reserved, limits.remembered_seconds(self.token_lifetime)
            )
        ):
            return refusal
        if await auth_failures.issued(connection, reserved) >= limits.tokens_per_client:
            return refusal
        return None

    async def _checked(
        self, claimed: clients.Claim, secret: str, client_id: str
    ) -> clients.Client | None:
        """The secret checked on a turn of its client id's (at most a few at once, so a client
        sending many requests together holds no more of the process's turns than that), then a
        turn of the process's (at most one per CPU at once); OAuthError when either is full."""
        try:
            async with self.client_checks.turn(client_id), self.secret_checks.turn():
                return await clients.authenticated(claimed, secret)
        except clients.ClientBusy:
            raise _rate_limited(
                "too many token requests for this client at once; retry in 1 s", 1
            ) from None
        except clients.Busy:
            raise _busy() from None

    def _refuses(self, secret: str) -> bool:
        """Whether `secret` is the refused one, compared in constant time."""
        refused = self.refused_secret
        return refused is not None and hmac.compare_digest(secret.encode(), refused.encode())

    def _refuses_client(self, client_id: str) -> bool:
        """Whether `client_id` is a demo client's while the demo secret is refused."""
        return self.refused_secret is not None and client_id in self.demo_clients

    def _refused(self, claimed: clients.Claim, secret: str) -> bool:
        """Whether `secret` is the refused one: compared in constant time, before scrypt, for
        any client id alike (its answer is a wrong secret's, and as fast whether or not the
        client exists), and logged once for an active client. The log asks to revoke it only if
        it holds the secret: anyone can present the secret for any client id, one line each,
        and knowing whether the client holds it takes scrypt, whose time would tell the client
        exists. One that holds it is a demo client, so revoked, as `serve`'s refusal says."""
        if not self._refuses(secret):
            return False
        client_id = None if claimed.client is None else claimed.client.client_id
        if client_id is not None and client_id not in self._refusals_logged:
            self._refusals_logged.add(client_id)
            logger.warning(
                "someone presented the published demo secret for client %s: refused, as a server"
                " without --dev refuses it from anyone. Anyone can send it with any client id, so"
                " this alone does not say %s holds it. Next step: if %s's secret is the demo's (a"
                " `serve --dev` registered it against this database), the next `sinergi serve`"
                " without --dev refuses to start naming it: revoke it (`sinergi clients revoke"
                " %s`); otherwise no action is needed",
                client_id,
                client_id,
                client_id,
                client_id,
            )
        return True

    async def mint_for_client(self, client_id: str, secret: str, *, address: str) -> str:
        """A token for an active client whose secret is still `secret`, issued as the token
        endpoint issues it to `address`, under the same throttle and cap on the client's tokens
        (`issue_token`): development GraphiQL only, whose caller sends no credentials and names
        the published demo secret, and whose every page and renewal would otherwise cost a
        scrypt and a signature, unbounded. A client that is not active with `secret` (rotated
        or revoked: checked on every mint) is OAuthError 403, and so is any, with the refused
        secret (a server with GraphiQL but not `serve --dev`)."""
        if self._refuses(secret):
            raise OAuthError(
                "access_denied", "this server refuses the published demo secret (no --dev)", 403
            )
        try:
            answer = await self.issue_token(client_id, secret, None, address=address)
        except OAuthError as error:
            if error.status != 401:
                raise
            raise OAuthError(
                "access_denied", f"{client_id} is unknown, revoked or has a new secret", 403
            ) from None
        return str(answer["access_token"])

    async def _token_response(
        self, client: clients.Client, scopes: frozenset[Scope]
    ) -> dict[str, Any]:
        """A token of `scopes` less any write without its read (auth.scopes.usable): less than
        asked or granted (a client registered before that rule), as RFC 6749 §3.3 allows, and
        the answer's `scope` says so."""
        scopes = usable(scopes)
        async with self.reads.connect() as connection:
            try:
                key = await keys.signing_key(connection)
            except keys.NoSigningKey as error:
                # Not a bug: a row that does not import is all that is left unretired (keys.usable
                # logs it), and no restart mends that, since the first start's key is made only
                # when no key is unretired; the operator's rotation does.
                logger.error("cannot issue tokens: %s", error)
                raise OAuthError(
                    "temporarily_unavailable",
                    "no signing key can issue tokens now; retry later",
                    503,
                    retry_after=NO_KEY_RETRY_AFTER_SECONDS,
                ) from None
        token = tokens.issue(
            key,
            seal_key=self.token_seal_key,
            issuer=self.issuer,
            audience=self.audience,
            client_id=client.client_id,
            scopes=frozenset(scope.value for scope in scopes),
            jurisdiction=client.jurisdiction,
            org_kind=client.org_kind.value,
            lifetime=self.token_lifetime,
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": " ".join(sorted(scope.value for scope in scopes)),
        }

    async def authenticate(self, token: str) -> Admitted:
        """The principal a bearer token stands for; InvalidToken when it stands for nobody."""
        claims = self.key_ring.remembered(token)
        if claims is None:
            header = tokens.unverified_header(token)
            external = self.external_issuers.get(_unverified_issuer(token) or "")
            if external is not None:
                kid = header.get("kid")
                principal = await self._external_keys.verify(
                    external, token, kid if isinstance(kid, str) else None, self.regions.level_of
                )
                return Admitted(principal, await self.registry.state(principal.client_id))
            claims = await self.key_ring.verify(token, header)
        client_id = str(claims.get("client_id", claims["sub"]))
        if self._refuses_client(client_id):
            raise InvalidToken("a demo client's token, refused without --dev")
        state = await self.registry.state(client_id)
        scope, jurisdiction = claims.get("scope", ""), claims.get("jurisdiction")
        if not isinstance(scope, str) or not isinstance(jurisdiction, str):
            return Admitted(_registered_principal(claims, state.client), state)
        known = state.principals.get((scope, jurisdiction))
        if known is None:
            known = _registered_principal(claims, state.client)
            state.principals[scope, jurisdiction] = known
        return Admitted(known, state)

    async def jwks(self) -> dict[str, Any]:
        async with self.reads.connect() as connection:
            published = await keys.published_keys(connection, self.token_lifetime)
        return {"keys": [key.jwk for key in published.published]}

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorisation-server metadata. `response_types_supported` is REQUIRED there
        (and refused empty by validators such as authlib's), though there is no authorization
        endpoint to serve a response type: it stays, as published since the start. No
        `token_endpoint_auth_signing_alg_values_supported`: it is for the JWT client
        authentication methods, and clients here authenticate with a secret only."""
        return {
            "issuer": self.issuer,
            "token_endpoint": f"{self.issuer}/oauth/token",
            "jwks_uri": f"{self.issuer}/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": sorted(scope.value for scope in Scope),
            "response_types_supported": ["token"],
            "org_kinds_supported": sorted(kind.value for kind in OrgKind),
        }


def _granted(held: frozenset[Scope], requested_scope: str | None) -> frozenset[Scope]:
    """What a token of a client holding `held` is issued for `requested_scope` (RFC 6749 §3.3):
    omitted or empty (no scope to ask for), what the client holds; else that subset. A token
    less than asked, or of nothing, is refused (invalid_scope) rather than issued: issued, its
    `scope` alone told the client that a write asked for without its read was left out
    (auth.scopes.usable), and one of no scope could do nothing."""
    asked = requested_scope.strip(" ") if requested_scope is not None else ""
    scopes = held
    if asked:
        try:
            scopes = parse_scopes(asked)
        except ValueError:
            raise OAuthError("invalid_scope", "unknown scope requested") from None
        if not scopes <= held:
            raise OAuthError("invalid_scope", "scope exceeds what the client was granted")
    blind = sorted(unreadable_writes(scopes))
    needs = ", ".join(f"{write.value} needs {READ_BEHIND_WRITE[write].value}" for write in blind)
    if blind and asked:
        raise OAuthError("invalid_scope", f"{needs}: ask for both, or for neither")
    if not usable(scopes):
        raise OAuthError("invalid_scope", f"the client holds no usable scope ({needs})")
    return scopes


def _busy() -> OAuthError:
    """The 503 of a process with as many token requests at once as it takes (AuthService)."""
    return OAuthError(
        "temporarily_unavailable",
        "too many token requests at once; retry in 1 s",
        503,
        retry_after=1,
    )


def _rate_limited(description: str, retry_after: int) -> OAuthError:
    return OAuthError("rate_limited", description, 429, retry_after=retry_after)


def _registered_principal(claims: Mapping[str, Any], client: clients.Client | None) -> Principal:
    """The token's principal as the registry has it now: revoked, narrowed or moved clients
    lose what their still-valid tokens claim, and a write without its read (a registration or
    token older than that rule, auth.scopes.usable) is not held."""
    if client is None or client.revoked:
        raise InvalidToken("client unknown or revoked")
    try:
        claimed = parse_scopes(str(claims.get("scope", "")))
    except ValueError:
        raise InvalidToken("token carries an unknown scope") from None
    if claims.get("jurisdiction") != client.jurisdiction:
        raise InvalidToken("client's jurisdiction changed since the token was issued")
    return Principal(
        client_id=client.client_id,
        org_kind=client.org_kind,
        jurisdiction=client.jurisdiction,
        scopes=usable(claimed & client.scopes),
        organisation=client.name,
        purpose=client.purpose,
    )


def _unverified_issuer(token: str) -> str | None:
    """Only to route the token to the right issuer's keys; verification checks `iss` again."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a JWS compact token")
    claims = tokens.decode_segment(parts[1])
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None
