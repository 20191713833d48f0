"""A guarantor's eligibility decision about a new MSME, made through the schema as the province
and the guarantor make it: for the tests of what later uses of a decision (reading it back,
reviewing it, recording or changing a guarantee on it) tell and audit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
from tests.support.databases import run as sql
from tests.support.graphql import principal, run
from tests.test_record_mutations import msme_input

PROVINCE = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ}))
"""Kalimantan Tengah's province, which registers the MSME and its owner."""
GUARANTOR = principal(OrgKind.BUMD, "62")
"""A credit guarantor of Kalimantan Tengah, whose decisions they are."""
ATTESTED: Mapping[str, Any] = {
    "hasOtherProductiveCredit": False,
    "feasibilityApproved": True,
    "onNationalBlacklist": False,
    "hasNpwp": True,
    "maxCollectibility": 1,
}
"""What the guarantor attests of a business the rules find ELIGIBLE."""

_CREATE = "mutation DecisionCreate($input: CreateMsmeInput!) { createMsme(input: $input) { id } }"
_CHECK = """
mutation DecisionCheck($request: EligibilityRequest!) { checkEligibility(request: $request) { id } }
"""


def check_request(nib: str, attestation: Mapping[str, Any] = ATTESTED) -> dict[str, Any]:
    """GUARANTOR's request to check `nib` for a Rp50 juta productive guarantee over 24 months."""
    return {
        "nib": nib,
        "product": "JAMKRIDA_KTG_PRODUKTIF",
        "loanAmount": "50000000",
        "tenorMonths": 24,
        "attestation": dict(attestation),
    }


async def registered_msme(engine: AsyncEngine, nib: str, nik: str) -> str:
    """A new MSME `nib` owned by `nik`, registered by PROVINCE: its id. For a guarantor other
    than GUARANTOR (one served over HTTP) to check it."""
    owner = {"nik": nik, "fullName": "Siti Pemilik"}
    created = await run(
        engine,
        PROVINCE,
        _CREATE,
        {"input": msme_input(nib, establishedOn="2020-01-01", owner=owner)},
    )
    assert created.errors is None, created.errors
    return str(created.data["createMsme"]["id"])


async def decided(
    engine: AsyncEngine, nib: str, nik: str, attestation: Mapping[str, Any] = ATTESTED
) -> tuple[str, str]:
    """A new MSME `nib` owned by `nik` (`registered_msme`), checked by GUARANTOR for a
    productive loan with `attestation` (the check's audit entry is `DecisionCheck`'s): the
    MSME's id and the decision's."""
    msme_id = await registered_msme(engine, nib, nik)
    checked = await run(engine, GUARANTOR, _CHECK, {"request": check_request(nib, attestation)})
    assert checked.errors is None, checked.errors
    return msme_id, str(checked.data["checkEligibility"]["id"])


async def guarantor_equity(reference_url: str) -> None:
    """GUARANTOR's equity registered (Rp50 miliar) as the owner at `reference_url` registers
    it, once: a guarantee is recorded only within its limit."""
    await asyncio.to_thread(
        sql,
        reference_url,
        "INSERT INTO guarantors (client_id, equity) VALUES ($1, 5e10) ON CONFLICT DO NOTHING",
        GUARANTOR.client_id,
    )
