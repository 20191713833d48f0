"""Access tokens: JWTs per RFC 9068, signed ES256, verified with joserfc (authlib's JOSE).

Verification never trusts the token's own header for the algorithm: only ES256 and RS256 are
accepted, so `alg: none` and HMAC-with-the-public-key forgeries fail before any claim is read.

The signing key is no secret from the database: the service's role reads it to sign. So each
token this server issues is also sealed (`SEAL_CLAIM`): an HMAC over all its other claims under a
key derived from the audit key (`seal_key`), which the database never holds. Whoever holds only
the database's credentials can sign a token, but not seal one, and an unsealed token of this
server's is refused as a badly signed one is. An external issuer's tokens carry no seal: they are
checked against that issuer's keys, which the database does not hold either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from joserfc.jwt import JWTClaimsRegistry

from db.seals import derived_key, same_mac

ACCEPTED_ALGORITHMS = ("ES256", "RS256")
TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
LEEWAY_SECONDS = 30
SEAL_CLAIM = "sinergi_seal"
SEAL_KEY_LABEL = b"sinergi access token seal v1"
"""What the seal key is derived from the audit key for: no other use's (db.seals.derived_key)."""


SHOWN_CHARS = 64


class InvalidToken(Exception):
    """The token is not acceptable; the reason is for the log, never for the caller."""


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value someone else chose as a line names it: its repr, which escapes every character
    str.isprintable refuses (C0 and C1 controls, a terminal escape, a bidirectional override),
    cut to `limit`. A token's unverified header is whoever sent the token's to fill (a `kid`
    of 3 MB made a log line as long); a server's refusal is its to word (`sinergi sync`)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class VerifiedTokens:
    """Claims of tokens whose signature (and seal) this process has already checked, until they
    expire.

    A client sends the same token with every request for its whole lifetime, and checking an
    ES256 signature costs more CPU than the rest of the token check. The key is the whole token,
    so only a byte-identical token is taken from here; the client registry is still consulted on
    every request, so revocation keeps taking effect at once. Each entry notes the key that
    verified it, so that it is forgotten as soon as the key stops verifying it (`retain`).
    """

    def __init__(self, lifetime: int, capacity: int = 4096) -> None:
        """`lifetime`: the issuer's token lifetime, which no entry outlives."""
        self.lifetime = lifetime
        self.capacity = capacity
        self._claims: dict[str, tuple[Mapping[str, Any], float, str]] = {}

    def get(self, token: str, now: float | None = None) -> Mapping[str, Any] | None:
        found = self._claims.get(token)
        if found is None:
            return None
        claims, expires, _ = found
        if (time.time() if now is None else now) > expires:
            del self._claims[token]
            return None
        return claims

    def add(
        self, token: str, claims: Mapping[str, Any], *, kid: str, until: float = math.inf
    ) -> None:
        """Kept until the token's `exp`, and never past a lifetime after its `iat` (each plus
        the leeway `verify` allows), whatever `exp` a token signed with a leaked key carries,
        nor past `until`, when key `kid` stops verifying it; the oldest entry makes room when
        the cache is full."""
        if len(self._claims) >= self.capacity:
            del self._claims[next(iter(self._claims))]
        ends = min(float(claims["exp"]), float(claims["iat"]) + self.lifetime) + LEEWAY_SECONDS
        self._claims[token] = (claims, min(ends, until), kid)

    def retain(self, accepted: Mapping[str, float]) -> None:
        """The keys were read again: forget the tokens of keys not in `accepted`, and keep the
        others no longer than their key accepts them (kid -> until when)."""
        for token, (claims, expires, kid) in list(self._claims.items()):
            if kid not in accepted:
                del self._claims[token]
            elif accepted[kid] < expires:
                self._claims[token] = (claims, accepted[kid], kid)


def seal_key(audit_key: bytes) -> bytes:
    """The key this server's tokens are sealed with, derived from the audit key: whoever issues
    or checks them (the token endpoint, `sinergi token`, every process serving the database)
    holds the audit key, and the database does not."""
    return derived_key(audit_key, SEAL_KEY_LABEL)


