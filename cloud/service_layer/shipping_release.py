"""QA's signed release of a transfer's or a shipment's batches for shipment.

Before cold goods (2-8 C, frozen) are loaded, QA reviews each batch's temperature evidence
(stability budget left, MKT, open excursions) and signs its release for shipment (meaning
shipment_release). The evidence is kept as the release's manifest, which the signature's
record hash covers; a load checks for a release whose signature still matches it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cloud.adapters.orm.people import Signature, User
from cloud.adapters.orm.quality import Excursion, Exposure
from cloud.adapters.orm.traceability import (
    Batch,
    CustodyInterval,
    Item,
    Product,
    Shipment,
    ShipmentItem,
    ShippingRelease,
    Transfer,
    TransferItem,
)
from cloud.domain import release_gate as gate
from cloud.domain.clock import utcnow
from cloud.service_layer import rules
from cloud.service_layer.release_gate import LoadRefused, gate_reasons, shipment_destination
from cloud.service_layer.signatures import sign, signature_matches, signatures_on

log = logging.getLogger(__name__)
MEANING = "shipment_release"
RELEASABLE = {"transfer": ("planned", "loaded"), "shipment": ("picked",)}


class ReleaseRefused(ValueError):
    """A release for shipment that cannot be signed now, saying why."""


@dataclass(frozen=True, kw_only=True)
class OpenExcursion:
    id: int
    zone_id: str
    kind: str
    level: str
    started_at: str


@dataclass(frozen=True, kw_only=True)
class BatchEvidence:
    """One batch of the movement with the temperature evidence QA weighs."""

    batch_id: int
    lot: str
    gtin: str
    product: str
    temperature_class: str
    status: str
    expires_on: str
    items: int
    budget_min: float | None
    remaining_budget_min: float | None
    mkt_c: float | None
    open_excursions: tuple[OpenExcursion, ...]


@dataclass(frozen=True, kw_only=True)
class ReleaseView:
    """A movement's release for shipment: needed or not, the evidence now, the signed one."""

    movement: str  # "shipment SH-1"
    required: bool
    evidence: list[BatchEvidence]
    release: ShippingRelease | None
    signature: Signature | None


def _kind(row: Transfer | Shipment) -> str:
    return "transfer" if isinstance(row, Transfer) else "shipment"


def movement_name(row: Transfer | Shipment) -> str:
    return f"{_kind(row)} {row.id}"


def movement_items(session: Session, row: Transfer | Shipment) -> list[Item]:
    """The items the movement carries (a transfer's planned ones, a shipment's picked ones)."""
    if isinstance(row, Transfer):
        query = (
            select(Item)
            .join(TransferItem, TransferItem.item_id == Item.id)
            .where(TransferItem.transfer_id == row.id)
            .where(
                or_(TransferItem.discrepancy.is_(None), TransferItem.discrepancy != "unexpected")
            )
        )
    else:
        query = (
            select(Item)
            .join(ShipmentItem, ShipmentItem.item_id == Item.id)
            .where(ShipmentItem.shipment_id == row.id)
        )
    return list(session.scalars(query.order_by(Item.id)))


def _open_excursions(session: Session, batch_id: int, item_ids: list[int]) -> list[Excursion]:
    """Open, unsuppressed excursions that exposed the batch or are where its items are now."""
    zones = select(CustodyInterval.zone_id).where(
        CustodyInterval.item_id.in_(item_ids), CustodyInterval.ended_at.is_(None)
    )
    exposed = select(Exposure.excursion_id).where(Exposure.batch_id == batch_id)
    query = select(Excursion).where(
        Excursion.state == "open",
        Excursion.suppressed_reason.is_(None),
        or_(Excursion.zone_id.in_(zones), Excursion.id.in_(exposed)),
    )
    return list(session.scalars(query.order_by(Excursion.started_at, Excursion.id)))


