"""Several profiles on one zone, on PostgreSQL: a temperature-and-humidity sensor (an XY-MD02
in a truck compartment) back from a day offline, the scheduler's gap sweep with both
profiles and with a broken zone, and an open excursion's peak following the zone."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.quality import Excursion, Exposure, Hold, ZoneRuleState
from cloud.adapters.orm.traceability import Batch
from cloud.entrypoints.scheduler import Scheduler
from cloud.service_layer import alerts as alerts_service
from tests.integration.test_rules import Plant, at

pytestmark = pytest.mark.integration

GAP = "unknown conditions"


@pytest.fixture
def plant(pg_url: str) -> Iterator[Plant]:
    p = Plant(pg_url)
    try:
        yield p
    finally:
        p.engine.dispose()


def both(plant: Plant, zone: str, start: float, temps: list[float], rh: float = 50.0) -> list:
    """Temperature and humidity readings of the zone's one sensor, one a minute from `start`."""
    temperature = plant.readings(zone, start, list(temps))
    humidity = plant.readings(zone, start, [rh] * len(temps))
    humidity = [(*r[:3], "humidity", r[4], "%", *r[6:]) for r in humidity]
    return temperature + humidity


def stored(plant: Plant, zone: str) -> list[Excursion]:
    with plant.session() as s:
        return list(
            s.scalars(
                select(Excursion)
                .where(Excursion.zone_id == zone)
                .order_by(Excursion.profile_id, Excursion.rule, Excursion.level)
            )
        )


def test_a_truck_with_temperature_and_humidity_back_from_offline_raises_everything(
    plant: Plant,
) -> None:
    # live until minute 359, then 2 h without power, then 3 h at 12 -> 15 C in the backlog
    plant.ingest(both(plant, "t7-reefer", 300, [5.0] * 60))
    ramp = [12.0 + 3.0 * i / 179 for i in range(180)]
    backlog = plant.ingest(both(plant, "t7-reefer", 480, ramp))
    found = {(e.profile_id, e.rule, e.level): e for e in stored(plant, "t7-reefer")}
    gaps = {k: (e.started_at, e.ended_at) for k, e in found.items() if e.rule == GAP}
    assert gaps == {
        ("2-8C", GAP, "warning"): (at(359), at(480)),
        ("2-8C", GAP, "alarm"): (at(359), at(480)),
        ("humidity", GAP, "warning"): (at(359), at(480)),  # 121 min: under its 240 for alarm
    }
    alarm = found[("2-8C", "alarm high > 8 for 60 min", "alarm")]
    assert (alarm.kind, alarm.started_at, alarm.ended_at, alarm.state) == (
        "high",
        at(480),
        None,
        "open",
    )
    assert alarm.peak == pytest.approx(15.0)  # the zone's highest, not its value at detection
    assert alarm in backlog.opened or alarm.id in {e.id for e in backlog.opened}
    with plant.session() as s:
        exposure = s.scalars(
            select(Exposure).where(
                Exposure.excursion_id == alarm.id, Exposure.batch_id == plant.sensitive.id
            )
        ).one()
        assert (exposure.started_at, exposure.ended_at, exposure.minutes) == (
            at(480),
            at(600),
            120.0,
        )
        holds = list(s.scalars(select(Hold).where(Hold.batch_id == plant.sensitive.id)))
        assert len(holds) == 1 and "alarm-level excursion" in holds[0].reason
        assert s.get(Batch, plant.sensitive.id).status == "held"
        alerts_service.raise_pending(s, at(700))
        s.commit()
        subjects = set(s.scalars(select(Alert.subject_id).where(Alert.subject_kind == "excursion")))
        assert str(alarm.id) in subjects
        assert str(found[("2-8C", GAP, "alarm")].id) in subjects
        assert str(holds[0].id) in set(
            s.scalars(select(Alert.subject_id).where(Alert.subject_kind == "hold"))
        )
    # the zone's next batch is evaluated too: the excursion ends, its peak stays the highest
    later = plant.ingest(both(plant, "t7-reefer", 660, [5.0] * 5))
    assert alarm.id in {e.id for e in later.closed}
    with plant.session() as s:
        again = s.get(Excursion, alarm.id)
        assert (again.ended_at, again.peak) == (at(660), pytest.approx(15.0))


