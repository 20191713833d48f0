"""The root of every write, composed from one mixin per kind of writer."""

from __future__ import annotations

import strawberry

from schema.eligibility_mutation import CHECK_ELIGIBILITY, EligibilityMutation
from schema.planned_write import WriteRoot
from schema.planning_mutation import PlanningMutation
from schema.record_mutation import RecordMutation

WRITES: dict[str, WriteRoot] = {"checkEligibility": CHECK_ELIGIBILITY}
"""The root fields whose write the plan makes (schema/plan.py), by name."""


@strawberry.type
class Mutation(EligibilityMutation, PlanningMutation, RecordMutation):
    pass
