"""The scopes of the contract and the default bundle each kind of organisation gets."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    AGGREGATES_READ = "aggregates:read"
    RECORDS_READ = "records:read"
    PII_READ = "pii:read"
    RECORDS_WRITE = "records:write"
    TARGETS_READ = "targets:read"
    TARGETS_WRITE = "targets:write"
    ELIGIBILITY_CHECK = "eligibility:check"
    GUARANTEES_WRITE = "guarantees:write"
    AUDIT_READ = "audit:read"


class OrgKind(StrEnum):
    MINISTRY = "ministry"
    PROVINCE = "province"
    REGENCY = "regency"
    BUMD = "bumd"
    CUSTODIAN = "custodian"


_REGIONAL = frozenset(
    {
        Scope.AGGREGATES_READ,
        Scope.RECORDS_READ,
        Scope.RECORDS_WRITE,
        Scope.TARGETS_READ,
        Scope.TARGETS_WRITE,
    }
)

DEFAULT_SCOPES: dict[OrgKind, frozenset[Scope]] = {
    OrgKind.MINISTRY: frozenset({Scope.AGGREGATES_READ, Scope.TARGETS_READ}),
    OrgKind.PROVINCE: _REGIONAL,
    OrgKind.REGENCY: _REGIONAL,
    OrgKind.BUMD: frozenset(
        {Scope.ELIGIBILITY_CHECK, Scope.GUARANTEES_WRITE, Scope.AGGREGATES_READ}
    ),
    OrgKind.CUSTODIAN: frozenset({Scope.AUDIT_READ, Scope.AGGREGATES_READ}),
}


READ_BEHIND_WRITE: dict[Scope, Scope] = {Scope.RECORDS_WRITE: Scope.RECORDS_READ}
"""A write scope and the read scope it is usable only with. A record mutation answers with the
whole record it wrote (a stale `version` with CONFLICT and the current one), and record ids run
in sequence, so writing records without reading them would be reading every record in the
jurisdiction. The other write scopes hand back only what the client itself wrote:
`reportRealisation` the realisation, `recordGuarantee` and `changeGuaranteeStatus` the
client's own guarantee on its own decision."""


def unreadable_writes(scopes: frozenset[Scope]) -> frozenset[Scope]:
    """The write scopes in `scopes` whose read scope (READ_BEHIND_WRITE) is not among them."""
    return frozenset(
        write for write, read in READ_BEHIND_WRITE.items() if write in scopes and read not in scopes
    )


def usable(scopes: frozenset[Scope]) -> frozenset[Scope]:
    """`scopes` less the writes it cannot read back: what any token, registered or external,
    holds of what it was granted or claims."""
    return scopes - unreadable_writes(scopes)


def parse_scopes(raw: str) -> frozenset[Scope]:
    """Parse a space-separated scope string (RFC 6749 §3.3: spaces only, so a scope holding a
    tab or a non-breaking space is an unknown one); unknown scopes raise ValueError."""
    return frozenset(Scope(item) for item in raw.split(" ") if item)
