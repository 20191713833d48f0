"""What a programme does and whom it is for: the closed vocabularies of its kind and subjects.

The kind is read by a rule: R12 fails a check while the business takes part in a programme of
kind `subsidised_credit` (db/queries/eligibility.py). As free text, a KUR programme loaded as
"kur" or "Subsidised_Credit" was one no rule counted, and R12 passed on data it could not read,
where missing data is never a pass (docs/domain.md). These values are the only ones the
reference loader takes and the database stores (a CHECK constraint, migration 0045); a new kind
of programme is added here, and in a migration widening the constraint, before any is loaded.
"""

from __future__ import annotations

from enum import StrEnum


class ProgrammeKind(StrEnum):
    PRODUCTION = "production"
    """Businesses produce for the programme (a cooperative's red palm oil)."""
    SUPPLY = "supply"
    """Businesses supply the programme (food for Makan Bergizi Gratis)."""
    CREDIT_GUARANTEE = "credit_guarantee"
    """A guarantor's programme of credit guarantees."""
    SUBSIDISED_CREDIT = "subsidised_credit"
    """Credit whose interest the state subsidises (KUR): the one kind R12 counts."""
    CERTIFICATION = "certification"
    """Licences and certificates (NIB, halal)."""
    GRANT = "grant"
    """Grants in money or kind."""
    TRAINING = "training"
    """Training and mentoring."""
    INSTITUTION_BUILDING = "institution_building"
    """Forming and strengthening cooperatives."""


class ProgrammeSubjects(StrEnum):
    """Whom a programme takes in: MSMEs, cooperatives or both. Minyak Makan Merah is produced by
    palm-farmer cooperatives only, Bantuan Produktif UMKM is a grant to MSMEs: a business of the
    other kind enrolled there would be counted as taking part in a programme it cannot be in.
    Stored held to these values (a CHECK constraint, migration 0047); `addParticipation` refuses
    a subject of the other kind (db/writes/participations.py)."""

    MSME = "msme"
    COOPERATIVE = "cooperative"
    BOTH = "both"
