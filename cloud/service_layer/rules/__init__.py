"""The cold-chain rules in the database: excursions from readings, the batches they exposed,
automatic holds, QA dispositions, and the questions asked of them.

This package's face: callers import the rules from here, whichever module does the work.
evaluation (readings -> excursions), states (detector states), config (set-up kept between
evaluations), progress (the rules mark), exposure, holds, budget (stability budget, MKT),
disposition (QA decisions, suppression windows), gaps (the scheduler's sweep), profiles,
quarantine (readings that could not be evaluated).
Everything runs in the caller's session and transaction; nothing here commits.
"""

from cloud.service_layer.rules.budget import mkt_for_batch, mkt_for_zone, remaining_budget
from cloud.service_layer.rules.config import RulesConfig
from cloud.service_layer.rules.disposition import (
    add_suppression,
    disposition_hold,
    open_holds,
    reviewer_of,
    two_person_because,
    two_person_holds,
)
from cloud.service_layer.rules.evaluation import evaluate_readings
from cloud.service_layer.rules.exposure import batch_exposures
from cloud.service_layer.rules.gaps import check_gaps
from cloud.service_layer.rules.history import zone_excursions
from cloud.service_layer.rules.outcome import NO_PRODUCT, SYSTEM_ACTOR, WITHDRAWN, RulesOutcome
from cloud.service_layer.rules.progress import progress, record_progress, unevaluated_readings
from cloud.service_layer.rules.quarantine import quarantine, quarantined_readings
from cloud.service_layer.rules.states import StaleStates

__all__ = [
    "NO_PRODUCT",
    "SYSTEM_ACTOR",
    "WITHDRAWN",
    "RulesConfig",
    "RulesOutcome",
    "StaleStates",
    "add_suppression",
    "batch_exposures",
    "check_gaps",
    "disposition_hold",
    "evaluate_readings",
    "mkt_for_batch",
    "mkt_for_zone",
    "open_holds",
    "progress",
    "quarantine",
    "quarantined_readings",
    "record_progress",
    "remaining_budget",
    "reviewer_of",
    "two_person_because",
    "two_person_holds",
    "unevaluated_readings",
    "zone_excursions",
]
