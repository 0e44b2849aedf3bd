"""Demo data and a cooling failure on demand, so the demo shows what the product is for.

`seed` registers the demo gateways' inventory, the users, products, batches with items in
the zones (by handheld scans, as at goods-in), two transfers and an order, and a week of
history in which Leeds cold room 1 lost its cooling for two hours yesterday. The rules and
the alerts service then find the excursion, the exposed batches and the hold.

`serve_sensors` runs the demo's simulated sensors with a switch per zone: while the file
`<data-dir>/cooling-failure/<zone-id>` exists the zone warms up as a room whose cooling
stopped (a first-order rise towards ambient), and cools down again once it is removed.
`coldchain-demo-seed cooling-failure ZONE` flips that switch.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.orm import Session

from cloud.adapters.engine import make_engine, session_factory
from cloud.adapters.orm.people import User
from cloud.adapters.orm.readings import ReadPoint, Sensor, Zone
from cloud.adapters.orm.traceability import (
    Batch,
    Customer,
    Item,
    Order,
    OrderLine,
    Product,
    Transfer,
)
from cloud.domain.clock import utcnow
from cloud.service_layer import alerts, rules
from cloud.service_layer.message_batch import MessageBatch
from cloud.service_layer.signatures import create_user, user_named
from cloud.service_layer.store import Store
from edge import wire
from edge.config import LoadedGateway, load_gateway
from edge.gs1 import check_digit, encode_sgtin96

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_CONFIGS = ("warehouse-leeds.yaml", "warehouse-bristol.yaml", "truck-07.yaml")
DEMO_PASSWORD = "coldchain-demo"
# Two admins: a role one gives waits for the other's confirmation (segregation of duties).
USERS = (
    ("admin", "Ada Admin", "admin"),
    ("admin2", "Alex Admin", "admin"),
    ("qa", "Quinn Quality (QA)", "qa"),
    ("qa2", "Rae Reviewer (QA)", "qa"),  # a second QA: high-risk holds take two people
    ("operator", "Olly Operator", "operator"),
    ("viewer", "Vic Viewer", "viewer"),
)
# Machine users act only through the scoped tokens an admin issues them; they never log in.
MACHINES = (("dock-scanner", "Dock scanner (machine)", "operator"),)
ACTOR = "demo-seed"
# The readings the demo makes name these until stored (write_and_evaluate), where they become
# their sensors' gateways' own, with seqs below the gateways' numbering.
HISTORY_GATEWAY = "demo-history"
FAILURE_GATEWAY = "demo-failure"
FAILURE_ZONE = "wh-leeds-cold1"
AMBIENT = 21.0  # C: where a cold room whose cooling stopped is heading
WARM_UP_MIN = 25.0  # time constant of that rise


# The demo's own mark on a database it created: the seeder writes its well-known accounts
# into no other (not into a production database that happens to be empty, either).
DEMO_MARK = Table(
    "coldchain_demo",
    MetaData(),
    Column("marked_at", DateTime(timezone=True), nullable=False),
    Column("note", String(200), nullable=False),
)


class NotADemoDatabase(Exception):
    """The database is not one the demo created: the seeder leaves it alone."""


def mark_as_demo(database_url: str) -> None:
    """Mark a database the demo has just created (it must hold no users) as the demo's own."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            if is_demo(connection):
                return
            users = connection.scalar(select(func.count()).select_from(User.__table__))
            if users:
                raise NotADemoDatabase(
                    f"the database at {engine.url.render_as_string()} has {users} users already:"
                    " the demo marks only a database it has just created"
                )
            DEMO_MARK.create(connection)
            connection.execute(
                insert(DEMO_MARK).values(marked_at=utcnow(), note="created by coldchain-demo")
            )
    finally:
        engine.dispose()


def is_demo(connection: Any) -> bool:
    return DEMO_MARK.name in inspect(connection).get_table_names()


def gtin(company_prefix: str, reference: str, indicator: str = "0") -> str:
    body = indicator + company_prefix + reference
    return body + check_digit(body)


