"""Expiry for the control room: batches per tier per site (site-local dates), and FEFO."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

import cloud.service_layer.expiry as expiry
from cloud.adapters.orm.readings import Site
from cloud.adapters.orm.traceability import Order, OrderLine, Product

UNPLACED = "(not at any site)"


def tier_key(row: expiry.ExpiringBatch) -> str:
    return "expired" if row.expired or row.tier is None else str(row.tier)


def tier_counts(
    rows: Iterable[expiry.ExpiringBatch],
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Distinct batches per tier overall, and per site."""
    overall: dict[str, set[int]] = defaultdict(set)
    per_site: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for row in rows:
        overall[tier_key(row)].add(row.batch_id)
        per_site[row.site_id or UNPLACED][tier_key(row)].add(row.batch_id)
    return (
        {k: len(v) for k, v in overall.items()},
        {s: {k: len(v) for k, v in tiers.items()} for s, tiers in per_site.items()},
    )


@dataclass(frozen=True)
class ExpiryLine:
    site: str
    lot: str
    product: str
    gtin: str
    expires_on: date
    days_left: int
    tier: str
    items: int


def expiry_board(session: Session, now: datetime) -> list[ExpiryLine]:
    """Every batch in a warning tier or expired, by site, soonest first."""
    sites = dict(session.execute(select(Site.id, Site.name)).all())
    products = dict(session.execute(select(Product.gtin, Product.name)).all())
    return [
        ExpiryLine(
            site=sites.get(r.site_id, r.site_id) if r.site_id else UNPLACED,
            lot=r.lot,
            product=products.get(r.gtin, r.gtin),
            gtin=r.gtin,
            expires_on=r.expires_on,
            days_left=r.days_left,
            tier=tier_key(r),
            items=r.items,
        )
        for r in expiry.expiry_tiers(session, now)
    ]


def order_lines(session: Session) -> list[tuple[int, str]]:
    """(order line id, label) of every order line, newest order first."""
    rows = session.execute(
        select(OrderLine.id, Order.id, Product.name, OrderLine.quantity)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Product, Product.gtin == OrderLine.gtin)
        .order_by(Order.placed_at.desc(), OrderLine.id)
    ).all()
    return [(line, f"{order}: {qty} x {name}") for line, order, name, qty in rows]


def fefo(session: Session, order_line_id: int, now: datetime) -> expiry.Suggestion:
    return expiry.fefo_suggestions(session, order_line_id, now)