def _number(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def evidence(
    session: Session, row: Transfer | Shipment, at: datetime | None = None
) -> list[BatchEvidence]:
    """Per batch the movement carries: its stability budget left, its MKT, open excursions."""
    items = movement_items(session, row)
    count = Counter(item.batch_id for item in items)
    found = []
    for batch_id in sorted(count):
        batch = session.get(Batch, batch_id)
        assert batch is not None
        product = session.get(Product, batch.gtin)
        ids = [item.id for item in items if item.batch_id == batch_id]
        found.append(
            BatchEvidence(
                batch_id=batch.id,
                lot=batch.lot,
                gtin=batch.gtin,
                product=product.name if product else batch.gtin,
                temperature_class=gate.temperature_class(
                    product.low if product else None, product.high if product else None
                ),
                status=batch.status,
                expires_on=batch.expires_on.isoformat(),
                items=count[batch_id],
                budget_min=_number(product.stability_budget_min if product else None),
                remaining_budget_min=_number(rules.remaining_budget(session, batch.id)),
                mkt_c=_number(rules.mkt_for_batch(session, batch.id, at)),
                open_excursions=tuple(
                    OpenExcursion(
                        id=e.id,
                        zone_id=e.zone_id,
                        kind=e.kind,
                        level=e.level,
                        started_at=e.started_at.astimezone(UTC).isoformat(),
                    )
                    for e in _open_excursions(session, batch.id, ids)
                ),
            )
        )
    return found


def _needed(found: Iterable[BatchEvidence]) -> bool:
    return any(b.temperature_class in gate.RELEASED_CLASSES for b in found)


def _releases(session: Session, row: Transfer | Shipment) -> list[ShippingRelease]:
    column = (
        ShippingRelease.transfer_id if isinstance(row, Transfer) else ShippingRelease.shipment_id
    )
    query = select(ShippingRelease).where(column == row.id)
    return list(session.scalars(query.order_by(ShippingRelease.id.desc())))


def valid_release(
    session: Session, row: Transfer | Shipment
) -> tuple[ShippingRelease, Signature] | None:
    """The newest release of the movement whose shipment_release signature still matches it."""
    for release in _releases(session, row):
        for signature in signatures_on(session, release):
            if signature.meaning == MEANING and signature_matches(session, signature, release):
                return release, signature
    return None


def release_view(
    session: Session, row: Transfer | Shipment, at: datetime | None = None
) -> ReleaseView:
    """What QA sees before signing (and what the manifest shows after): the evidence now."""
    found = evidence(session, row, at)
    signed = valid_release(session, row)
    return ReleaseView(
        movement=movement_name(row),
        required=_needed(found),
        evidence=found,
        release=signed[0] if signed else None,
        signature=signed[1] if signed else None,
    )


def release_for_shipment(
    session: Session,
    row: Transfer | Shipment,
    user: User,
    password: str,
    reason: str,
    at: datetime | None = None,
    *,
    username: str | None = None,
) -> tuple[ShippingRelease, Signature]:
    """QA signs the movement's release for shipment over the evidence shown now (`username`:
    the user ID, needed for a session's first signing)."""
    at = at or utcnow()
    name = movement_name(row)
    if row.state not in RELEASABLE[_kind(row)]:
        raise ReleaseRefused(f"{name} is {row.state}: a release for shipment comes before loading")
    found = evidence(session, row, at)
    if not found:
        raise ReleaseRefused(f"{name} carries no items")
    destination = (
        row.destination_site_id
        if isinstance(row, Transfer)
        else shipment_destination(session, row.order_id)
    )
    blocked = gate_reasons(
        session,
        [b.batch_id for b in found],
        None,
        destination,
        at=at,
        order_id=row.order_id if isinstance(row, Shipment) else None,
    )
    if blocked:  # nothing the gate refuses is released for shipment
        raise LoadRefused(blocked, "release for shipment")
    release = ShippingRelease(
        transfer_id=row.id if isinstance(row, Transfer) else None,
        shipment_id=row.id if isinstance(row, Shipment) else None,
        released_at=at,
        released_by=user.id,
        manifest={
            "movement": name,
            "released_at": at.astimezone(UTC).isoformat(),
            "batches": [asdict(b) for b in found],
        },
    )
    session.add(release)
    session.flush()
    signature = sign(session, user, password, release, MEANING, reason, username=username)
    log.info("%s released for shipment by %s", name, user.username)
    return release, signature


def release_reasons(
    session: Session, row: Transfer | Shipment, items: Iterable[Item]
) -> list[gate.Reason]:
    """Why loading `items` needs a release for shipment it has not got (empty: none needed)."""
    batches = {item.batch_id for item in items}
    lots: dict[str, list[str]] = {}
    for batch, product in session.execute(
        select(Batch, Product)
        .join(Product, Product.gtin == Batch.gtin)
        .where(Batch.id.in_(batches))
    ):
        klass = gate.temperature_class(product.low, product.high)
        lots.setdefault(klass, []).append(batch.lot)
    if not set(lots) & gate.RELEASED_CLASSES:
        return []
    signed = valid_release(session, row)
    released = (
        None
        if signed is None
        else frozenset(b["lot"] for b in signed[0].manifest.get("batches", []))
    )
    return gate.missing_release(movement_name(row), lots, released)
