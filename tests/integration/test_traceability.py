"""The traceability model on PostgreSQL, and custody built from stored observation rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.readings import Gateway, ReadPoint, Site, Zone
from cloud.adapters.orm.traceability import (
    Aggregation,
    Batch,
    CustodyInterval,
    Customer,
    Item,
    LogisticUnit,
    Order,
    OrderLine,
    Product,
    Scan,
    Shipment,
    ShipmentItem,
    ShipmentStateChange,
    Transfer,
    TransferItem,
    TransferStateChange,
)
from cloud.service_layer import custody, store
from cloud.service_layer.message_batch import MessageBatch
from edge import gs1, wire

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
GTIN = "09506000134352"
SSCC = "106141412345678908"
GS = "\x1d"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def epc(serial: int) -> str:
    return gs1.encode_sgtin96(GTIN, serial, company_prefix_length=7)


PALLET_EPC = gs1.encode_sscc96(SSCC, company_prefix_length=7)

# site, kind, gateway, zones (id, kind), read points (id, zone, step)
SITES = [
    (
        "wh-a",
        "warehouse",
        "wh-a-gw",
        [("a-cold", "cold_room"), ("a-dock", "ambient")],
        [("a-cold-door", "a-cold", "receiving"), ("a-dock-door", "a-dock", "loading")],
    ),
    (
        "truck-7",
        "truck",
        "truck-7-gw",
        [("t7-reefer", "truck_compartment")],
        [("t7-door", "t7-reefer", "unloading")],
    ),
    (
        "wh-b",
        "warehouse",
        "wh-b-gw",
        [("b-cold", "cold_room"), ("b-dock", "ambient")],
        [("b-cold-door", "b-cold", "receiving"), ("b-dock-door", "b-dock", "receiving")],
    ),
]


@pytest.fixture
def db(pg_url: str) -> Iterator[Session]:
    engine = make_engine(pg_url)
    try:
        with session_factory(engine)() as session:
            session.info["actor"] = "test:traceability"  # zones are audited records
            _inventory(session)
            yield session
    finally:
        engine.dispose()


def _inventory(session: Session) -> None:
    """Two warehouses and a truck with their zones and read points; one product, two lots."""
    for site, kind, gateway, zones, points in SITES:
        session.add(Site(id=site, name=site, kind=kind))
        session.flush()
        session.add(Gateway(id=gateway, site_id=site))
        session.add_all(Zone(id=z, site_id=site, name=z, kind=k, low=2, high=8) for z, k in zones)
        session.flush()
        session.add_all(
            ReadPoint(id=p, zone_id=z, gateway_id=gateway, reader="r1", business_step=s)
            for p, z, s in points
        )
    session.add(
        Product(
            gtin=GTIN,
            name="Insulin pen",
            low=2,
            high=8,
            freeze_sensitive=True,
            stability_budget_min=720,
            shelf_life_days=730,
        )
    )
    session.flush()
    for lot in ("L1", "L2"):
        session.add(Batch(gtin=GTIN, lot=lot, expires_on=date(2027, 6, 30), quantity=100))
    session.flush()
    lot_1, lot_2 = session.scalars(select(Batch.id).order_by(Batch.lot))
    session.add_all(
        Item(gtin=GTIN, serial=str(n), epc=epc(n), batch_id=lot_1 if n < 4 else lot_2)
        for n in (1, 2, 3, 4)
    )
    session.add(LogisticUnit(sscc=SSCC, epc=PALLET_EPC))
    session.commit()


def observe(engine_url: str, gateway: str, site: str, reads: list[tuple[int, str, str, float]]):
    """Store RFID observations through the ingest write path: (seq, epc, read point, minute)."""
    records = [
        wire.Observation(
            seq=seq,
            epc=tag,
            read_point=point,
            first_seen=at(m),
            last_seen=at(m) + timedelta(seconds=2),
            count=5,
        )
        for seq, tag, point, m in reads
    ]
    envelope = wire.ObservationsEnvelope(
        v=1, gateway=gateway, site=site, sent_at=at(0), records=records
    )
    batch = MessageBatch()
    batch.add_observations(envelope, received_at=datetime.now(UTC))
    engine = make_engine(engine_url)
    try:
        store.Store(engine).write(batch)
    finally:
        engine.dispose()


def item(db: Session, serial: int) -> Item:
    found = custody.find_item(db, GTIN, str(serial))
    assert found is not None
    return found


def timeline(db: Session, serial: int) -> list[tuple[str, float, float | None, str]]:
    def minutes(t: datetime | None) -> float | None:
        return None if t is None else (t - T0) / timedelta(minutes=1)

    return [
        (i.zone_id, minutes(i.started_at), minutes(i.ended_at), i.basis)
        for i in custody.item_timeline(db, item(db, serial).id)
    ]


# --- the model ----------------------------------------------------------------------------


def test_models_round_trip(pg_url: str, db: Session) -> None:
    vial = item(db, 1)
    db.add_all(
        [
            Aggregation(
                parent_sscc=SSCC, child_item_id=vial.id, packed_at=at(5), unpacked_at=at(90)
            ),
            Customer(id="st-marys", name="St Mary's Hospital", gln="9501101020016", site_id="wh-b"),
            Transfer(
                id="TR-1",
                origin_site_id="wh-a",
                destination_site_id="wh-b",
                truck_zone_id="t7-reefer",
                receiving_zone_id="b-cold",
                state="received",
            ),
            Scan(
                read_point_id="b-cold-door",
                scanned_at=at(400),
                data="]d2...",
                gtin=GTIN,
                serial="1",
            ),
        ]
    )
    db.flush()
    db.add_all(
        [
            Order(id="PO-77", customer_id="st-marys", placed_at=at(0), deliver_by=date(2026, 3, 9)),
            TransferItem(
                transfer_id="TR-1", item_id=vial.id, loaded_at=at(60), discrepancy="missing"
            ),
            TransferStateChange(transfer_id="TR-1", state="loaded", at=at(60), actor="j.smith"),
        ]
    )
    db.flush()
    db.add_all(
        [
            OrderLine(order_id="PO-77", gtin=GTIN, quantity=20, min_shelf_life_days=180),
            Shipment(id="SH-1", order_id="PO-77", truck_zone_id="t7-reefer", state="picked"),
        ]
    )
    db.flush()
    db.add_all(
        [
            ShipmentItem(shipment_id="SH-1", item_id=vial.id),
            ShipmentStateChange(shipment_id="SH-1", state="picked", at=at(500)),
            CustodyInterval(
                item_id=vial.id, zone_id="a-cold", started_at=at(0), ended_at=None, basis="observed"
            ),
        ]
    )
    db.commit()

    engine = make_engine(pg_url)
    try:
        with session_factory(engine)() as fresh:
            product = fresh.get(Product, GTIN)
            assert (
                product is not None and product.freeze_sensitive and product.shelf_life_days == 730
            )
            batch = fresh.scalars(select(Batch).where(Batch.lot == "L1")).one()
            assert (batch.status, batch.expires_on, batch.manufactured_on) == (
                "available",
                date(2027, 6, 30),
                None,
            )
            assert fresh.scalars(select(Item.epc).where(Item.serial == "1")).one() == epc(1)
            link = fresh.scalars(select(Aggregation)).one()
            assert (link.packed_at, link.unpacked_at) == (at(5), at(90))
            assert link.packed_at.tzinfo is UTC
            assert fresh.scalars(select(OrderLine.min_shelf_life_days)).one() == 180
            assert fresh.scalars(select(TransferItem.discrepancy)).one() == "missing"
            assert fresh.scalars(select(TransferStateChange.actor)).one() == "j.smith"
            assert fresh.scalars(select(ShipmentStateChange.at)).one() == at(500)
            assert fresh.scalars(select(Scan.received_at)).one()
            stored = fresh.scalars(select(CustodyInterval)).one()
            assert (stored.zone_id, stored.ended_at, stored.basis) == ("a-cold", None, "observed")
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "bad",
    [
        lambda b: Batch(
            gtin=GTIN, lot="L9", expires_on=date(2027, 1, 1), quantity=1, status="lost"
        ),
        lambda b: Batch(gtin=GTIN, lot="L1", expires_on=date(2027, 1, 1), quantity=1),
        lambda b: Item(gtin=GTIN, serial="1", batch_id=b),
        lambda b: Aggregation(parent_sscc=SSCC, child_item_id=1, child_sscc=SSCC, packed_at=at(0)),
        lambda b: CustodyInterval(item_id=1, zone_id="a-cold", started_at=at(0), basis="guessed"),
    ],
    ids=["batch status", "duplicate lot", "duplicate sgtin", "two children", "custody basis"],
)
def test_the_database_refuses_what_the_model_forbids(db: Session, bad) -> None:
    batch_id = db.scalars(select(Batch.id)).first()
    db.add(bad(batch_id))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


# --- custody from stored observations -----------------------------------------------------

WAREHOUSE_A = [
    (1, epc(1), "a-cold-door", 0),
    (2, epc(2), "a-cold-door", 0),
    (3, epc(1), "a-dock-door", 60),
    (4, epc(2), "a-dock-door", 61),
]
TRUCK_BACKLOG = [(1, epc(1), "t7-door", 400), (2, epc(2), "t7-door", 400)]
WAREHOUSE_B = [(1, epc(1), "b-cold-door", 410), (2, epc(2), "b-cold-door", 411)]
TRANSFER_LEG = [
    ("a-cold", 0, 60, "observed"),
    ("a-dock", 60, 60, "observed"),
    ("t7-reefer", 60, 400, "inferred"),
    ("t7-reefer", 400, 410, "observed"),
    ("b-cold", 410, None, "observed"),
]


def test_a_truck_backlog_a_day_late_gives_the_in_order_timeline(pg_url: str, db: Session) -> None:
    observe(pg_url, "wh-a-gw", "wh-a", WAREHOUSE_A)
    observe(pg_url, "wh-b-gw", "wh-b", WAREHOUSE_B)
    custody.refresh_custody(db, [epc(1), epc(2)])
    db.commit()
    # the dock read names no truck and none is known: a gap until the destination
    assert timeline(db, 1) == [
        ("a-cold", 0, 60, "observed"),
        ("a-dock", 60, 60, "observed"),
        ("b-cold", 410, None, "observed"),
    ]
    observe(pg_url, "truck-7-gw", "truck-7", TRUCK_BACKLOG)  # the truck comes back online
    assert custody.refresh_custody(db, [epc(1), epc(2)]) == 10
    db.commit()
    assert timeline(db, 1) == TRANSFER_LEG
    custody.rebuild_custody(db)  # from scratch: the same rows
    assert timeline(db, 1) == TRANSFER_LEG


def test_a_pallet_read_moves_the_items_packed_on_it(pg_url: str, db: Session) -> None:
    vial_1, vial_3 = item(db, 1), item(db, 3)
    db.add_all(
        [
            Aggregation(
                parent_sscc=SSCC, child_item_id=vial_1.id, packed_at=at(10), unpacked_at=at(420)
            ),
            Aggregation(parent_sscc=SSCC, child_item_id=vial_3.id, packed_at=at(10)),
        ]
    )
    db.commit()
    observe(
        pg_url,
        "wh-a-gw",
        "wh-a",
        [(1, epc(1), "a-cold-door", 0), (2, PALLET_EPC, "a-dock-door", 60)],
    )
    observe(pg_url, "truck-7-gw", "truck-7", [(1, PALLET_EPC, "t7-door", 400)])
    observe(
        pg_url,
        "wh-b-gw",
        "wh-b",
        [(1, PALLET_EPC, "b-dock-door", 410), (2, PALLET_EPC, "b-cold-door", 430)],
    )
    custody.refresh_custody(db, [PALLET_EPC])  # reaches the items through the packing
    db.commit()
    assert timeline(db, 1) == [
        ("a-cold", 0, 60, "observed"),
        ("a-dock", 60, 60, "via_parent"),
        ("t7-reefer", 60, 400, "inferred"),
        ("t7-reefer", 400, 410, "via_parent"),
        ("b-dock", 410, None, "via_parent"),  # unpacked at 420, before the pallet went on
    ]
    assert timeline(db, 3)[-1] == ("b-cold", 430, None, "via_parent")


def test_scans_and_transfer_records_place_items_without_rfid(db: Session) -> None:
    vial_4 = item(db, 4)
    scan = f"]d201{GTIN}17270630" + f"10L2{GS}21" + "4"
    custody.record_scan(db, scan, "a-cold-door", at(0), actor="j.smith")
    with pytest.raises(ValueError, match="names neither"):
        custody.record_scan(db, f"]d201{GTIN}10L2", "a-cold-door", at(0))
    db.add(
        Transfer(
            id="TR-9",
            origin_site_id="wh-a",
            destination_site_id="wh-b",
            truck_zone_id="t7-reefer",
            receiving_zone_id="b-cold",
            state="received",
        )
    )
    db.flush()
    db.add(
        TransferItem(transfer_id="TR-9", item_id=vial_4.id, loaded_at=at(50), received_at=at(300))
    )
    db.flush()
    custody.rebuild_custody(db, [vial_4.id])
    db.commit()
    assert timeline(db, 4) == [
        ("a-cold", 0, 50, "observed"),
        ("t7-reefer", 50, 300, "observed"),
        ("b-cold", 300, None, "observed"),
    ]
    assert db.scalars(select(Scan.lot)).one() == "L2"


# --- the four questions -------------------------------------------------------------------


def test_where_is_what_is_in_a_zone_now_and_between_and_a_batch_timeline(
    pg_url: str, db: Session
) -> None:
    observe(
        pg_url,
        "wh-a-gw",
        "wh-a",
        WAREHOUSE_A + [(5, epc(3), "a-cold-door", 5), (6, epc(4), "a-cold-door", 7)],
    )
    observe(pg_url, "truck-7-gw", "truck-7", TRUCK_BACKLOG)
    observe(pg_url, "wh-b-gw", "wh-b", WAREHOUSE_B)
    custody.rebuild_custody(db)
    db.commit()
    vials = {n: item(db, n) for n in (1, 2, 3, 4)}

    now = custody.current_custody(db, vials[1].id)
    assert now is not None and (now.zone_id, now.started_at) == ("b-cold", at(410))

    assert [i.serial for i in custody.items_in_zone(db, "b-cold")] == ["1", "2"]
    assert [i.serial for i in custody.items_in_zone(db, "a-cold")] == ["3", "4"]
    assert custody.items_in_zone(db, "t7-reefer") == []

    on_truck = custody.custody_in_zone(db, "t7-reefer", at(100), at(200))
    assert {(i.item_id, i.basis) for i in on_truck} == {
        (vials[1].id, "inferred"),
        (vials[2].id, "inferred"),
    }
    at_dock = custody.custody_in_zone(db, "a-dock", at(60), at(60))  # the instant it passed
    assert {i.item_id for i in at_dock} == {vials[1].id}
    assert custody.custody_in_zone(db, "b-cold", at(0), at(400)) == []

    batch_l1 = db.scalars(select(Batch.id).where(Batch.lot == "L1")).one()
    rows = custody.batch_timeline(db, batch_l1)
    assert [r.item_id for r in rows] == sorted(r.item_id for r in rows)
    assert {r.item_id for r in rows} == {vials[1].id, vials[2].id, vials[3].id}
    assert [(r.zone_id, r.basis) for r in rows if r.item_id == vials[2].id] == [
        ("a-cold", "observed"),
        ("a-dock", "observed"),
        ("t7-reefer", "inferred"),
        ("t7-reefer", "observed"),
        ("b-cold", "observed"),
    ]
