"""Batch trace for the control room: find a batch by lot, GTIN, EPC or a scanned GS1
string; its custody timeline, exposures, and where every item is now."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from cloud.adapters.orm import alerting, quality
from cloud.adapters.orm.readings import Site, Zone
from cloud.adapters.orm.traceability import (
    Batch,
    Customer,
    Item,
    Order,
    Product,
    Shipment,
    ShipmentItem,
)
from cloud.service_layer.custody import batch_timeline
from edge.gs1.scan import (
    ElementString,
    ElementStringError,
    parse_ai_data,
    parse_bracketed,
    parse_dl_uri,
    parse_element_string,
    parse_scan,
)

_EPC = re.compile(r"^[0-9A-Fa-f]{24}$")
_GTIN = re.compile(r"^\d{8}$|^\d{12,14}$")


@dataclass(frozen=True)
class Found:
    """Batches matching a search, and how the search was understood."""

    understood: str
    batches: list[tuple[int, str, str, str]]  # (id, lot, gtin, product)


@dataclass(frozen=True)
class Stay:
    zone: str
    site: str
    timezone: str
    started_at: datetime
    ended_at: datetime | None
    items: int


@dataclass(frozen=True)
class ExposureLine:
    excursion: str
    zone: str
    minutes: float
    min_value: float | None
    max_value: float | None
    degree_minutes: float
    started_at: datetime
    timezone: str


@dataclass(frozen=True)
class BatchTrace:
    batch_id: int
    lot: str
    gtin: str
    product: str
    expires_on: str
    status: str
    quantity: int
    items: int
    where_now: list[tuple[str, int]]  # (place, item count)
    timeline: list[Stay]
    exposures: list[ExposureLine]
    shipments: list[tuple[str, str, str, int]]  # (shipment, state, customer, items)
    recalls: list[str]


def find(session: Session, query: str) -> Found:
    """Batches for a lot, a GTIN, an EPC (hex) or a scanned GS1 string or Digital Link."""
    text = query.strip()
    if not text:
        raise ValueError("type a lot, a GTIN, an EPC or scan a GS1 barcode")
    base = select(Batch.id, Batch.lot, Batch.gtin, Product.name).join(
        Product, Product.gtin == Batch.gtin
    )
    if _EPC.match(text):
        item = session.scalars(select(Item).where(Item.epc == text.upper())).first()
        rows = session.execute(base.where(Batch.id == item.batch_id)).all() if item else []
        return _found(f"EPC {text.upper()}", rows)
    if _GTIN.match(text):
        gtin = text.zfill(14)
        rows = session.execute(base.where(Batch.gtin == gtin).order_by(Batch.expires_on)).all()
        if rows:
            return _found(f"GTIN {gtin}", rows)
    parser = _gs1_parser(text)
    if parser is not None:
        try:
            scanned = parser(text)
        except ElementStringError as exc:
            if not text.startswith(("]", "(", "^", "http")):
                return _by_lot(session, base, text)  # a lot that happens to look like AI data
            raise ValueError(f"not a GS1 scan: {exc}") from exc
        if scanned.gtin and scanned.serial:
            item = session.scalars(
                select(Item).where(Item.gtin == scanned.gtin, Item.serial == scanned.serial)
            ).first()
            if item is not None:
                rows = session.execute(base.where(Batch.id == item.batch_id)).all()
                return _found(f"item (01){scanned.gtin}(21){scanned.serial}", rows)
        if scanned.gtin and scanned.lot:
            rows = session.execute(
                base.where(Batch.gtin == scanned.gtin, Batch.lot == scanned.lot)
            ).all()
            return _found(f"(01){scanned.gtin}(10){scanned.lot}", rows)
        if scanned.gtin:
            rows = session.execute(base.where(Batch.gtin == scanned.gtin)).all()
            return _found(f"GTIN {scanned.gtin}", rows)
        return Found(f"scan {scanned.bracketed()} names no GTIN", [])
    return _by_lot(session, base, text)


def _found(understood: str, rows: Sequence[Row[int, str, str, str]]) -> Found:
    return Found(understood, [(id_, lot, gtin, name) for id_, lot, gtin, name in rows])


def _gs1_parser(text: str) -> Callable[[str], ElementString] | None:
    """The parser for the form the text is in: scanner output, bracketed, ^-separated AI
    data, a Digital Link URI or raw AI data; None when it does not look like GS1 at all."""
    if text.startswith("]"):
        return parse_scan
    if text.startswith("("):
        return parse_bracketed
    if text.startswith("^"):
        return parse_ai_data
    if text.startswith(("http://", "https://")):
        return parse_dl_uri
    if text[:2] in ("00", "01") and len(text) > 16 or "\x1d" in text:
        return parse_element_string
    return None


def _by_lot(session: Session, base: Select[int, str, str, str], lot: str) -> Found:
    rows = session.execute(base.where(Batch.lot == lot).order_by(Batch.gtin)).all()
    return _found(f"lot {lot}", rows)


def trace(session: Session, batch_id: int) -> BatchTrace:
    """Everything the control room shows about one batch."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise LookupError(f"batch {batch_id} does not exist")
    product = session.get(Product, batch.gtin)
    zones = {
        z.id: (z.name, s.name, s.timezone)
        for z, s in session.execute(select(Zone, Site).join(Site, Site.id == Zone.site_id))
    }
    intervals = batch_timeline(session, batch_id)
    stays: dict[tuple[str, datetime], list] = defaultdict(list)
    for interval in intervals:
        stays[(interval.zone_id, interval.started_at.replace(second=0, microsecond=0))].append(
            interval
        )
    timeline = []
    for (zone_id, _), group in sorted(stays.items(), key=lambda kv: kv[0][1]):
        name, site, tz = zones.get(zone_id, (zone_id, "?", "UTC"))
        ends = [g.ended_at for g in group]
        timeline.append(
            Stay(
                name,
                site,
                tz,
                min(g.started_at for g in group),
                None if any(e is None for e in ends) else max(e for e in ends if e),
                len({g.item_id for g in group}),
            )
        )
    now_places: Counter[str] = Counter()
    open_items = set()
    for interval in intervals:
        if interval.ended_at is None:
            name, site, _ = zones.get(interval.zone_id, (interval.zone_id, "?", "UTC"))
            now_places[f"{site} / {name}"] += 1
            open_items.add(interval.item_id)
    item_ids = list(session.scalars(select(Item.id).where(Item.batch_id == batch_id)))
    unknown = len(set(item_ids) - open_items)
    if unknown:
        now_places["not seen anywhere now (shipped, used or unread)"] += unknown
    shipments = [
        (s, state, customer, count) for s, state, customer, count in _shipments(session, item_ids)
    ]
    return BatchTrace(
        batch_id=batch.id,
        lot=batch.lot,
        gtin=batch.gtin,
        product=product.name if product else batch.gtin,
        expires_on=batch.expires_on.isoformat(),
        status=batch.status,
        quantity=batch.quantity,
        items=len(item_ids),
        where_now=sorted(now_places.items()),
        timeline=timeline,
        exposures=_exposures(session, batch_id, zones),
        shipments=shipments,
        recalls=_recalls(session, batch_id),
    )


