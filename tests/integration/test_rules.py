"""The rules on PostgreSQL: readings stored by the ingest write path, then evaluated into
excursions, exposures across warehouse -> truck -> warehouse, holds and signed dispositions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session

from cloud.adapters.audit_seals import seal_pending, verify_trail
from cloud.adapters.engine import make_engine, normalise_url, session_factory
from cloud.adapters.orm.audit import AuditEntry
from cloud.adapters.orm.people import Signature
from cloud.adapters.orm.quality import Excursion, Exposure, Hold, ZoneRuleState
from cloud.adapters.orm.readings import Gateway, Sensor, Site, Zone
from cloud.adapters.orm.traceability import Batch, CustodyInterval, Item, Product
from cloud.adapters.outbound import WebhookPolicy
from cloud.domain.audit_chain import AuditKey
from cloud.domain.holds import DispositionError
from cloud.entrypoints import rules_runner
from cloud.service_layer import rules
from cloud.service_layer.message_batch import MessageBatch
from cloud.service_layer.notifications import add_channel
from cloud.service_layer.rules.profiles import assign_profiles
from cloud.service_layer.signatures import SignatureRefused, create_user
from cloud.service_layer.store import Store
from cloud.views.trace import trace

pytestmark = pytest.mark.integration

T0 = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
SENSITIVE, ROBUST = "09506000134352", "09506000134369"
PASSWORD = "correct horse battery"
AUDIT_KEY = AuditKey(b"rules-test-audit-key-0123456789abcdef")
ZONES = [  # site, kind, gateway, zone, zone kind, sensor
    ("wh-a", "warehouse", "wh-a-gw", "a-cold", "cold_room", "a-cold-t1"),
    ("truck-7", "truck", "truck-7-gw", "t7-reefer", "truck_compartment", "t7-t1"),
    ("wh-b", "warehouse", "wh-b-gw", "b-cold", "cold_room", "b-cold-t1"),
]
SENSOR_OF = {zone: (gateway, sensor) for _, _, gateway, zone, _, sensor in ZONES}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Plant:
    """Zones, sensors, two batches and their custody: warehouse A -> truck -> warehouse B."""

    def __init__(self, url: str, tag: str = ""):
        self.sensor_of = {z: (gw + tag, sensor) for z, (gw, sensor) in SENSOR_OF.items()}
        self.engine: Engine = make_engine(url)
        self.sessions = session_factory(self.engine)
        self.store = Store(self.engine)
        self.seq: dict[str, int] = {}
        with self.sessions(info={"actor": "test:setup"}) as s:
            for site, kind, gateway, zone, zone_kind, sensor in ZONES:
                s.add(Site(id=site, name=site, kind=kind))
                s.flush()
                s.add(Gateway(id=gateway + tag, site_id=site))
                s.add(Zone(id=zone, site_id=site, name=zone, kind=zone_kind, low=2, high=8))
                s.flush()
                s.add(Sensor(id=sensor, zone_id=zone, gateway_id=gateway + tag, model="sim"))
            s.add(
                Product(
                    gtin=SENSITIVE,
                    name="Insulin pen",
                    low=2,
                    high=8,
                    freeze_sensitive=True,
                    stability_budget_min=120,
                )
            )
            s.add(Product(gtin=ROBUST, name="Saline", low=2, high=8, freeze_sensitive=False))
            s.flush()
            self.sensitive = Batch(
                gtin=SENSITIVE, lot="INS1", expires_on=date(2027, 6, 30), quantity=10
            )
            self.robust = Batch(gtin=ROBUST, lot="SAL1", expires_on=date(2027, 6, 30), quantity=10)
            s.add_all([self.sensitive, self.robust])
            s.flush()
            items = [
                Item(gtin=SENSITIVE, serial="1", batch_id=self.sensitive.id),
                Item(gtin=SENSITIVE, serial="2", batch_id=self.sensitive.id),
                Item(gtin=ROBUST, serial="1", batch_id=self.robust.id),
            ]
            s.add_all(items)
            s.flush()
            for it in items:
                for zone, start, end in (
                    ("a-cold", 0, 300),
                    ("t7-reefer", 300, 600),
                    ("b-cold", 600, None),
                ):
                    s.add(
                        CustodyInterval(
                            item_id=it.id,
                            zone_id=zone,
                            started_at=at(start),
                            ended_at=None if end is None else at(end),
                            basis="observed",
                        )
                    )
            create_user(s, "qa.jane", "Jane Doe", "qa", PASSWORD)
            create_user(s, "qa.kim", "Kim Second", "qa", PASSWORD)
            create_user(s, "view.vic", "Vic Viewer", "viewer", PASSWORD)
            s.commit()

    def readings(
        self, zone: str, start: float, values: list[float | None], quality: str = "ok"
    ) -> list[tuple]:
        gateway, sensor = self.sensor_of[zone]
        rows = []
        for i, value in enumerate(values):
            self.seq[gateway] = self.seq.get(gateway, 0) + 1
            rows.append(
                (
                    gateway,
                    self.seq[gateway],
                    sensor,
                    "temperature",
                    value,
                    "C",
                    quality,
                    at(start + i),
                    datetime.now(UTC),
                )
            )
        return rows

    def ingest(self, rows: list[tuple]) -> rules.RulesOutcome:
        """Store as ingest does (commit), then evaluate the committed readings."""
        batch = MessageBatch()
        batch.readings.extend(rows)
        self.store.write(batch)
        with self.sessions() as s:
            outcome = rules.evaluate_readings(s, rows)
            s.commit()
            return outcome

    def session(self, actor: str | None = None) -> Session:
        return self.sessions(info={"actor": actor} if actor else {})


@pytest.fixture
def plant(pg_url: str) -> Iterator[Plant]:
    p = Plant(pg_url)
    try:
        yield p
    finally:
        p.engine.dispose()


def excursions(plant: Plant, zone: str) -> dict[str, Excursion]:
    """A zone's excursions by rule, leaving out those late data withdrew."""
    with plant.session() as s:
        found = rules.zone_excursions(s, zone, at(-1e5), at(1e5))
        return {e.rule: e for e in found if e.suppressed_reason != rules.WITHDRAWN}


