"""Expiry on PostgreSQL: warning tiers per site, expired batches blocked at midnight site time
by the scheduler on a clock the test moves (and by the real `coldchain-cloud scheduler`
command), and FEFO pick suggestions from the stock in custody."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.quality import Excursion, Exposure
from cloud.adapters.orm.readings import Site, Zone
from cloud.adapters.orm.traceability import (
    Batch,
    CustodyInterval,
    Customer,
    Item,
    Order,
    OrderLine,
    Product,
)
from cloud.entrypoints.scheduler import Scheduler
from cloud.service_layer.expiry import block_expired, expiry_tiers, fefo_suggestions, warn_expiring

pytestmark = pytest.mark.integration
GTIN = "09506000134352"
EXPIRES = date(2026, 6, 30)
T0 = datetime(2026, 3, 1, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(pg_url: str) -> Iterator[object]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: object) -> Iterator[Session]:
    with session_factory(engine)() as session:  # type: ignore[arg-type]
        session.info["actor"] = "test-setup"
        yield session


def stock(db: Session, lot: str, expires: date, zone: str, items: int, **batch: object) -> Batch:
    row = Batch(gtin=GTIN, lot=lot, expires_on=expires, quantity=items, **batch)
    db.add(row)
    db.flush()
    for n in range(items):
        item = Item(gtin=GTIN, serial=f"{lot}-{n}", batch_id=row.id)
        db.add(item)
        db.flush()
        db.add(CustodyInterval(item_id=item.id, zone_id=zone, started_at=T0, basis="observed"))
    db.flush()
    return row


@pytest.fixture
def world(db: Session) -> dict[str, Batch]:
    db.add_all(
        [
            Site(id="syd", name="Sydney DC", kind="warehouse", timezone="Australia/Sydney"),
            Site(id="ber", name="Berlin DC", kind="warehouse", timezone="Europe/Berlin"),
            Site(id="truck-1", name="Truck 1", kind="truck"),
            Site(id="clinic", name="Clinic", kind="customer"),
            Product(gtin=GTIN, name="Vaccine", low=2, high=8, stability_budget_min=600),
        ]
    )
    db.flush()
    db.add_all(
        [
            Zone(id="syd-cold", site_id="syd", name="Cold", kind="cold_room", low=2, high=8),
            Zone(id="ber-cold", site_id="ber", name="Cold", kind="cold_room", low=2, high=8),
            Zone(id="t1", site_id="truck-1", name="Reefer", kind="truck_compartment"),
            Customer(id="clinic", name="Clinic", site_id="clinic"),
        ]
    )
    db.flush()
    batches = {
        "syd": stock(db, "SYD1", EXPIRES, "syd-cold", 2),
        "ber": stock(db, "BER1", EXPIRES, "ber-cold", 3),
    }
    db.commit()
    return batches


def test_tiers_per_site_and_per_product(db: Session, world: dict[str, Batch]) -> None:
    rows = expiry_tiers(db, datetime(2026, 5, 1, 12, tzinfo=UTC))
    assert [(r.lot, r.site_id, r.tier, r.days_left, r.items) for r in rows] == [
        ("BER1", "ber", 60, 60, 3),
        ("SYD1", "syd", 60, 60, 2),
    ]
    product = db.get(Product, GTIN)
    assert product is not None
    db.info["reason"] = "tighter warnings for this product"
    product.expiry_warning_days = "45,10"
    db.commit()
    assert expiry_tiers(db, datetime(2026, 5, 1, 12, tzinfo=UTC)) == []
    june = expiry_tiers(db, datetime(2026, 6, 21, 12, tzinfo=UTC))
    assert {r.tier for r in june} == {10}
    product.expiry_warning_days = "soon"
    db.commit()
    with pytest.raises(ValueError, match=f"product {GTIN}: 'soon' is not a list"):
        expiry_tiers(db, datetime(2026, 6, 21, tzinfo=UTC))


def test_warnings_raise_one_alert_per_batch_and_tier(db: Session, world: dict[str, Batch]) -> None:
    assert len(warn_expiring(db, datetime(2026, 5, 1, 12, tzinfo=UTC))) == 2
    assert warn_expiring(db, datetime(2026, 5, 2, 12, tzinfo=UTC)) == []
    later = warn_expiring(db, datetime(2026, 6, 24, 12, tzinfo=UTC))
    assert sorted((a.kind, a.severity) for a in later) == [
        ("expiry_7", "critical"),
        ("expiry_7", "critical"),
    ]
    db.commit()
    kinds = sorted(db.scalars(select(Alert.kind)))
    assert kinds == ["expiry_60", "expiry_60", "expiry_7", "expiry_7"]  # 30 was skipped over


def test_blocked_at_midnight_site_time_by_the_scheduler(
    engine: object, db: Session, world: dict[str, Batch]
) -> None:
    clock = Clock(datetime(2026, 6, 30, 13, 59, tzinfo=UTC))  # 23:59 in Sydney
    scheduler = Scheduler(session_factory(engine), clock=clock, senders={})  # type: ignore[arg-type]
    assert scheduler.tick().expired == 0
    clock.now = datetime(2026, 6, 30, 14, 0, tzinfo=UTC)  # midnight in Sydney
    assert scheduler.tick().expired == 1
    db.expire_all()
    assert (world["syd"].status, world["ber"].status) == ("expired", "available")
    clock.now = datetime(2026, 6, 30, 21, 59, tzinfo=UTC)  # 23:59 in Berlin (CEST)
    assert scheduler.tick().expired == 0
    clock.now = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)
    assert scheduler.tick().expired == 1
    db.expire_all()
    assert world["ber"].status == "expired"
    titles = sorted(db.scalars(select(Alert.title).where(Alert.kind == "expired")))
    assert titles == [
        "Batch BER1 expired on 2026-06-30: blocked",
        "Batch SYD1 expired on 2026-06-30: blocked",
    ]
    assert scheduler.tick().expired == 0  # idempotent


def test_a_held_batch_is_not_unheld_by_expiry(db: Session, world: dict[str, Batch]) -> None:
    db.info["reason"] = "test"
    world["syd"].status = "held"
    db.commit()
    assert block_expired(db, datetime(2026, 7, 2, tzinfo=UTC)) == [world["ber"]]
    assert world["syd"].status == "held"


def test_the_scheduler_command_runs_a_tick(pg_url: str, world: dict[str, Batch]) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloud.entrypoints.cli",
            "scheduler",
            "--database-url",
            pg_url,
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "TickReport(" in done.stdout and "expired=2" in done.stdout  # it is past 2026-06-30
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloud.entrypoints.cli",
            "scheduler",
            "--database-url",
            pg_url,
            "--escalate-after",
            "60,30",
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "must increase" in bad.stderr


def test_fefo_skips_and_prefers_the_least_budget(db: Session, world: dict[str, Batch]) -> None:
    stock(db, "SOON", date(2026, 4, 1), "ber-cold", 2)  # too short for the line
    stock(db, "HELD", date(2026, 9, 1), "ber-cold", 5, status="held")
    stock(db, "A", date(2026, 10, 1), "ber-cold", 2)
    b = stock(db, "B", date(2026, 10, 1), "ber-cold", 4)
    stock(db, "ROAD", date(2026, 8, 1), "t1", 3)  # on a truck: not pickable
    excursion = Excursion(
        zone_id="ber-cold",
        profile_id="2-8C",
        rule="alarm high",
        kind="high",
        level="alarm",
        started_at=T0,
        ended_at=T0 + timedelta(hours=2),
        state="closed",
        detected_at=T0,
    )
    db.add(excursion)
    db.flush()
    db.add(
        Exposure(
            excursion_id=excursion.id,
            batch_id=b.id,
            items=4,
            minutes=120.0,
            started_at=T0,
            ended_at=T0 + timedelta(hours=2),
        )
    )
    db.add(Order(id="PO-1", customer_id="clinic", placed_at=T0, deliver_by=date(2026, 3, 10)))
    db.flush()
    line = OrderLine(order_id="PO-1", gtin=GTIN, quantity=5, min_shelf_life_days=60)
    db.add(line)
    db.commit()
    got = fefo_suggestions(db, line.id, datetime(2026, 3, 2, tzinfo=UTC))
    # The June batches (SYD1, BER1) come first; among the two October ones B has used 120 of
    # its 600 budget minutes, so it goes before A.
    assert [(p.lot, p.quantity) for p in got.picks] == [("BER1", 3), ("SYD1", 2)]
    assert {s.lot: s.reason for s in got.skipped} == {
        "SOON": "22 days of shelf life left at delivery, the line needs 60",
        "HELD": "held",
        "ROAD": "no stock",
    }
    db.info["reason"] = "test"
    line.quantity = 10
    db.commit()
    more = fefo_suggestions(db, line.id, datetime(2026, 3, 2, tzinfo=UTC))
    assert [(p.lot, p.quantity) for p in more.picks] == [
        ("BER1", 3),
        ("SYD1", 2),
        ("B", 4),
        ("A", 1),
    ]
    with pytest.raises(LookupError, match="order line 999 does not exist"):
        fefo_suggestions(db, 999, datetime(2026, 3, 2, tzinfo=UTC))