def seal(key: bytes, claims: Mapping[str, Any]) -> str:
    """The HMAC of every claim but the seal, as one JSON text with sorted keys: whatever the
    principal is built from (client, scope, jurisdiction, org kind), its times and its jti."""
    sealed = {name: value for name, value in claims.items() if name != SEAL_CLAIM}
    message = json.dumps(["access token", sealed], sort_keys=True, separators=(",", ":"))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def check_seal(claims: Mapping[str, Any], key: bytes) -> None:
    """InvalidToken unless `claims`, of a token signed with one of this server's keys, carry
    their seal under `key` (`seal_key`'s): a token signed with a key read from the database
    but not issued here. Refused as a bad signature is, so the caller learns nothing more."""
    try:
        expected = seal(key, claims)
    except (TypeError, ValueError, RecursionError):  # claims no token issued here holds
        raise InvalidToken("claims cannot be sealed") from None
    if not same_mac(expected, claims.get(SEAL_CLAIM)):
        raise InvalidToken("signed, but not sealed with this server's audit key")


def issue(
    key: ECKey,
    *,
    seal_key: bytes,
    issuer: str,
    audience: str,
    client_id: str,
    scopes: frozenset[str],
    jurisdiction: str,
    org_kind: str,
    lifetime: int,
    now: float | None = None,
) -> str:
    """A token signed with `key` and sealed with `seal_key` (`tokens.seal_key` of the audit key):
    the one way a token this server accepts is made."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "sub": client_id,
        "client_id": client_id,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": secrets.token_urlsafe(16),
        "scope": " ".join(sorted(scopes)),
        "jurisdiction": jurisdiction,
        "org_kind": org_kind,
    }
    claims[SEAL_CLAIM] = seal(seal_key, claims)
    header = {"alg": key.alg or "ES256", "kid": key.kid, "typ": TOKEN_TYPE}
    return jwt.encode(header, claims, key, algorithms=["ES256"])


def decode_segment(segment: str) -> Mapping[str, Any]:
    """One base64url JSON segment of a compact JWS, unverified: whatever the sender put there,
    absurdly nested arrays (RecursionError) included, is an InvalidToken."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, RecursionError) as error:
        raise InvalidToken(f"malformed token: {error}") from None
    if not isinstance(decoded, dict):
        raise InvalidToken("malformed token segment")
    return decoded


def unverified_header(token: str) -> Mapping[str, Any]:
    """The header, read only to pick the verification key and refuse unacceptable algorithms."""
    return decode_segment(token.split(".", 1)[0])


def verify(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    audience: str,
    max_lifetime: int,
    require_type: bool = True,
    require_iat: bool = True,
    now: float | None = None,
) -> Mapping[str, Any]:
    """The claims of a token signed by one of `keys`, for `issuer` and `audience`, in date, and
    valid for no longer than `max_lifetime` (plus the leeway): `exp` less `iat`, or, for an
    issuer that need not set `iat` (`require_iat` false), `exp` less now.

    Whoever holds a signing key (leaked, or read from a retired key's row) could otherwise sign
    a token with an `exp` years away, and it would be accepted until then."""
    header = unverified_header(token)
    if header.get("alg") not in ACCEPTED_ALGORITHMS:
        raise InvalidToken(f"algorithm {shown(header.get('alg'))} not accepted")
    if require_type and str(header.get("typ", "")).lower() not in (
        TOKEN_TYPE,
        "application/at+jwt",
    ):
        raise InvalidToken("not an access token (typ must be at+jwt)")
    if "crit" in header:
        # Neither this server nor an SSO marks an extension critical, and joserfc read a
        # malformed `crit` (5, [1]) with a TypeError before the signature was checked.
        raise InvalidToken("the header names critical extensions (crit): none is understood")
    try:
        decoded = jwt.decode(token, keys, algorithms=list(ACCEPTED_ALGORITHMS))
    except (JoseError, ValueError, TypeError) as error:
        # TypeError: joserfc's reading of a header or claims whoever sent the token shaped.
        raise InvalidToken(f"signature or key: {error}") from None
    checked_at = int(time.time() if now is None else now)
    registry = JWTClaimsRegistry(
        now=checked_at,
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        iat={"essential": require_iat},
        sub={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except JoseError as error:
        raise InvalidToken(f"claims: {error}") from None
    claims = decoded.claims
    # validate() has checked that exp, and iat when present, are finite numbers.
    valid_for = claims["exp"] - claims.get("iat", checked_at)
    if valid_for > max_lifetime + LEEWAY_SECONDS:
        raise InvalidToken(f"valid for {valid_for} s, longer than the issuer's {max_lifetime} s")
    return claims