@dataclass(frozen=True)
class DemoProduct:
    gtin: str
    name: str
    low: float
    high: float
    freeze_sensitive: bool
    budget_min: int | None
    shelf_life_days: int
    company_prefix_length: int


INSULIN = DemoProduct(
    gtin("0614141", "12345", "8"), "Insulin glargine 100 U/ml pen", 2, 8, True, 120, 730, 7
)
VACCINE = DemoProduct(
    gtin("9506000", "13435"), "Influenza vaccine 0.5 ml syringe", 2, 8, True, 240, 365, 7
)
MONITOR = DemoProduct(
    gtin("9506000", "99990"), "Glucose monitor sensor kit", 15, 25, False, None, 900, 7
)
PRODUCTS = (INSULIN, VACCINE, MONITOR)


@dataclass(frozen=True)
class DemoBatch:
    product: DemoProduct
    lot: str
    expires_in_days: int
    quantity: int
    zone: str  # where its items are put away
    read_point: str
    first_serial: int
    items: int


# The two cases the Leeds dock's simulated reader keeps seeing are serials 6789 and 6790.
BATCHES = (
    DemoBatch(INSULIN, "INS-2401", 5, 40, "wh-leeds-cold1", "wh-leeds-dock1", 6789, 6),
    DemoBatch(INSULIN, "INS-2402", 25, 60, "wh-leeds-cold1", "wh-leeds-dock1", 7001, 6),
    DemoBatch(INSULIN, "INS-2403", 400, 120, "wh-leeds-cold1", "wh-leeds-dock1", 7101, 8),
    DemoBatch(VACCINE, "VAC-117", -2, 30, "wh-bristol-cold1", "wh-bristol-cold1-door", 1001, 4),
    DemoBatch(VACCINE, "VAC-118", 50, 80, "wh-bristol-cold1", "wh-bristol-cold1-door", 1101, 6),
    DemoBatch(INSULIN, "INS-2404", 90, 50, "wh-bristol-cold1", "wh-bristol-cold1-door", 7201, 5),
    DemoBatch(VACCINE, "VAC-119", 200, 40, "wh-bristol-cold1", "wh-bristol-cold1-door", 1201, 4),
    DemoBatch(MONITOR, "GLM-77", 700, 200, "wh-leeds-amb1", "wh-leeds-amb1-door", 5001, 5),
)
# Handheld scanning places the demo adds beside the dock reader the Leeds gateway declares.
HANDHELDS = (
    ("wh-bristol-cold1-door", "wh-bristol-cold1", "wh-bristol-gw1"),
    ("wh-leeds-amb1-door", "wh-leeds-amb1", "wh-leeds-gw1"),
)


def demo_configs() -> list[LoadedGateway]:
    return [load_gateway(ROOT / "firmware-configs" / "gateways" / n) for n in GATEWAY_CONFIGS]


def register_inventory(engine: Engine, configs: Sequence[LoadedGateway], now: datetime) -> None:
    """Sites, zones, sensors and read points as the gateways will announce them."""
    batch = MessageBatch()
    for loaded in configs:
        batch.statuses.append(
            (
                wire.StatusMessage(
                    v=wire.SCHEMA_VERSION,
                    gateway=loaded.config.id,
                    site=loaded.config.site.id,
                    state="offline",  # until the gateway itself says otherwise
                    at=now,
                    site_info=loaded.site_info(),
                    zones=loaded.zone_infos(),
                    sensors=loaded.sensor_infos(),
                    read_points=loaded.read_point_infos(),
                ),
                now,
            )
        )
    Store(engine).write(batch)


