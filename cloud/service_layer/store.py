"""The ingest write path: one transaction per batch of MQTT messages, idempotent on replay.

Readings insert with ON CONFLICT DO NOTHING on (gateway_id, seq), so a message the broker
delivers twice, or a gateway publishes twice, leaves one row; the hourly rollups
(cloud.domain.rollups) are merged from the rows actually inserted, and the custody of tags in
RFID observations is rebuilt (cloud.service_layer.custody), in the same transaction. The caller
acknowledges the messages to the broker only after `write` returned, i.e. after the
commit.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Engine, Table, bindparam, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloud.adapters.orm.audit import act_as
from cloud.adapters.orm.readings import (
    DeadLetter,
    Gateway,
    GatewayEvent,
    ImplausibleReading,
    LatestReading,
    Observation,
    Reading,
    Sensor,
    Site,
    upsert_rollups,
)
from cloud.domain import rollups
from cloud.service_layer.alerts import raise_alert
from cloud.service_layer.custody import refresh_custody
from cloud.service_layer.gateway_status import apply_status
from cloud.service_layer.message_batch import (
    READING_COLUMNS,
    MessageBatch,
)
from cloud.service_layer.sequences import note_heartbeats, record_sequences
from edge import wire

log = logging.getLogger(__name__)


_COLUMN_LIST = ", ".join(READING_COLUMNS)
_LATEST_COLUMNS = ("value", "unit", "quality", "taken_at")  # latest_readings, besides its key
_LATEST_AT = tuple(READING_COLUMNS.index(c) for c in _LATEST_COLUMNS)
_SENSOR, _QUANTITY, _TAKEN_AT, _RECEIVED = (
    READING_COLUMNS.index(c) for c in ("sensor_id", "quantity", "taken_at", "received_at")
)
# PostgreSQL bulk path. Almost every batch holds only new readings: they go straight into
# the table by binary COPY, the fastest way in (heap multi-insert, no speculative insertion;
# the primary key still refuses a stored identity). A batch that repeats a stored reading (a
# redelivery) fails that COPY and takes the slow path from its savepoint: COPY into a staging
# table, then INSERT .. ON CONFLICT DO NOTHING RETURNING the rows it did insert.
_COPY_TYPES = (
    "text",
    "int8",
    "text",
    "text",
    "float8",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
)
_COPY_READINGS = f"COPY readings ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS incoming_readings (LIKE readings INCLUDING DEFAULTS) "
    "ON COMMIT DELETE ROWS"
)
_COPY_STAGED = f"COPY incoming_readings ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_MERGE = (
    f"INSERT INTO readings ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM incoming_readings "
    f"ON CONFLICT DO NOTHING RETURNING {_COLUMN_LIST}"
)


def _copy(cursor: Any, statement: str, rows: list[tuple[Any, ...]]) -> None:
    with cursor.copy(statement) as copy:
        copy.set_types(_COPY_TYPES)  # binary: no text formatting of every value
        for row in rows:
            copy.write_row(row)


class _StoredAlready(Exception):
    """A batch's COPY met a reading stored before: its transaction is lost, redo it merged."""


def _copy_readings(
    conn: Any, rows: list[tuple[Any, ...]], merge: bool = False
) -> list[tuple[Any, ...]]:
    """Insert readings on PostgreSQL in the caller's transaction; returns those inserted.

    COPY straight into the table, the common case: a reading stored before (a redelivery)
    fails it, and with it the transaction (no savepoint: two round trips a batch saved),
    so _StoredAlready is raised and the caller redoes the transaction with `merge`: COPY
    into a staging table, then insert what is not stored yet.
    """
    driver = conn.connection.driver_connection  # the psycopg connection of this transaction
    with driver.cursor() as cursor:
        if not merge:
            try:
                _copy(cursor, _COPY_READINGS, rows)
            except psycopg.errors.UniqueViolation as exc:
                raise _StoredAlready from exc
            return rows
        cursor.execute(_STAGE)
        _copy(cursor, _COPY_STAGED, rows)
        cursor.execute(_MERGE)
        stored = cursor.fetchall()
    log.info("%d of %d readings were stored already", len(rows) - len(stored), len(rows))
    return stored


@dataclass(frozen=True)
class WriteResult:
    readings_offered: int
    dead_letters: int
    # Sensors a status in the batch registered that readings were stored for before: their
    # kept readings are to be evaluated now (decision 0028).
    registered: tuple[str, ...] = ()