def test_an_alarm_excursion_exposes_and_holds_the_batches_present(plant: Plant) -> None:
    first = plant.ingest(plant.readings("a-cold", 0, [5.0] * 30 + [11.0] * 20))
    assert [e.rule for e in first.opened] == ["warning high > 8 for 10 min"]
    assert first.holds == []
    second = plant.ingest(plant.readings("a-cold", 50, [11.0] * 50 + [5.0] * 10))
    assert {e.rule for e in second.opened} == {"alarm high > 8 for 60 min"}
    assert {e.rule for e in second.closed} == {"warning high > 8 for 10 min"}
    assert {h.batch_id for h in second.holds} == {plant.sensitive.id, plant.robust.id}
    assert all(second.triggers.get(e.id) for e in second.opened)

    found = excursions(plant, "a-cold")
    alarm = found["alarm high > 8 for 60 min"]
    assert (alarm.started_at, alarm.ended_at, alarm.state) == (at(30), at(100), "closed")
    assert (alarm.kind, alarm.level, alarm.peak, alarm.limit) == ("high", "alarm", 11.0, 8.0)
    with plant.session() as s:
        (exposure, excursion), *_ = [
            x for x in rules.batch_exposures(s, plant.sensitive.id) if x[1].id == alarm.id
        ]
        assert (exposure.items, exposure.minutes) == (2, 70.0)
        assert (exposure.min_value, exposure.max_value) == (11.0, 11.0)
        assert exposure.degree_minutes == pytest.approx(70 * 3.0)
        assert s.get(Batch, plant.sensitive.id).status == "held"
        assert s.get(Batch, plant.robust.id).status == "held"
        # one undecided hold per batch, whatever the number of reasons
        (hold,) = s.scalars(select(Hold).where(Hold.batch_id == plant.sensitive.id))
        assert "alarm-level excursion" in hold.reason
        assert rules.remaining_budget(s, plant.sensitive.id) == pytest.approx(120 - 70)
        actors = set(s.scalars(select(AuditEntry.actor).where(AuditEntry.record_table == "holds")))
        assert actors == {rules.SYSTEM_ACTOR}
    assert seal_pending(plant.engine, AUDIT_KEY) > 0
    assert verify_trail(plant.engine, AUDIT_KEY).intact