def seed(
    database_url: str,
    now: datetime | None = None,
    history: bool = True,
    quiet: dict[str, datetime] | None = None,
) -> bool:
    """Fill an empty demo database; False (and nothing done) if it was seeded before.
    NotADemoDatabase if the demo did not create it (see mark_as_demo): the demo's accounts
    have a published password and must never land in a real database.

    `quiet` ends the history of some zones early (zone -> time), to make room for a
    failure recorded later on.
    """
    now = now or utcnow()
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            if not is_demo(connection):
                raise NotADemoDatabase(
                    f"the database at {engine.url.render_as_string()} is not a demo database"
                    " (it has no coldchain_demo mark): the demo seeds only the database it"
                    " created itself; start the demo with an empty data directory, or run"
                    " `python -m cloud.entrypoints.demo_seed seed --new-demo-database` on a new,"
                    " empty database"
                )
        sessions = session_factory(engine)
        with sessions() as session:
            if user_named(session, "qa") is not None:
                return False
        configs = demo_configs()
        register_inventory(engine, configs, now - timedelta(days=8))
        with sessions() as session:
            session.info["actor"] = ACTOR
            session.info["reason"] = "demo data"
            _people_and_goods(session, now)
            session.commit()
        if history:
            readings = history_readings(
                configs, now - timedelta(days=7), now, failure=True, quiet=quiet or {}
            )
            write_and_evaluate(engine, readings)
        log.info("demo data seeded")
        return True
    finally:
        engine.dispose()


def _people_and_goods(session: Session, now: datetime) -> None:
    for username, full_name, role in USERS:
        create_user(session, username, full_name, role, DEMO_PASSWORD)
    for username, full_name, role in MACHINES:
        create_user(session, username, full_name, role, secrets.token_urlsafe(32), kind="machine")
    for read_point, zone, gateway in HANDHELDS:
        session.add(
            ReadPoint(
                id=read_point,
                zone_id=zone,
                gateway_id=gateway,
                reader="handheld",
                business_step="storing",
            )
        )
    for p in PRODUCTS:
        session.add(
            Product(
                gtin=p.gtin,
                name=p.name,
                low=p.low,
                high=p.high,
                freeze_sensitive=p.freeze_sensitive,
                humidity_max=None,
                stability_budget_min=p.budget_min,
                shelf_life_days=p.shelf_life_days,
            )
        )
    session.flush()
    from cloud.service_layer.custody import rebuild_custody, record_scan

    put_away = now - timedelta(days=3)
    items: dict[str, list[Item]] = {}
    for b in BATCHES:
        expires = (now + timedelta(days=b.expires_in_days)).date()
        batch = Batch(
            gtin=b.product.gtin,
            lot=b.lot,
            manufactured_on=expires - timedelta(days=b.product.shelf_life_days),
            expires_on=expires,
            quantity=b.quantity,
            status="available",
        )
        session.add(batch)
        session.flush()
        items[b.lot] = []
        for serial in range(b.first_serial, b.first_serial + b.items):
            item = Item(
                gtin=b.product.gtin,
                serial=str(serial),
                epc=encode_sgtin96(b.product.gtin, serial, b.product.company_prefix_length, 1),
                batch_id=batch.id,
            )
            session.add(item)
            items[b.lot].append(item)
            record_scan(
                session,
                f"]d201{b.product.gtin}21{serial}",
                b.read_point,
                put_away + timedelta(seconds=serial % 60),
                ACTOR,
            )
    session.flush()
    rebuild_custody(session, [i.id for group in items.values() for i in group])
    _transfers(session, items, now)
    customer = Customer(id="st-marys", name="St Mary's Hospital pharmacy", gln=None)
    session.add(customer)
    session.add(Order(id="ORD-1001", customer_id=customer.id, placed_at=now - timedelta(hours=3)))
    session.flush()
    session.add(
        OrderLine(order_id="ORD-1001", gtin=INSULIN.gtin, quantity=10, min_shelf_life_days=14)
    )
    session.add(OrderLine(order_id="ORD-1001", gtin=VACCINE.gtin, quantity=5))