def _shipments(session: Session, item_ids: list[int]) -> list[tuple[str, str, str, int]]:
    if not item_ids:
        return []
    rows = session.execute(
        select(Shipment.id, Shipment.state, Customer.name, ShipmentItem.item_id)
        .join(ShipmentItem, ShipmentItem.shipment_id == Shipment.id)
        .join(Order, Order.id == Shipment.order_id)
        .join(Customer, Customer.id == Order.customer_id)
        .where(ShipmentItem.item_id.in_(item_ids))
    ).all()
    count: Counter[tuple[str, str, str]] = Counter((s, st, c) for s, st, c, _ in rows)
    return [(s, st, c, n) for (s, st, c), n in sorted(count.items())]


def _exposures(
    session: Session, batch_id: int, zones: dict[str, tuple[str, str, str]]
) -> list[ExposureLine]:
    rows = session.execute(
        select(quality.Exposure, quality.Excursion)
        .join(quality.Excursion, quality.Excursion.id == quality.Exposure.excursion_id)
        .where(quality.Exposure.batch_id == batch_id)
        .order_by(quality.Exposure.started_at)
    ).all()
    lines = []
    for exposure, excursion in rows:
        name, site, tz = zones.get(excursion.zone_id, (excursion.zone_id, "?", "UTC"))
        lines.append(
            ExposureLine(
                f"{excursion.level.upper()} {excursion.kind} (excursion {excursion.id})"
                # absorbed by a suppression window, or withdrawn by late data: said, not hidden
                + (f" - {excursion.suppressed_reason}" if excursion.suppressed_reason else ""),
                f"{site} / {name}",
                exposure.minutes,
                exposure.min_value,
                exposure.max_value,
                exposure.degree_minutes,
                exposure.started_at,
                tz,
            )
        )
    return lines


def _recalls(session: Session, batch_id: int) -> list[str]:
    recalls = session.scalars(select(alerting.Recall).where(alerting.Recall.batch_id == batch_id))
    return [
        f"recall {r.id} ({r.state}) opened {r.opened_at:%Y-%m-%d %H:%M} UTC: {r.reason}"
        for r in recalls
    ]