UNKNOWN_RECHECK_S = 30.0  # a sensor found unknown is looked up again after this


class Store:
    """Writes ingest batches to PostgreSQL or SQLite."""

    def __init__(self, engine: Engine):
        self.engine = engine
        dialect = engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported database {dialect!r}: use PostgreSQL or SQLite")
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # Gateways (with their sites) known to be stored: only their last_seen is written.
        self._known: set[tuple[str, str]] = set()
        # Sensors known to be registered; sensors found unknown, with when (monotonic);
        # gateways alerted for sending readings of an unknown sensor (decision 0028).
        self._sensors: set[str] = set()
        self._unknown: dict[str, float] = {}
        self._alerted: set[str] = set()
        self._pending_sensors: set[str] = set()
        self._pending_alerted: set[str] = set()
        self._owners: dict[str, str] = {}  # sensor -> the gateway it is registered to
        self._seen = (
            update(Gateway)
            .where(Gateway.id == bindparam("gateway"))
            .where(or_(Gateway.last_seen.is_(None), Gateway.last_seen < bindparam("at")))
            .values(last_seen=bindparam("at"))
        )
        # Built once: compiling them is cached, building them was not (every batch runs them).
        self._rollups = upsert_rollups(self._insert)
        latest = self._insert(LatestReading.__table__)
        self._latest = latest.on_conflict_do_update(
            index_elements=["sensor_id", "quantity"],
            set_={c: latest.excluded[c] for c in _LATEST_COLUMNS},
            where=LatestReading.__table__.c.taken_at < latest.excluded.taken_at,
        )

    def write(self, batch: MessageBatch) -> WriteResult:
        """Commit everything in the batch in one transaction."""
        seen = dict(batch.seen)
        for beat in batch.heartbeats:
            site, at = seen.get(beat.gateway, (beat.site, beat.at))
            seen[beat.gateway] = (site, max(at, beat.at))
        new = {(gateway, site) for gateway, (site, _) in seen.items()} - self._known
        try:
            try:
                registered = self._write(batch, seen, new)
            except _StoredAlready:  # rolled back: again, keeping only the readings not stored
                registered = self._write(batch, seen, new, merge=True)
        except Exception:
            self._known.clear()  # whatever failed, know nothing that was not committed
            self._sensors.clear()
            self._owners.clear()
            raise
        self._known |= new
        self._sensors |= self._pending_sensors
        self._alerted |= self._pending_alerted
        return WriteResult(
            len(batch.readings),
            len(batch.dead_letters) + len(batch.counted_letters),
            tuple(registered),
        )

    def _write(
        self,
        batch: MessageBatch,
        seen: dict[str, tuple[str, datetime]],
        new: set[tuple[str, str]],
        merge: bool = False,
    ) -> list[str]:
        """The batch in one transaction; the sensors its statuses registered that readings
        were stored for before."""
        self._pending_sensors = set()  # known once committed
        self._pending_alerted = set()
        with self.engine.begin() as conn:
            registered = self._registering(conn, batch)
            for status, received_at in batch.statuses:
                self._apply_status(conn, status, status.at or received_at)
            self._add_gateways(conn, new)
            if seen:
                conn.execute(self._seen, [{"gateway": g, "at": at} for g, (_, at) in seen.items()])
            # The clock's change first: it raises the alert; note_heartbeats keeps the rest.
            self._note_clocks(conn, batch.heartbeats)
            if batch.heartbeats:
                note_heartbeats(conn, batch.heartbeats)
            record_sequences(conn, batch.sequences(), {g: at for g, (_, at) in seen.items()})
            rows, foreign = self._own_readings(conn, batch)
            if foreign:
                conn.execute(self._ignore(DeadLetter.__table__), foreign)
            if rows:
                groups, inserted = self._insert_readings(conn, rows, merge)
                self._advance_latest(conn, [g.newest for g in groups if g.newest is not None])
                # some were stored before: redeliveries, or a gateway reusing a seq
                conflicts = (
                    self._conflicting_duplicates(conn, batch, rows) if inserted < len(rows) else []
                )
                if conflicts:
                    conn.execute(self._ignore(DeadLetter.__table__), conflicts)
            if batch.quarantined:
                conn.execute(self._ignore(ImplausibleReading.__table__), batch.quarantined)
            if batch.observations:
                conn.execute(self._ignore(Observation.__table__), batch.observations)
            if batch.events:
                conn.execute(self._ignore(GatewayEvent.__table__), batch.events)
            if batch.dead_letters:
                conn.execute(self._ignore(DeadLetter.__table__), batch.dead_letters)
            if batch.counted_letters:
                self._add_counted(conn, batch.counted_letters)
            if batch.readings:
                self._note_unknown_sensors(conn, batch)
            if batch.observations:  # last: it serialises writers (see _refresh_custody)
                self._refresh_custody(conn, {o["epc"] for o in batch.observations})
        return registered

    def _registering(self, conn: Any, batch: MessageBatch) -> list[str]:
        """Sensors the batch's statuses name that no status registered yet, but that
        readings are stored for: their readings were kept, unevaluated, until now."""
        named = {s.id for status, _ in batch.statuses for s in status.sensors} - self._sensors
        if not named:
            return []
        registered = set(conn.execute(select(Sensor.id).where(Sensor.id.in_(named))).scalars())
        self._pending_sensors |= named
        for sensor in named:
            self._unknown.pop(sensor, None)
        new = sorted(named - registered)
        if not new:
            return []
        stored = select(Reading.sensor_id).where(Reading.sensor_id.in_(new)).distinct()
        return sorted(conn.execute(stored).scalars())

    def _note_unknown_sensors(self, conn: Any, batch: MessageBatch) -> None:
        """Readings of sensors no status registered are stored, ignored by the rules; their
        gateway gets one alert (decision 0028)."""
        now = time.monotonic()
        ask = {
            r[_SENSOR]
            for r in batch.readings
            if r[_SENSOR] not in self._sensors
            and r[_SENSOR] not in self._pending_sensors
            and self._unknown.get(r[_SENSOR], -UNKNOWN_RECHECK_S) <= now - UNKNOWN_RECHECK_S
        }
        if ask:
            found = set(conn.execute(select(Sensor.id).where(Sensor.id.in_(ask))).scalars())
            self._pending_sensors |= found
            self._unknown.update(dict.fromkeys(ask - found, now))
        first: dict[str, tuple[str, datetime]] = {}
        for r in batch.readings:
            gateway, sensor = r[0], r[_SENSOR]
            if (
                sensor in self._unknown
                and sensor not in self._pending_sensors
                and gateway not in self._alerted
                and gateway not in first
            ):
                first[gateway] = (sensor, r[_RECEIVED])
        if not first:
            return
        with Session(bind=conn) as session:  # joins the transaction; never commits
            for gateway, (sensor, at) in sorted(first.items()):
                raise_alert(
                    session,
                    kind="unknown_sensor",
                    severity="warning",
                    title=(
                        f"Gateway {gateway} sends readings of unknown sensor {sensor}: kept, "
                        "not evaluated until a status registers it"
                    )[:300],
                    subject_kind="gateway",
                    subject_id=gateway,
                    site_id=batch.seen.get(gateway, (None, at))[0],
                    now=at,
                )
                log.warning("gateway %s sends readings of unknown sensor %s", gateway, sensor)
            session.flush()
        self._pending_alerted |= set(first)

    def readings_of(self, sensors: list[str]) -> list[tuple[Any, ...]]:
        """The stored readings of these sensors, in READING_COLUMNS order (to evaluate the
        readings of sensors just registered)."""
        table = Reading.__table__
        with self.engine.connect() as conn:
            return [
                tuple(row)
                for row in conn.execute(
                    select(*(table.c[c] for c in READING_COLUMNS))
                    .where(table.c.sensor_id.in_(sensors))
                    .order_by(table.c.taken_at)
                )
            ]

    def _add_counted(self, conn: Any, counted: list[dict[str, Any]]) -> None:
        """Refusals beyond a gateway's budget: their counts added to the row of their gateway
        and minute (decision 0028)."""
        stmt = self._insert(DeadLetter.__table__)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["digest"],
                set_={
                    "count": DeadLetter.__table__.c.count + stmt.excluded["count"],
                    "reason": stmt.excluded.reason,
                },
            ),
            counted,
        )

    def _note_clocks(self, conn: Any, beats: list[wire.Heartbeat]) -> None:
        """Keep each gateway's clock state; an alert when one says it is not synchronised."""
        for beat in beats:
            if beat.clock_synchronised is None:
                continue
            changed = conn.execute(
                update(Gateway)
                .where(Gateway.id == beat.gateway)
                .where(
                    or_(
                        Gateway.clock_synchronised.is_(None),
                        Gateway.clock_synchronised != beat.clock_synchronised,
                    )
                )
                .values(clock_synchronised=beat.clock_synchronised)
            ).rowcount
            if changed and beat.clock_synchronised is False:
                with Session(bind=conn) as session:  # joins the transaction; never commits
                    raise_alert(
                        session,
                        kind="gateway_clock_unsynchronised",
                        severity="warning",
                        title=(
                            f"Gateway {beat.gateway}: clock not synchronised; its readings "
                            "are flagged clock_unsynchronised"
                        ),
                        subject_kind="gateway",
                        subject_id=beat.gateway,
                        site_id=beat.site,
                        now=beat.at,
                    )
                    session.flush()

    def unsynchronised_gateways(self) -> set[str]:
        """Gateways whose latest heartbeat said their clock is not synchronised."""
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(Gateway.id).where(Gateway.clock_synchronised.is_(False))
                ).scalars()
            )

    def _own_readings(
        self, conn: Any, batch: MessageBatch
    ) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
        """The batch's readings a gateway may send, and dead letters for the others: a
        reading of a sensor registered to another gateway is refused (a gateway speaks only
        for itself; the rules skip it too, `RulesConfig.owners`)."""
        if not batch.readings:
            return [], []
        sensors = {r[_SENSOR] for r in batch.readings}
        ask = {s for s in sensors if s not in self._owners and s not in self._unknown}
        if ask:
            query = select(Sensor.id, Sensor.gateway_id).where(Sensor.id.in_(ask))
            self._owners.update((s, g) for s, g in conn.execute(query))
        foreign = {
            (r[0], r[_SENSOR]) for r in batch.readings if self._owners.get(r[_SENSOR], r[0]) != r[0]
        }
        if not foreign:
            return batch.readings, []
        rows, letters = [], []
        for r in batch.readings:
            if (r[0], r[_SENSOR]) not in foreign:
                rows.append(r)
                continue
            reason = (
                f"sensor {r[_SENSOR]} is registered to gateway {self._owners[r[_SENSOR]]}; "
                f"gateway {r[0]} may send readings of its own sensors only"
            )
            letters.extend(self._reading_letter(batch, r, reason))
        log.warning("refused %d readings of other gateways' sensors: %s", len(letters), foreign)
        return rows, letters

    def _reading_letter(
        self, batch: MessageBatch, r: tuple[Any, ...], reason: str
    ) -> list[dict[str, Any]]:
        """A dead letter holding one reading as JSON (replayable: `dead_letters`)."""
        site = batch.seen.get(r[0], ("?", r[8]))[0]
        record = dict(zip(READING_COLUMNS[1:8], r[1:8], strict=True))
        record["taken_at"] = wire.utc_iso(record["taken_at"])
        letter = MessageBatch()
        payload = json.dumps(record, sort_keys=True).encode()
        letter.add_dead_letter(wire.topic(site, r[0], "readings"), payload, reason, r[8])
        return letter.dead_letters

    def _conflicting_duplicates(
        self, conn: Any, batch: MessageBatch, rows: list[tuple[Any, ...]]
    ) -> list[dict[str, Any]]:
        """Dead letters for readings whose (gateway, seq) is stored with other content.

        A byte-identical replay (a redelivery) matches what is stored and stays silent; a
        different reading under a stored identity is refused: the stored one stays.
        """
        table = Reading.__table__
        keys = [(r[0], r[1]) for r in rows]
        stored: dict[tuple[str, int], tuple[Any, ...]] = {}
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            for row in conn.execute(
                select(*(table.c[c] for c in READING_COLUMNS)).where(
                    tuple_(table.c.gateway_id, table.c.seq).in_(chunk)
                )
            ):
                stored[(row[0], row[1])] = tuple(row)
        letters = []
        for r in rows:
            have = stored.get((r[0], r[1]))
            if have is None or have[2:8] == r[2:8]:
                continue
            reason = (
                f"conflicting duplicate: seq {r[1]} of gateway {r[0]} is stored with other "
                "content; the stored reading stays"
            )
            letters.extend(self._reading_letter(batch, r, reason))
        return letters

    def _refresh_custody(self, conn: Any, epcs: set[str]) -> None:
        """Rebuild the custody of the tags just observed, in the batch's transaction (one
        rebuild at a time: `serialise_custody`)."""
        with Session(bind=conn) as session:  # joins the transaction; never commits it
            written = refresh_custody(session, epcs)
            session.flush()
        log.debug("custody of %d tags rebuilt: %d intervals", len(epcs), written)

    def _insert_readings(
        self, conn: Any, rows: list[tuple[Any, ...]], merge: bool = False
    ) -> tuple[list[rollups.HourlyRollup], int]:
        """Insert readings, ignoring identities already stored, and merge their rollups;
        the rollups and how many readings were inserted.

        The rollups are aggregated from the readings actually inserted, so a redelivered
        reading is not counted twice. On SQLite an INSERT .. ON CONFLICT DO NOTHING
        RETURNING tells which; on PostgreSQL, _copy_readings.
        """
        if self.engine.dialect.name == "postgresql":
            stored = _copy_readings(conn, rows, merge)
        else:
            table = Reading.__table__
            stored = conn.execute(
                self._ignore(table).returning(*(table.c[c] for c in READING_COLUMNS)),
                [dict(zip(READING_COLUMNS, r, strict=True)) for r in rows],
            ).all()
        groups = rollups.roll_up(stored)
        if groups:  # one upsert row per (sensor, quantity, hour), in key order
            conn.execute(self._rollups, [g.row() for g in groups])
        return groups, len(stored)

    def _ignore(self, table: Table | Any) -> Any:
        return self._insert(table).on_conflict_do_nothing()

    def _upsert(
        self, conn: Any, table: Any, rows: Iterable[dict[str, Any]], keys: list[str]
    ) -> None:
        rows = list(rows)
        if not rows:
            return
        stmt = self._insert(table)
        changed = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
        conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changed), rows)

    def _advance_latest(self, conn: Any, newest: list[Any]) -> None:
        """Move latest_readings on to the newest stored reading of each sensor and quantity.

        `newest` holds one reading per (sensor, quantity), in key order: one lock order for
        all writers. Readings the batch repeats were stored, and considered, before.
        """
        if not newest:
            return
        conn.execute(
            self._latest,
            [
                {
                    "sensor_id": r[_SENSOR],
                    "quantity": r[_QUANTITY],
                    **{c: r[i] for c, i in zip(_LATEST_COLUMNS, _LATEST_AT, strict=True)},
                }
                for r in newest
            ],
        )

    def _add_gateways(self, conn: Any, gateways: set[tuple[str, str]]) -> None:
        """Gateways (and their sites) heard of for the first time: rows of unknown kind,
        until their status says more."""
        if not gateways:
            return
        conn.execute(
            self._ignore(Site.__table__),
            [
                {"id": site, "name": site, "kind": "unknown", "timezone": "UTC"}
                for site in sorted({site for _, site in gateways})
            ],
        )
        conn.execute(
            self._ignore(Gateway.__table__),
            [{"id": g, "site_id": site, "state": "unknown"} for g, site in sorted(gateways)],
        )

    def _touch_gateway(self, conn: Any, gateway: str, site: str, at: datetime) -> None:
        self._add_gateways(conn, {(gateway, site)})
        conn.execute(self._seen, {"gateway": gateway, "at": at})

    def _apply_status(self, conn: Any, status: wire.StatusMessage, at: datetime) -> None:
        """What the status may change (cloud/service_layer/gateway_status.py); what it may
        not is dead-lettered with the reasons, and proposals and refusals are alerted."""
        # Zones are audited: the database's triggers record what the gateway's status changes.
        act_as(conn, f"gateway:{status.gateway}", "gateway status")
        self._touch_gateway(conn, status.gateway, status.site, at)
        outcome = apply_status(conn, status, at)
        if outcome.refused:
            letter = MessageBatch()
            letter.add_dead_letter(
                wire.topic(status.site, status.gateway, "status"),
                status.model_dump_json().encode(),
                ("status refused in part: " + "; ".join(outcome.refused))[:2000],
                at,
            )
            conn.execute(self._ignore(DeadLetter.__table__), letter.dead_letters)
        notes = [
            (
                "gateway_status_refused",
                "critical",
                "describes what is not its own",
                outcome.refused,
            ),
            (
                "master_data_proposed",
                "warning",
                "describes master data otherwise",
                outcome.proposed,
            ),
        ]
        with Session(bind=conn) as session:  # joins the transaction; never commits
            for kind, severity, what, items in notes:
                if not items:
                    continue
                log.warning("gateway %s %s: %s", status.gateway, what, "; ".join(items))
                raise_alert(
                    session,
                    kind=kind,
                    severity=severity,
                    title=(f"Gateway {status.gateway} {what}: " + "; ".join(items))[:300],
                    subject_kind="gateway",
                    subject_id=status.gateway,
                    site_id=status.site,
                    now=at,
                )
            session.flush()
