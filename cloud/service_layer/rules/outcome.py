"""What every rule evaluation shares: the outcome it reports to its caller, the names its
changes are audited under, and the reasons it marks excursions with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import Excursion, Hold

SYSTEM_ACTOR = "system:rules"
SYSTEM_REASON = "automatic rule evaluation"
WITHDRAWN = "withdrawn: re-evaluated late data no longer shows it"
NO_PRODUCT = "no product in the zone"


@dataclass
class RulesOutcome:
    """What an evaluation opened, closed or changed, and the holds it opened."""

    opened: list[Excursion] = field(default_factory=list)  # new rows (may be closed already)
    closed: list[Excursion] = field(default_factory=list)  # stored rows that ended now
    changed: list[Excursion] = field(default_factory=list)  # escalated, withdrawn, re-timed
    holds: list[Hold] = field(default_factory=list)
    triggers: dict[int, datetime] = field(default_factory=dict)  # excursion id -> received_at
    lots: dict[int, str] = field(default_factory=dict)  # batch id -> lot, of the holds opened
    # (zone, profile) -> (version, detector state) as written: kept by the caller once committed
    states: dict[tuple[str, str], tuple[int, dict[str, Any]]] = field(default_factory=dict)

    @property
    def excursions(self) -> list[Excursion]:
        """New and newly closed excursions: what alerting is told about."""
        return [*self.opened, *self.closed]


@contextmanager
def _as_system(session: Session) -> Iterator[None]:
    """Rule-made changes are audited as the rules engine, unless a person is acting."""
    saved = {k: session.info.get(k) for k in ("actor", "reason")}
    session.info.setdefault("actor", SYSTEM_ACTOR)
    if not session.info.get("reason"):
        session.info["reason"] = SYSTEM_REASON
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                session.info.pop(key, None)
            else:
                session.info[key] = value