def test_freezing_holds_only_freeze_sensitive_products(plant: Plant) -> None:
    outcome = plant.ingest(plant.readings("a-cold", 0, [5.0] * 5 + [-0.2] * 2 + [5.0] * 5))
    (freezing,) = [e for e in outcome.opened if e.kind == "freezing"]
    assert (freezing.started_at, freezing.ended_at) == (at(5), at(7))
    assert [h.batch_id for h in outcome.holds] == [plant.sensitive.id]
    with plant.session() as s:
        assert "freezing of a freeze-sensitive product" in outcome.holds[0].reason
        assert s.get(Batch, plant.robust.id).status == "available"
        exposed = s.scalars(select(Exposure.batch_id).where(Exposure.excursion_id == freezing.id))
        assert set(exposed) == {plant.sensitive.id, plant.robust.id}  # recorded for both


def test_a_truck_backlog_a_day_late_raises_what_it_would_have_live(plant: Plant) -> None:
    # The warehouse reports live; the truck was offline and uploads its backlog later,
    # newest chunk first (a buffer drained out of order), each chunk its own batch.
    plant.ingest(plant.readings("b-cold", 600, [5.0] * 30))
    truck = plant.readings("t7-reefer", 300, [5.0] * 60 + [13.0] * 80 + [5.0] * 160)
    for chunk in (truck[200:], truck[100:200], truck[:100]):
        plant.ingest(chunk)
    found = excursions(plant, "t7-reefer")
    timed = {r: (e.started_at, e.ended_at) for r, e in found.items() if not e.suppressed_reason}
    assert timed["alarm high > 8 for 60 min"] == (at(360), at(440))
    assert timed["alarm high > 12 for 15 min"] == (at(360), at(440))
    assert timed["warning high > 8 for 10 min"] == (at(360), at(440))
    assert not [e for e in found.values() if e.kind == "unknown_conditions"]
    with plant.session() as s:
        withdrawn = [
            e
            for e in rules.zone_excursions(s, "t7-reefer", at(0), at(1000))
            if e.suppressed_reason == rules.WITHDRAWN
        ]
        # The middle chunk alone showed a run from minute 400; the oldest chunk moved its
        # start to 360: the first record stays, withdrawn, with its reason.
        assert {e.started_at for e in withdrawn} == {at(400)}
    with plant.session() as s:
        truck_exposures = [
            x
            for x, e in rules.batch_exposures(s, plant.robust.id)
            if e.zone_id == "t7-reefer" and e.suppressed_reason != rules.WITHDRAWN
        ]
        assert truck_exposures and all(x.minutes == 80.0 for x in truck_exposures)
        assert s.get(Batch, plant.robust.id).status == "held"
        # the batch trace still lists the withdrawn excursion's exposure, and says so
        lines = [x.excursion for x in trace(s, plant.robust.id).exposures]
    of_withdrawn = [x for x in lines if any(f"(excursion {e.id})" in x for e in withdrawn)]
    assert of_withdrawn and all(x.endswith(rules.WITHDRAWN) for x in of_withdrawn)
    assert any(x.endswith(")") for x in lines)  # the excursion that stands: no remark


def test_a_monitoring_gap_while_product_is_present_is_unknown_conditions(plant: Plant) -> None:
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 10))
    with plant.session() as s:
        opened = rules.check_gaps(s, at(9 + 20))
        s.commit()
        (gap,) = opened.opened
        assert (gap.kind, gap.level, gap.started_at, gap.state) == (
            "unknown_conditions",
            "warning",
            at(9),
            "open",
        )
        assert opened.holds == []
        escalated = rules.check_gaps(s, at(9 + 61))
        s.commit()
        # the alarm is an excursion of its own beside the warning, from the same start
        assert [(e.level, e.started_at) for e in escalated.opened] == [("alarm", at(9))]
        assert escalated.changed == []
        assert {h.batch_id for h in escalated.holds} == {plant.sensitive.id, plant.robust.id}
        assert "monitoring gap" in escalated.holds[0].reason
    closed = plant.ingest(plant.readings("a-cold", 90, [5.0]))
    assert sorted((e.level, e.started_at, e.ended_at) for e in closed.closed) == [
        ("alarm", at(9), at(90)),
        ("warning", at(9), at(90)),
    ]