def _transfers(session: Session, items: dict[str, list[Item]], now: datetime) -> None:
    """One transfer received with an item missing, one on the road in the reefer truck, one
    of vaccines waiting for QA's release for shipment, one of ambient goods (none needed)."""
    from cloud.service_layer.movements import plan_transfer, step_transfer

    received = items["VAC-118"][:3]
    at = now - timedelta(days=2)
    row = plan_transfer(session, "TR-0001", "wh-bristol", "wh-leeds", received, at)
    _released(session, row, at + timedelta(minutes=5))
    step_transfer(session, row, "load", at + timedelta(minutes=10), received, "truck-07-reefer")
    step_transfer(session, row, "depart", at + timedelta(minutes=20))
    step_transfer(session, row, "receive", at + timedelta(hours=3), received[:2], "wh-leeds-cold1")
    moving = items["INS-2403"][:4]
    at = now - timedelta(minutes=50)
    row = plan_transfer(session, "TR-0002", "wh-leeds", "wh-bristol", moving, at)
    _released(session, row, at + timedelta(minutes=2))
    step_transfer(session, row, "load", at + timedelta(minutes=5), moving, "truck-07-reefer")
    step_transfer(session, row, "depart", at + timedelta(minutes=10))
    planned = items["GLM-77"][:2]
    plan_transfer(session, "TR-0003", "wh-leeds", "wh-bristol", planned, now)
    plan_transfer(session, "TR-0004", "wh-bristol", "wh-leeds", items["INS-2404"][:3], now)
    session.flush()
    assert session.get(Transfer, "TR-0002") is not None


def _released(session: Session, row: Transfer, at: datetime) -> None:
    """QA's signed release for shipment of a transfer's cold goods (given as the qa user)."""
    from cloud.service_layer.shipping_release import release_for_shipment

    session.info["actor"] = "qa"
    qa = user_named(session, "qa")
    assert qa is not None
    release_for_shipment(
        session, row, qa, DEMO_PASSWORD, "demo: evidence reviewed", at, username="qa"
    )
    session.info["actor"] = ACTOR


# --- readings -----------------------------------------------------------------------------


def normal_value(zone: Zone | Any, quantity: str, at: float, phase: float) -> float:
    """The demo's steady curve: a slow wave inside the zone's limits (as edge.simulator)."""
    low = zone.low if zone.low is not None else 15.0
    high = zone.high if zone.high is not None else 25.0
    wave = math.sin(2 * math.pi * at / 600.0 + phase)
    if quantity == "humidity":
        return 45.0 + 5.0 * wave
    return (low + high) / 2 + (high - low) * 0.3 * wave


def warmed(value: float, minutes_failed: float) -> float:
    """A room's temperature after its cooling stopped `minutes_failed` ago."""
    return AMBIENT - (AMBIENT - value) * math.exp(-minutes_failed / WARM_UP_MIN)


