"""Enumerations whose values are the strings stored in the database."""

from __future__ import annotations

from enum import Enum

import strawberry

from domain.participations import ParticipationStatus as Status


@strawberry.enum(description="MSME scale under PP 7/2021 (annual sales, else business capital).")
class Scale(Enum):
    MICRO = "micro"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


@strawberry.enum(description="Jenis koperasi (UU 25/1992 and the ministry's ODS).")
class CooperativeType(Enum):
    PRODUSEN = "produsen"
    KONSUMEN = "konsumen"
    SIMPAN_PINJAM = "simpan_pinjam"
    PEMASARAN = "pemasaran"
    JASA = "jasa"


@strawberry.enum(
    description="The status the register holds, as its maintainers record it: ACTIVE when "
    "created, INACTIVE once deactivated (deactivateCooperative; the ministry's ODS counts a "
    "cooperative inactive after three book years without an RAT, which Sinergi does not derive "
    "from lastRatBookYear: a maintainer records it), DISSOLVED as recorded outside the API, "
    "which does not change it."
)
class CooperativeStatus(Enum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    DISSOLVED = "dissolved"


@strawberry.enum(
    description="Health rating of a cooperative's savings and loans (KSP/USP), as the dinas "
    "assess it; R11 fails the ratings a guarantee's rule set refuses (the shipped one: "
    "TIDAK_SEHAT)."
)
class KspHealth(Enum):
    SEHAT = "sehat"
    CUKUP_SEHAT = "cukup_sehat"
    KURANG_SEHAT = "kurang_sehat"
    TIDAK_SEHAT = "tidak_sehat"


@strawberry.enum(
    description="Where a business stands in a programme. ACTIVE and COMPLETED are recorded by "
    "a client with records:write in the business's jurisdiction, directly: no VERIFIED comes "
    "first. VERIFIED is optional, the owning agency's mark that it checked the business, set "
    "only by the programme's owner (a client of that agency's kind and jurisdiction), so a "
    "programme whose owner does not write records is never VERIFIED; while it stands, only the "
    "owner puts it back to PROPOSED or changes the detail it vouches for (others may still make "
    "it ACTIVE or end it), and one ever VERIFIED goes back to PROPOSED by the owner alone, from "
    "ACTIVE or an end too. A guarantor's R12 counts "
    "ACTIVE, the programme filter ACTIVE and COMPLETED; neither counts VERIFIED."
)
class ParticipationStatus(Enum):
    PROPOSED = Status.PROPOSED.value
    VERIFIED = Status.VERIFIED.value
    ACTIVE = Status.ACTIVE.value
    COMPLETED = Status.COMPLETED.value
    WITHDRAWN = Status.WITHDRAWN.value


@strawberry.enum
class RegionLevel(Enum):
    NATIONAL = "national"
    PROVINCE = "province"
    REGENCY = "regency"
    CITY = "city"
    DISTRICT = "district"