def test_a_gap_with_no_product_present_is_recorded_not_alarmed(plant: Plant) -> None:
    plant.ingest(plant.readings("b-cold", 0, [5.0] * 3))  # b-cold is empty until minute 600
    outcome = plant.ingest(plant.readings("b-cold", 200, [5.0]))
    assert sorted(gap.level for gap in outcome.opened) == ["alarm", "warning"]
    for gap in outcome.opened:
        assert gap.kind == "unknown_conditions" and gap.suppressed_reason == rules.NO_PRODUCT
    assert outcome.holds == []


def test_bad_quality_readings_do_not_end_an_excursion(plant: Plant) -> None:
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 5 + [9.0] * 15))
    # calibration overdue is evidence (decision 0027, test_calibration_evidence.py); a
    # sensor fault is not
    plant.ingest(plant.readings("a-cold", 20, [5.0] * 5, quality="sensor_fault"))
    found = excursions(plant, "a-cold")
    assert found["warning high > 8 for 10 min"].state == "open"
    plant.ingest(plant.readings("a-cold", 25, [5.0]))
    assert excursions(plant, "a-cold")["warning high > 8 for 10 min"].ended_at == at(25)


def test_suppression_window_is_recorded_not_hidden(plant: Plant) -> None:
    with plant.session("test:setup") as s:
        rules.add_suppression(s, "a-cold", at(0), at(60), "receiving at dock door 2", 30)
        s.commit()
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 5 + [9.0] * 20 + [5.0] * 5))
    warning = excursions(plant, "a-cold")["warning high > 8 for 10 min"]
    assert warning.suppressed_reason == "receiving at dock door 2"
    with plant.session() as s:
        assert rules.open_holds(s) == []


def test_qa_dispositions_a_hold_with_a_signature(plant: Plant) -> None:
    # Configured with no two-person reasons, a freezing hold is decided by one QA.
    one = partial(rules.disposition_hold, two_person_reasons=frozenset())
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 5 + [-1.0] * 3 + [5.0] * 3))
    with plant.session("qa.jane") as s:
        (hold,) = rules.open_holds(s)
        with pytest.raises(SignatureRefused):
            one(s, hold.id, "release", "qa.jane", "wrong password", reason="ok", username="qa.jane")
        s.rollback()
        with pytest.raises(DispositionError, match="needs your password"):
            one(s, hold.id, "release", "qa.jane", None, reason="ok")
        one(s, hold.id, "investigate", "qa.jane", None, reason="stability data")
        s.commit()
        assert s.get(Hold, hold.id).status == "investigating"
        assert s.get(Batch, hold.batch_id).status == "held"
        decided = one(
            s,
            hold.id,
            "release",
            "qa.jane",
            PASSWORD,
            reason="within stability data, ref SD-12",
            username="qa.jane",
        )
        s.commit()
        assert (decided.status, decided.decided_by is not None) == ("released", True)
        signature = s.get(Signature, decided.signature_id)
        assert (signature.meaning, signature.username) == ("release", "qa.jane")
        assert s.get(Batch, hold.batch_id).status == "available"
        with pytest.raises(DispositionError, match="released already"):
            one(s, hold.id, "reject", "qa.jane", PASSWORD, reason="again")
        reasons = set(
            s.scalars(
                select(AuditEntry.reason).where(
                    AuditEntry.record_table == "holds", AuditEntry.action == "update"
                )
            )
        )
        assert {"stability data", "within stability data, ref SD-12"} <= reasons
    with plant.session("view.vic") as s:
        plant.ingest(plant.readings("a-cold", 11, [-1.0] * 2 + [5.0]))
        (again,) = rules.open_holds(s)
        with pytest.raises(SignatureRefused, match="cannot sign"):
            one(s, again.id, "reject", "view.vic", PASSWORD, reason="no", username="view.vic")
    assert seal_pending(plant.engine, AUDIT_KEY) > 0
    assert verify_trail(plant.engine, AUDIT_KEY).intact


