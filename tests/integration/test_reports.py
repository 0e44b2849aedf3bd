"""The excursion investigation report and the recall report: real PDFs, read back with pypdf
(the text is there, and so is the chart), and the recall CSV."""

from __future__ import annotations

import csv
import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy.orm import Session

from cloud.adapters.orm.quality import Exposure
from cloud.adapters.orm.readings import Reading
from cloud.adapters.orm.traceability import Item
from cloud.domain.thinning import extremes
from cloud.service_layer import alerts as alerts_service
from cloud.service_layer.recall import open_recall
from cloud.service_layer.reports import excursion_report, recall_csv, recall_pdf
from cloud.service_layer.signatures import sign
from tests.integration.alerting_support import PASSWORD, World, at, seed_world

pytestmark = pytest.mark.integration


@pytest.fixture
def world(db: Session) -> World:
    world = seed_world(db)
    # Two hours of one-minute readings around the excursion: 5 C, then 12.5 C for 45 min.
    db.add_all(
        Reading(
            gateway_id="wh-a-gw",
            seq=n,
            sensor_id="a-cold-t1",
            quantity="temperature",
            value=12.5 if 0 <= n - 90 < 45 else 5.0,
            unit="C",
            quality="ok",
            taken_at=at(n - 90),
            received_at=at(n - 90),
        )
        for n in range(240)
    )
    db.add(
        Exposure(
            excursion_id=world.excursion.id,
            batch_id=world.batch.id,
            items=3,
            minutes=45.0,
            min_value=5.0,
            max_value=12.5,
            degree_minutes=202.5,
            started_at=at(0),
            ended_at=at(45),
        )
    )
    db.commit()
    return world


def text_of(pdf: bytes) -> str:
    """The text of every page, whitespace (and table cell wrapping) collapsed."""
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())


def test_excursion_investigation_report(db: Session, world: World) -> None:
    raised = alerts_service.raise_alerts(db, [world.excursion], [world.hold], now=at(31))
    alerts_service.acknowledge(db, raised[0].id, world.operator, at(35))
    alerts_service.comment(db, raised[0].id, world.qa, "compressor restarted", at(50))
    alerts_service.resolve(db, raised[0].id, world.qa, at(60))
    db.info["actor"], db.info["reason"] = "qa", "released after stability review"
    world.hold.status, world.hold.decided_at, world.hold.decided_by = (
        "released",
        at(70),
        world.qa.id,
    )
    sign(
        db, world.qa, PASSWORD, world.hold, "release", "within the stability budget", username="qa"
    )
    db.commit()

    pdf = excursion_report(db, world.excursion.id, now=at(120))
    assert pdf.startswith(b"%PDF-")
    text = text_of(pdf)
    for expected in (
        f"Excursion investigation report - excursion {world.excursion.id}",
        "Cold room A (a-cold, site wh-a)",
        "high / alarm",
        "L1",  # the exposed batch
        "202.5",  # its degree-minutes
        "Excursion detected",
        "acknowledged by Olive Operator (op)",
        "compressor restarted",
        "resolved by Quinn Assurance (qa)",
        "Signed by Quinn Assurance (qa), meaning release: within the stability budget",
        "166 readings",  # the hour either side of the excursion
    ):
        assert expected in text, expected
    # The timeline is in time order: the acknowledgement (06:35) before the release (07:10).
    assert text.index("acknowledged by") < text.index("meaning release")
    # The chart: the readings are a path of one segment per point, the limits dashed lines.
    content = PdfReader(io.BytesIO(pdf)).pages[0].get_contents().get_data().decode("latin-1")
    assert len(re.findall(r" l\b", content)) >= 165
    assert re.search(r"\[[\d.]+ [\d.]+\] [\d.]+ d", content), "no dashed limit line"
    assert re.search(r" re f\b", content), "no shaded excursion band"


def test_report_of_an_unknown_excursion(db: Session) -> None:
    with pytest.raises(LookupError, match="excursion 404 does not exist"):
        excursion_report(db, 404)


def test_thinning_keeps_spikes() -> None:
    points = [(at(n), 5.0) for n in range(10_000)]
    points[5_001] = (at(5_001), 30.0)
    kept = extremes(points, buckets=100)
    assert len(kept) <= 200
    assert (at(5_001), 30.0) in kept


def test_recall_reports(db: Session, world: World) -> None:
    db.add_all(Item(gtin=world.batch.gtin, serial=str(n), batch_id=world.batch.id) for n in (1, 2))
    db.flush()
    db.info["actor"] = "qa"
    recall = open_recall(
        db, world.batch.id, world.qa, PASSWORD, "supplier notice 2026-17", at(200), username="qa"
    )
    db.commit()
    rows = list(csv.DictReader(io.StringIO(recall_csv(db, recall.id))))
    assert [(r["serial"], r["disposition"], r["lot"]) for r in rows] == [
        ("1", "unknown", "L1"),
        ("2", "unknown", "L1"),
    ]
    assert rows[0]["exposures"] == "1" and rows[0]["exposure_minutes"] == "45.0"
    text = text_of(recall_pdf(db, recall.id, now=at(210)))
    for expected in (
        f"Recall report - recall {recall.id} of batch L1",
        "supplier notice 2026-17",
        "Signed by: Quinn Assurance (qa)",
        "Meaning: Approval",
        "2 unknown",
        "high (alarm)",
    ):
        assert expected in text, expected
