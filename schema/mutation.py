"""The root of every write, composed from one mixin per kind of writer."""

from __future__ import annotations

import strawberry

from schema.eligibility_mutation import EligibilityMutation
from schema.planning_mutation import PlanningMutation
from schema.record_mutation import RecordMutation


@strawberry.type
class Mutation(EligibilityMutation, PlanningMutation, RecordMutation):
    pass