def test_reject_blocks_the_batch_for_good(plant: Plant) -> None:
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 5 + [-1.0] * 3 + [5.0] * 3))
    with plant.session("qa.jane") as s:
        (hold,) = rules.open_holds(s)
        # A freezing takes two QA by default: a review, then the decision by somebody else.
        with pytest.raises(DispositionError, match="nobody has reviewed"):
            rules.disposition_hold(s, hold.id, "reject", "qa.jane", PASSWORD, reason="frozen")
        rules.disposition_hold(
            s, hold.id, "review", "qa.jane", PASSWORD, reason="frozen: seen", username="qa.jane"
        )
        s.commit()
        assert s.get(Batch, hold.batch_id).status == "held"
    with plant.session("qa.kim") as s:
        rules.disposition_hold(
            s,
            hold.id,
            "reject",
            "qa.kim",
            PASSWORD,
            meaning="rejection",
            reason="frozen, destroy",
            username="qa.kim",
        )
        s.commit()
        assert s.get(Batch, hold.batch_id).status == "rejected"
    plant.ingest(plant.readings("a-cold", 11, [-1.0] * 2 + [5.0]))
    with plant.session() as s:
        assert rules.open_holds(s) == []  # a rejected batch is not held again


def test_budget_and_mkt_follow_the_batch_across_zones(plant: Plant) -> None:
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 280 + [9.0] * 40 + [5.0] * 10))
    plant.ingest(plant.readings("t7-reefer", 300, [5.0] * 200 + [9.5] * 60 + [5.0] * 40))
    with plant.session() as s:
        zones = {e.zone_id for _, e in rules.batch_exposures(s, plant.sensitive.id)}
        assert zones == {"a-cold", "t7-reefer"}
        # a-cold 280..300 (custody ends at 300) + the truck 500..560
        assert rules.remaining_budget(s, plant.sensitive.id) == pytest.approx(120 - 20 - 60)
        value = rules.mkt_for_batch(s, plant.sensitive.id, now=at(600))
        assert value is not None and 5.0 < value < 9.5
        assert rules.mkt_for_zone(s, "a-cold", at(0), at(280)) == pytest.approx(5.0)


def test_the_rules_run_on_sqlite_too(sqlite_url: str) -> None:
    plant = Plant(sqlite_url)
    try:
        plant.ingest(plant.readings("a-cold", 0, [5.0] * 5 + [-1.0] * 3 + [5.0] * 3))
        later = plant.ingest(plant.readings("a-cold", 20, [5.0] * 3))
        assert later.opened == [] and later.holds == []
        found = excursions(plant, "a-cold")
        assert (found["alarm freezing <= 0"].started_at, found["alarm freezing <= 0"].ended_at) == (
            at(5),
            at(8),
        )
        with plant.session() as s:
            assert [h.batch_id for h in rules.open_holds(s)] == [plant.sensitive.id]
    finally:
        plant.engine.dispose()


def test_the_scheduler_opens_a_gap_and_raises_its_alert(plant: Plant) -> None:
    from cloud.adapters.orm.alerting import Alert
    from cloud.entrypoints.scheduler import Scheduler

    plant.ingest(plant.readings("a-cold", 0, [5.0] * 10))
    scheduler = Scheduler(plant.sessions, clock=lambda: at(9 + 20), senders={})
    report = scheduler.tick()
    assert report.gaps == 1
    with plant.session() as s:
        (gap,) = s.scalars(select(Excursion).where(Excursion.kind == "unknown_conditions"))
        alerts = list(s.scalars(select(Alert).where(Alert.subject_kind == "excursion")))
        assert [a.subject_id for a in alerts] == [str(gap.id)]
    assert scheduler.tick().gaps == 0  # the same gap is not opened twice


