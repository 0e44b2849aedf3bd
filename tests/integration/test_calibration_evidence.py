"""Evidence from a sensor past its calibration due date is used and marked (decision 0027):
on PostgreSQL, through the ingest write path, the rules, the alerts and the PDF report."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from cloud.adapters.orm.quality import Excursion, Exposure, Hold
from cloud.adapters.orm.readings import Sensor
from cloud.service_layer import alerts as alerts_service
from cloud.service_layer import rules
from cloud.service_layer.reports import excursion_report
from cloud.views.holds import frozen_batches
from tests.integration.test_rules import Plant, at, excursions

pytestmark = pytest.mark.integration

ALARM = "alarm high > 8 for 60 min"
NOTE = "1 of 2 sensors calibration overdue since 2026-07-01 06:00 UTC"


@pytest.fixture
def plant(pg_url: str) -> Iterator[Plant]:
    p = Plant(pg_url)
    with p.session("test:setup") as s:  # a-cold's second sensor, past its calibration due date
        s.add(Sensor(id="a-cold-t2", zone_id="a-cold", gateway_id="wh-a-gw", model="sim"))
        s.commit()
    try:
        yield p
    finally:
        p.engine.dispose()


def rows(plant: Plant, sensor: str, gateway: str, values: list[tuple[float, str]]) -> list[tuple]:
    """One reading a minute from T0 of (value, quality)."""
    found = []
    for minute, (value, quality) in enumerate(values):
        plant.seq[gateway] = plant.seq.get(gateway, 0) + 1
        found.append(
            (
                gateway,
                plant.seq[gateway],
                sensor,
                "temperature",
                value,
                "C",
                quality,
                at(minute),
                datetime.now(UTC),
            )
        )
    return found


def text_of(pdf: bytes) -> str:
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())


def test_a_calibrated_and_an_overdue_sensor_at_12_then_5(plant: Plant) -> None:
    """The seen case, with a calibrated twin: both read 12 C for 3 h, then 5 C. A reading
    with another bad flag (out_of_range, 30 C) in the middle is no peak and no extreme."""
    calibrated = [(12.0, "ok")] * 180 + [(5.0, "ok")] * 30
    calibrated[90] = (30.0, "out_of_range")
    overdue = [(12.0, "calibration_overdue")] * 180 + [(5.0, "calibration_overdue")] * 30
    readings = rows(plant, "a-cold-t1", "wh-a-gw", calibrated)
    readings += rows(plant, "a-cold-t2", "wh-a-gw", overdue)
    readings.sort(key=lambda r: r[7])
    for i in range(0, len(readings), 40):  # as a gateway's groups arrive
        plant.ingest(readings[i : i + 40])

    alarm = excursions(plant, "a-cold")[ALARM]
    assert (alarm.started_at, alarm.ended_at) == (at(0), at(180))  # closes with the room
    assert alarm.peak == 12.0  # the out_of_range 30 C is no evidence
    assert alarm.evidence_note == NOTE
    with plant.session() as s:
        exposures = s.scalars(select(Exposure).where(Exposure.excursion_id == alarm.id)).all()
        assert {x.batch_id for x in exposures} == {plant.sensitive.id, plant.robust.id}
        for x in exposures:
            assert x.minutes == pytest.approx(180.0)
            assert (x.min_value, x.max_value) == (12.0, 12.0)
            assert x.degree_minutes == pytest.approx(180 * 4.0)
            assert x.evidence_note == NOTE
        holds = s.scalars(select(Hold).order_by(Hold.id)).all()
        assert holds and all(h.evidence_note == NOTE for h in holds)
        rows_shown = frozen_batches(s)
        assert rows_shown and all(r.evidence == NOTE for r in rows_shown)  # the Holds page

        excursion = s.get(Excursion, alarm.id)
        raised = alerts_service.raise_alerts(s, [excursion], holds, now=at(200))
        titles = {a.subject_kind: a.title for a in raised}
        assert titles["excursion"].endswith(NOTE)
        assert NOTE in titles["hold"]

        text = text_of(excursion_report(s, alarm.id, now=at(300)))
        assert f"Evidence: {NOTE}." in text
        assert " 0 readings" not in text and "readings (temperature" in text
        count = int(text.split(" readings (temperature")[0].rsplit(" ", 1)[-1])
        assert count == 2 * 210 - 1  # every evidence reading of the window: not the 30 C


def test_a_zone_with_only_an_overdue_sensor_ends_when_the_room_recovers(plant: Plant) -> None:
    """The seen case itself: the excursion stayed open 14.5 h after the room recovered."""
    overdue = [(12.0, "calibration_overdue")] * 180 + [(5.0, "calibration_overdue")] * 30
    plant.ingest(rows(plant, "b-cold-t1", "wh-b-gw", overdue))
    alarm = excursions(plant, "b-cold")[ALARM]
    assert (alarm.ended_at, alarm.state) == (at(180), "closed")
    assert alarm.evidence_note == "1 of 1 sensor calibration overdue since 2026-07-01 06:00 UTC"
    with plant.session() as s:
        text = text_of(excursion_report(s, alarm.id, now=at(300)))
        assert "210 readings (temperature" in text


def test_readings_with_other_bad_flags_never_end_an_excursion(plant: Plant) -> None:
    """What `test_bad_quality_readings_do_not_end_an_excursion` asked of every flag holds for
    the flags that are not evidence; calibration overdue is evidence (decision 0027)."""
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 5 + [9.0] * 15))
    plant.ingest(plant.readings("a-cold", 20, [5.0] * 5, quality="timeout"))
    assert excursions(plant, "a-cold")["warning high > 8 for 10 min"].state == "open"
    plant.ingest(plant.readings("a-cold", 25, [5.0], quality="calibration_overdue"))
    warning = excursions(plant, "a-cold")["warning high > 8 for 10 min"]
    assert warning.ended_at == at(25)
    assert warning.evidence_note == "1 of 1 sensor calibration overdue since 2026-07-01 06:25 UTC"
    with plant.session() as s:
        assert rules.open_holds(s) == []