def test_the_scheduler_opens_both_profiles_gaps_and_alarms_at_the_temperature_delay(
    plant: Plant,
) -> None:
    plant.ingest(both(plant, "a-cold", 0, [5.0] * 10))  # the last valid reading at minute 9
    seen: dict[tuple[str, str], float] = {}
    held_at = None
    for minute in range(14, 9 + 250, 5):
        Scheduler(plant.sessions, clock=lambda m=minute: at(m), senders={}).tick()
        for e in stored(plant, "a-cold"):
            seen.setdefault((e.profile_id, e.level), minute - 9)
        with plant.session() as s:
            if held_at is None and s.scalars(select(Hold)).first() is not None:
                held_at = minute - 9
    assert seen == {
        ("2-8C", "warning"): 20,  # the first tick past 15 min of silence
        ("2-8C", "alarm"): 65,  # past 60 min: the 2-8C profile's gap alarm
        ("humidity", "warning"): 65,  # past its 60 min
        ("humidity", "alarm"): 245,  # past its 240 min
    }
    assert held_at == 65
    with plant.session() as s:
        alarm = s.scalars(
            select(Excursion).where(Excursion.profile_id == "2-8C", Excursion.level == "alarm")
        ).one()
        assert (alarm.kind, alarm.started_at, alarm.state) == ("unknown_conditions", at(9), "open")
        alert = s.scalars(
            select(Alert).where(
                Alert.subject_kind == "excursion", Alert.subject_id == str(alarm.id)
            )
        ).one()
        assert alert.title.startswith("Alarm: unknown conditions")


def test_one_broken_zone_does_not_stop_the_gap_sweep_of_the_others(
    plant: Plant, caplog: pytest.LogCaptureFixture
) -> None:
    for zone in ("a-cold", "t7-reefer", "b-cold"):
        plant.ingest(plant.readings(zone, 0, [5.0] * 10))
    with plant.session("test:setup") as s:  # the truck's kept state is corrupt
        s.execute(
            update(ZoneRuleState)
            .where(ZoneRuleState.zone_id == "t7-reefer")
            .values(state={"version": 1, "last_ok": "not a time"})
        )
        s.commit()
    with caplog.at_level(logging.ERROR):
        report = Scheduler(plant.sessions, clock=lambda: at(9 + 20), senders={}).tick()
    assert report.gaps == 2
    # the zones before and after it in the sweep's order have their gaps
    assert [(e.zone_id, e.level) for e in stored(plant, "a-cold")] == [("a-cold", "warning")]
    assert [(e.zone_id, e.level) for e in stored(plant, "b-cold")] == [("b-cold", "warning")]
    assert stored(plant, "t7-reefer") == []
    assert any("t7-reefer" in r.getMessage() for r in caplog.records)
    with plant.session() as s:  # the other jobs ran too: the gap with product present alerts
        (gap,) = stored(plant, "a-cold")
        alerts = s.scalars(select(Alert.subject_id).where(Alert.subject_kind == "excursion"))
        assert list(alerts) == [str(gap.id)]


def test_an_open_excursions_peak_and_exposure_follow_the_zone(plant: Plant) -> None:
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 10 + [9.9] * 15))  # counted at minute 20
    (warning,) = stored(plant, "a-cold")
    assert (warning.state, warning.peak) == ("open", 9.9)
    rising = [9.9 + (19.7 - 9.9) * i / 29 for i in range(30)]
    for start in range(25, 55, 10):
        plant.ingest(plant.readings("a-cold", start, rising[start - 25 : start - 15]))
    found = {e.rule: e for e in stored(plant, "a-cold")}
    warning = found["warning high > 8 for 10 min"]
    assert warning.state == "open" and warning.peak == pytest.approx(19.7)
    assert found["alarm high > 12 for 15 min"].peak == pytest.approx(19.7)
    with plant.session() as s:
        exposure = s.scalars(
            select(Exposure).where(
                Exposure.excursion_id == warning.id, Exposure.batch_id == plant.robust.id
            )
        ).one()
        # each value stands until the next reading: the newest (19.7, at the data's end) has
        # stood for no time yet, the one before it for a minute
        assert exposure.max_value == pytest.approx(rising[-2])
        assert exposure.ended_at == at(54)
        assert exposure.minutes == pytest.approx(44.0)
        assert exposure.degree_minutes > 15 * 1.9 + 10 * 5
