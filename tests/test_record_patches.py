"""The record mutations' `…Changes` inputs become typed patches (domain/records.py `MsmePatch`,
and its cooperative and participation peers). Their fields are read off the input dynamically
and cast, so the patch types' keys are held here to the inputs' fields: a field added to one and
not the other would reach the resolvers untyped, or never be offered to clients."""

from __future__ import annotations

from datetime import date

import pytest

from domain.cooperative_records import CooperativePatch
from domain.participations import ParticipationPatch
from domain.participations import ParticipationStatus as DomainStatus
from domain.records import OwnerDraft
from domain.scale import Scale as DomainScale
from resolvers.msme_writes import MsmeUpdate
from schema.enums import CooperativeType, ParticipationStatus, Scale
from schema.record_inputs import (
    CooperativeChanges,
    MsmeChanges,
    OwnerInput,
    ParticipationChanges,
    cooperative_patch,
    msme_patch,
    participation_patch,
)


def _input_fields(changes: type) -> set[str]:
    return {field.python_name for field in changes.__strawberry_definition__.fields}


@pytest.mark.parametrize(
    ("changes", "patch"),
    [
        (MsmeChanges, MsmeUpdate),
        (CooperativeChanges, CooperativePatch),
        (ParticipationChanges, ParticipationPatch),
    ],
)
def test_a_patch_type_has_exactly_its_inputs_fields(changes: type, patch: type) -> None:
    assert patch.__optional_keys__ == _input_fields(changes)
    assert not patch.__required_keys__


def test_an_msme_patch_holds_what_was_sent_converted_to_the_domains_values() -> None:
    owner = OwnerInput(nik="6271010101900001", full_name="Siti")
    patch = msme_patch(MsmeChanges(name="Toko Baru", district=None, scale=Scale.SMALL, owner=owner))
    assert set(patch) == {"name", "district", "scale", "owner"}
    assert patch["name"] == "Toko Baru"
    assert patch["district"] is None
    assert patch["scale"] is DomainScale.SMALL
    assert isinstance(patch["owner"], OwnerDraft)


def test_a_cooperative_patch_holds_the_stored_type() -> None:
    patch = cooperative_patch(CooperativeChanges(type=CooperativeType.SIMPAN_PINJAM, surplus=None))
    assert patch == {"type": "simpan_pinjam", "surplus": None}


def test_a_participation_patch_holds_the_domains_status() -> None:
    patch = participation_patch(
        ParticipationChanges(status=ParticipationStatus.COMPLETED, started_on=date(2024, 1, 2))
    )
    assert patch == {"status": DomainStatus.COMPLETED, "started_on": date(2024, 1, 2)}