def history_readings(
    configs: Sequence[LoadedGateway],
    start: datetime,
    end: datetime,
    failure: bool,
    every: timedelta = timedelta(minutes=5),
    quiet: dict[str, datetime] | None = None,
) -> list[tuple[Any, ...]]:
    """Readings of every demo sensor from start to end (a quiet zone's until its time);
    yesterday's failure if asked."""
    fail_from = (end - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    fail_to = fail_from + timedelta(hours=2)
    rows: list[tuple[Any, ...]] = []
    seq = int(start.timestamp())
    rng = random.Random(7)
    for loaded in configs:
        zones = {z.id: z for z in loaded.config.zones}
        for index, device in enumerate(loaded.config.devices):
            zone = zones[device.zone]
            quantities = [(p.quantity, p.unit) for p in loaded.maps[device.id].points]
            at, stop = start, min(end, (quiet or {}).get(zone.id, end))
            while at < stop:
                for quantity, unit in quantities:
                    value = normal_value(zone, quantity, at.timestamp(), index)
                    value += rng.gauss(0, 0.05)
                    if (
                        failure
                        and zone.id == FAILURE_ZONE
                        and quantity == "temperature"
                        and fail_from <= at < fail_to
                    ):
                        value = warmed(value, (at - fail_from).total_seconds() / 60)
                    seq += 1
                    rows.append(
                        (
                            HISTORY_GATEWAY,
                            seq,
                            device.id,
                            quantity,
                            round(value, 2),
                            unit,
                            "ok",
                            at,
                            at,
                        )
                    )
                at += every
    return rows


def current_readings(
    configs: Sequence[LoadedGateway], now: datetime, skip: Iterable[str] = ()
) -> list[tuple[Any, ...]]:
    """One reading per demo sensor and quantity (but those of `skip` zones), taken now."""
    rows = []
    seq = int(now.timestamp() * 1000)
    for loaded in configs:
        zones = {z.id: z for z in loaded.config.zones}
        for index, device in enumerate(loaded.config.devices):
            if device.zone in skip:
                continue
            for point in loaded.maps[device.id].points:
                seq += 1
                value = normal_value(zones[device.zone], point.quantity, now.timestamp(), index)
                rows.append(
                    (
                        HISTORY_GATEWAY,
                        seq,
                        device.id,
                        point.quantity,
                        round(value, 2),
                        point.unit,
                        "ok",
                        now,
                        now,
                    )
                )
    return rows


def failure_readings(
    sensors: Iterable[tuple[str, float]],
    start: datetime,
    end: datetime,
    every: timedelta = timedelta(minutes=1),
) -> list[tuple[Any, ...]]:
    """Readings of sensors (id, temperature before) in a room whose cooling stopped at start."""
    rows = []
    # Seqs apart from the history's (seconds) and the current readings' (milliseconds), all
    # stored as the sensors' gateways' and below their own numbering (microseconds).
    seq = int(time.time() * 1000) * 2
    for sensor, before in sensors:
        at = start
        while at <= end:
            seq += 1
            value = warmed(before, (at - start).total_seconds() / 60)
            rows.append(
                (FAILURE_GATEWAY, seq, sensor, "temperature", round(value, 2), "C", "ok", at, at)
            )
            at += every
    return rows


class BackFill(MessageBatch):
    """Readings the demo writes as their sensors' gateways' own (a gateway speaks only for
    its sensors: the store and the rules refuse another's). Their seqs lie below the
    gateways' own numbering and are no part of it: no ranges, so no records seem lost."""

    def sequences(self) -> dict[str, list[int]]:
        return {}


def write_and_evaluate(engine: Engine, readings: list[tuple[Any, ...]]) -> None:
    """Store readings as ingest does, as the sensors' gateways', then run the rules and the
    alerts on them."""
    with engine.connect() as connection:
        sensors = {r[2] for r in readings}
        query = select(Sensor.id, Sensor.gateway_id).where(Sensor.id.in_(sensors))
        owner = {sensor: gateway for sensor, gateway in connection.execute(query)}
    readings = [(owner.get(r[2]) or r[0], *r[1:]) for r in readings]
    batch = BackFill()
    batch.readings = readings
    Store(engine).write(batch)
    evaluate(engine, readings)


def evaluate(engine: Engine, readings: list[tuple[Any, ...]]) -> None:
    """The rules (excursions, exposures, holds) and alerts over stored readings, as ingest
    runs them after each committed batch."""
    with session_factory(engine)() as session:
        outcome = rules.evaluate_readings(session, readings)
        session.info["actor"] = rules.SYSTEM_ACTOR
        alerts.raise_alerts(session, outcome.excursions, outcome.holds)
        session.commit()


def cooling_failure(
    database_url: str, zone_id: str, minutes: float, now: datetime | None = None
) -> int:
    """Record that the zone's cooling stopped `minutes` ago, as its sensors would have seen it."""
    now = now or utcnow()
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            zone = session.get(Zone, zone_id)
            if zone is None:
                raise LookupError(f"zone {zone_id!r} does not exist")
            sensors = list(session.scalars(select(Sensor.id).where(Sensor.zone_id == zone_id)))
        if not sensors:
            raise LookupError(f"zone {zone_id!r} has no sensors")
        middle = ((zone.low or 2.0) + (zone.high or 8.0)) / 2
        readings = failure_readings(
            [(s, middle) for s in sensors], now - timedelta(minutes=minutes), now
        )
        write_and_evaluate(engine, readings)
        return len(readings)
    finally:
        engine.dispose()


# --- live sensors with a cooling switch -----------------------------------------------------


class CoolingSwitch:
    """A zone's cooling, on unless the file `<dir>/<zone>` exists; remembers when it failed."""

    def __init__(self, directory: Path, zone: str):
        self.flag = directory / zone
        self.failed_at: float | None = None
        self.recovered_at: float | None = None
        self.peak_offset = 0.0

    def offset(self, normal: float, now: float) -> float:
        """How far above its normal curve the zone is now."""
        if self.flag.exists():
            if self.failed_at is None:
                self.failed_at, self.recovered_at = now, None
                log.warning("cooling failure in %s", self.flag.name)
            minutes = (now - self.failed_at) / 60
            self.peak_offset = warmed(normal, minutes) - normal
            return self.peak_offset
        if self.failed_at is not None:
            self.failed_at, self.recovered_at = None, now
            log.warning("cooling restored in %s", self.flag.name)
        if self.recovered_at is None:
            return 0.0
        return self.peak_offset * math.exp(-(now - self.recovered_at) / 60 / 10)


def switched_curve(
    zone: Any, phase: float, switch: CoolingSwitch, speed: float
) -> Callable[[str, float], float]:
    """The zone's normal curve plus what a failed cooling adds (`speed` x real time)."""

    def value(quantity: str, now: float) -> float:
        normal = normal_value(zone, quantity, now, phase)
        if quantity != "temperature":
            return normal
        return normal + switch.offset(normal, now if speed == 1 else now * speed)

    return value


def serve_sensors(configs: Sequence[Path], flags: Path, speed: float = 10.0) -> None:
    """The demo's simulated sensors, each zone with its cooling switch; runs until cancelled."""
    from edge.simulator import SensorFarm, SimulatedSensor, serve_forever

    flags.mkdir(parents=True, exist_ok=True)
    farm = SensorFarm()
    for path in configs:
        loaded = load_gateway(path)
        zones = {z.id: z for z in loaded.config.zones}
        switches = {z: CoolingSwitch(flags, z) for z in zones}
        for index, device in enumerate(loaded.config.devices):
            curve = switched_curve(zones[device.zone], index, switches[device.zone], speed)
            farm.add(
                device.transport, SimulatedSensor(device.unit_id, loaded.maps[device.id], curve)
            )
    asyncio.run(serve_forever(farm))


@click.group()
def main() -> None:
    """Demo data and a cooling failure on demand."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(message)s")


@main.command("seed")
@click.option("--database-url", envvar="COLDCHAIN_DATABASE_URL", required=True)
@click.option("--no-history", is_flag=True, help="Skip the week of past readings.")
@click.option(
    "--new-demo-database",
    is_flag=True,
    help="Mark this new database (no users yet) as a demo database first.",
)
def seed_command(database_url: str, no_history: bool, new_demo_database: bool) -> None:
    """Seed a demo database (does nothing if seeded already; refuses any other database)."""
    try:
        if new_demo_database:
            mark_as_demo(database_url)
        done = seed(database_url, history=not no_history)
    except NotADemoDatabase as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("seeded" if done else "already seeded")


@main.command("cooling-failure")
@click.argument("zone")
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=Path("data"), show_default=True
)
@click.option("--off", is_flag=True, help="Restore the cooling.")
def cooling_failure_command(zone: str, data_dir: Path, off: bool) -> None:
    """Stop (or with --off restore) the cooling of ZONE in the running demo's sensors."""
    flag = data_dir / "cooling-failure" / zone
    flag.parent.mkdir(parents=True, exist_ok=True)
    if off:
        flag.unlink(missing_ok=True)
        click.echo(f"cooling of {zone} restored")
    else:
        flag.write_text(datetime.now(UTC).isoformat())
        click.echo(f"cooling of {zone} stopped: watch the control room")


@main.command("sensors")
@click.argument("configs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--data-dir", type=click.Path(path_type=Path), default=Path("data"), show_default=True
)
@click.option("--speed", type=float, default=10.0, show_default=True, help="Failure time lapse.")
def sensors_command(configs: tuple[Path, ...], data_dir: Path, speed: float) -> None:
    """Serve the demo's simulated sensors with a cooling switch per zone."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        serve_sensors(configs, data_dir / "cooling-failure", speed)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