def test_a_workers_zone_set_up_is_kept_until_it_expires_or_is_dropped(plant: Plant) -> None:
    """The ingest worker's RulesConfig: no set-up statements per batch, changes seen later."""
    config = rules.RulesConfig(ttl_s=3600)
    with plant.session("test:setup") as s:
        assert config.zone_of(s, {"a-cold-t1", "unknown"}) == {"a-cold-t1": "a-cold"}
        names = [p.name for p in config.profiles(s, {"a-cold"})["a-cold"]]
        assert "15-25C" not in names
        assert config.suppressions(s, {"a-cold"}, at(100))["a-cold"] == []
        s.get(Sensor, "a-cold-t1").zone_id = "b-cold"
        assign_profiles(s, "a-cold", ["15-25C"])
        rules.add_suppression(s, "a-cold", at(0), at(60), "receiving at dock door 2", 30)
        s.flush()
        # Kept: the sensor still maps to its old zone, the zone keeps its old profiles.
        assert config.zone_of(s, {"a-cold-t1"}) == {"a-cold-t1": "a-cold"}
        assert [p.name for p in config.profiles(s, {"a-cold"})["a-cold"]] == names
        # Windows from an earlier time than was read are read again.
        found = config.suppressions(s, {"a-cold"}, at(-10))["a-cold"]
        assert [w.reason for w in found] == ["receiving at dock door 2"]
        assert config.sites(s, {"a-cold", "nowhere"}) == {"a-cold": "wh-a"}
        assert config.channels(s) == []
        add_channel(
            s,
            "qa-hook",
            "webhook",
            "http://127.0.0.1:9/hook",
            secret="k",
            webhooks=WebhookPolicy.parse("127.0.0.1"),
        )
        s.flush()
        assert config.channels(s) == []  # kept
        assert [c.name for c in rules.RulesConfig(ttl_s=0).channels(s)] == ["qa-hook"]
        config.invalidate()
        assert [c.name for c in config.channels(s)] == ["qa-hook"]
        assert config.zone_of(s, {"a-cold-t1"}) == {"a-cold-t1": "b-cold"}
        assert [p.name for p in config.profiles(s, {"a-cold"})["a-cold"]] == ["15-25C"]
        # Without a lifetime nothing is kept.
        s.get(Sensor, "a-cold-t1").zone_id = "a-cold"
        s.flush()
        assert rules.RulesConfig(ttl_s=0).zone_of(s, {"a-cold-t1"}) == {"a-cold-t1": "a-cold"}
        s.rollback()


