"""The release gate: every reason a load of batches onto a truck must be refused.

Each check runs independently, so a refusal lists all that apply, not the first one found.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from cloud.domain.expiry import days_left, is_expired

TEMPERATURE_CLASSES = ("frozen", "2-8C", "15-25C", "uncontrolled")
# Classes whose loading needs QA's signed release for shipment (meaning shipment_release).
RELEASED_CLASSES = frozenset({"frozen", "2-8C"})


def temperature_class(low: float | None, high: float | None) -> str:
    """The storage class of a product from its range (C): frozen, 2-8C, 15-25C, uncontrolled."""
    if high is not None and high <= -15:
        return "frozen"
    if high is not None and high <= 8:
        return "2-8C"
    if low is None and high is None:
        return "uncontrolled"
    return "15-25C"


@dataclass(frozen=True, slots=True, kw_only=True)
class GateBatch:
    id: int
    lot: str
    status: str
    expires_on: date
    temperature_class: str
    recalled: bool = False  # an open recall, whatever the status says


@dataclass(frozen=True, slots=True, kw_only=True)
class Destination:
    site_id: str
    approved: frozenset[str] | None  # temperature classes; None: the site has no approval list


@dataclass(frozen=True, slots=True, kw_only=True)
class Load:
    """What the gate needs to know about one load."""

    batches: tuple[GateBatch, ...]
    today: date  # at the site the load leaves
    delivery: date | None = None
    min_shelf_life_days: dict[int, int] = field(default_factory=dict)  # batch id -> days
    from_zones: tuple[str, ...] = ()
    open_excursions: tuple[tuple[str, int, str], ...] = ()  # (zone, excursion id, kind)
    destination: Destination | None = None


@dataclass(frozen=True, slots=True, order=True)
class Reason:
    # expired | held | rejected | recalled | shelf_life | open_excursion | destination
    # | shipping_release (no signed release for shipment of a cold batch)
    code: str
    subject: str  # the lot, zone or site it is about
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "subject": self.subject, "detail": self.detail}


def _batch_reasons(b: GateBatch, load: Load) -> Iterable[Reason]:
    if is_expired(b.expires_on, load.today) or b.status == "expired":  # its site's midnight
        yield Reason("expired", b.lot, f"batch {b.lot} expired on {b.expires_on.isoformat()}")
    if b.status in ("held", "rejected"):
        yield Reason(b.status, b.lot, f"batch {b.lot} is {b.status}")
    if b.recalled or b.status == "recalled":
        yield Reason("recalled", b.lot, f"batch {b.lot} is recalled")
    need = load.min_shelf_life_days.get(b.id)
    if need:
        left = days_left(b.expires_on, load.delivery or load.today)
        if left < need:
            yield Reason(
                "shelf_life",
                b.lot,
                f"batch {b.lot} has {left} days of shelf life left at delivery, "
                f"the order needs {need}",
            )
    dest = load.destination
    if dest is not None and dest.approved is not None:
        if b.temperature_class not in dest.approved:
            yield Reason(
                "destination",
                b.lot,
                f"site {dest.site_id} is not approved for {b.temperature_class} "
                f"products (batch {b.lot})",
            )


def reasons(load: Load) -> list[Reason]:
    """Every reason the load must be refused, sorted; empty means it may go."""
    found: set[Reason] = set()
    for batch in load.batches:
        found.update(_batch_reasons(batch, load))
    for zone, excursion_id, kind in load.open_excursions:
        if zone in load.from_zones:
            found.add(
                Reason(
                    "open_excursion",
                    zone,
                    f"zone {zone} it is leaving has an open {kind} excursion ({excursion_id})",
                )
            )
    return sorted(found)


def missing_release(
    movement: str, lots_by_class: dict[str, list[str]], released_lots: frozenset[str] | None
) -> list[Reason]:
    """A reason per cold lot loaded without QA's signed release for shipment covering it
    (released_lots None: the movement has no valid release at all)."""
    found = []
    for klass in sorted(set(lots_by_class) & RELEASED_CLASSES):
        for lot in sorted(lots_by_class[klass]):
            if released_lots is not None and lot in released_lots:
                continue
            what = (
                "has no signed release for shipment"
                if released_lots is None
                else "is not in the signed release for shipment"
            )
            found.append(
                Reason(
                    "shipping_release",
                    lot,
                    f"{klass} batch {lot}: {movement} {what}; QA must sign its release for "
                    "shipment (meaning shipment_release) before loading",
                )
            )
    return sorted(found)