def test_a_worker_keeps_its_detector_states_until_another_writer_changes_one(
    plant: Plant,
) -> None:
    """Decision 0016: no locked read of the states the worker committed last; a gap the
    scheduler opened meanwhile bumped their version, so the worker reads them afresh and
    the next reading closes that gap (a kept state would have overwritten it)."""
    config = rules.RulesConfig(ttl_s=3600)
    statements: list[str] = []
    event.listen(plant.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def run(rows: list[tuple]) -> None:
        batch = MessageBatch()
        batch.readings.extend(rows)
        plant.store.write(batch)
        statements.clear()
        assert rules_runner.evaluate(plant.engine, "worker-1", rows, config) is not None

    def stored_versions() -> dict[tuple[str, str], int]:
        with plant.session() as s:
            rows = s.execute(
                select(ZoneRuleState.zone_id, ZoneRuleState.profile_id, ZoneRuleState.version)
            )
            return {(z, p): v for z, p, v in rows if z == "a-cold"}

    def locked_reads() -> list[str]:
        return [q for q in statements if "zone_rule_states" in q and "FOR UPDATE" in q]

    run(plant.readings("a-cold", 0, [5.0] * 10))
    assert locked_reads()  # nothing kept yet
    run(plant.readings("a-cold", 10, [5.0] * 5))
    assert locked_reads() == []
    versions = stored_versions()
    assert {k: v for k, (v, _) in config.kept_states(list(versions)).items()} == versions
    with plant.session() as s:
        (gap,) = rules.check_gaps(s, at(14 + 20)).opened
        s.commit()
    run(plant.readings("a-cold", 90, [5.0]))
    assert locked_reads()  # the kept states were stale: read again
    with plant.session() as s:
        ended = s.get(Excursion, gap.id)
        assert ended is not None and (ended.state, ended.ended_at) == ("closed", at(90))
    versions = stored_versions()
    assert {k: v for k, (v, _) in config.kept_states(list(versions)).items()} == versions
    # An evaluation rolled back (its batch was not stored) keeps nothing it changed.
    with pytest.raises(rules_runner.Lost):
        rules_runner.evaluate(
            plant.engine, "worker-1", plant.readings("a-cold", 91, [5.0]), config, lambda: False
        )
    assert config.kept_states(list(versions)) == {}


def test_the_rules_evaluate_again_when_the_database_breaks_a_deadlock(
    plant: Plant, pg_url: str
) -> None:
    """Another transaction locks two zones' detector states in the other order than the
    rules' update; PostgreSQL aborts the rules' transaction to break the deadlock, and the
    rules evaluate the batch once more rather than leave its readings unevaluated."""
    config = rules.RulesConfig(ttl_s=3600)
    # The rules look for the deadlock after 1 s of waiting; the other side never does.
    engine = create_engine(
        normalise_url(pg_url), connect_args={"options": "-c deadlock_timeout=1000"}
    )

    def stored(rows: list[tuple]) -> list[tuple]:
        batch = MessageBatch()
        batch.readings.extend(rows)
        plant.store.write(batch)
        return rows

    first = stored(plant.readings("a-cold", 0, [5.0] * 3) + plant.readings("b-cold", 0, [5.0] * 3))
    assert rules_runner.evaluate(engine, "worker-1", first, config) is not None
    rows = stored(plant.readings("a-cold", 3, [5.0]) + plant.readings("b-cold", 3, [5.0]))
    reports: list[Any] = []
    with psycopg.connect(pg_url) as other:
        other.execute("SET deadlock_timeout = '60s'")
        lock = "SELECT 1 FROM zone_rule_states WHERE zone_id = %s FOR UPDATE"
        other.execute(lock, ("b-cold",))
        rules_thread = threading.Thread(
            target=lambda: reports.append(rules_runner.evaluate(engine, "worker-1", rows, config))
        )
        rules_thread.start()
        deadline = time.monotonic() + 10
        with psycopg.connect(pg_url, autocommit=True) as watch:
            while time.monotonic() < deadline:  # the rules hold a-cold and wait for b-cold
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND query LIKE 'UPDATE zone_rule_states%%'"
                ).fetchone()
                if waiting and waiting[0]:
                    break
                time.sleep(0.01)
            else:
                raise AssertionError("the rules never waited for the other transaction's lock")
        other.execute(lock, ("a-cold",))  # a deadlock: granted once the rules are aborted
        other.commit()
    rules_thread.join(30)
    engine.dispose()
    assert reports and reports[0] is not None, "the batch was left unevaluated"
    assert reports[0].readings == len(rows)
    with plant.session() as s:
        watermarks = {
            zone: mark
            for zone, mark in s.execute(select(ZoneRuleState.zone_id, ZoneRuleState.watermark))
        }
    assert watermarks["a-cold"] == watermarks["b-cold"] == at(3)


def test_an_episode_starting_after_the_stored_watermark_is_inserted_without_a_look_up(
    plant: Plant,
) -> None:
    """Episodes start at or before the watermark their evaluation leaves: one that starts
    after a zone's stored watermark cannot be stored yet, and is not looked for; one that
    started before (it ends now) is looked up and updated, not inserted twice."""
    config = rules.RulesConfig(ttl_s=3600)
    statements: list[str] = []
    event.listen(plant.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def run(rows: list[tuple]) -> rules_runner.RulesReport:
        batch = MessageBatch()
        batch.readings.extend(rows)
        plant.store.write(batch)
        statements.clear()
        report = rules_runner.evaluate(plant.engine, "worker-1", rows, config)
        assert report is not None
        return report

    def look_ups() -> list[str]:
        return [q for q in statements if q.lstrip().startswith("SELECT") and "FROM excursions" in q]

    run(plant.readings("a-cold", 0, [5.0] * 5))
    opening = run(plant.readings("a-cold", 5, [13.0] * 40))
    assert opening.opened and look_ups() == []
    closing = run(plant.readings("a-cold", 45, [5.0] * 5))
    assert closing.opened == () and look_ups()
    found = excursions(plant, "a-cold")
    assert sorted(e.id for e in found.values()) == sorted(opening.opened)
    assert all(e.state == "closed" and e.ended_at == at(45) for e in found.values())
