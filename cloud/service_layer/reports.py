"""Reports for QA and the regulator: the excursion investigation report (PDF, with a chart of
the zone's readings drawn by the PDF library itself) and the recall report (CSV and PDF)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.people import Signature, User
from cloud.adapters.orm.quality import Excursion, Exposure, Hold
from cloud.adapters.orm.readings import Reading, Sensor, Zone
from cloud.adapters.orm.traceability import Batch
from cloud.domain.clock import utcnow
from cloud.domain.csv_cells import safe_row
from cloud.domain.evidence import USABLE_QUALITIES
from cloud.domain.thinning import extremes
from cloud.service_layer.alerts import alerts_about, comments
from cloud.service_layer.recall import RecallTrace, trace
from cloud.service_layer.signatures import signature_manifest, signatures_on

MARGIN_S = 3600  # readings shown before and after the excursion
MAX_BUCKETS = 600  # the chart keeps the min and max of each bucket: ~1,200 points at most


def _t(value: object) -> str:
    """Text the PDF core fonts can show (Latin-1), whatever it was."""
    return str(value).encode("latin-1", "replace").decode("latin-1")


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


class Report(FPDF):
    """A4 portrait with a running title and page numbers."""

    def __init__(self, title: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.report_title = title
        self.set_title(title)
        self.set_creator("coldchain")
        self.set_auto_page_break(auto=True, margin=15)
        self.add_page()

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.cell(0, 6, _t(f"{self.report_title} - page {self.page_no()}"), align="C")

    def heading(self, text: str, size: int = 13) -> None:
        self.set_font("Helvetica", "B", size)
        self.cell(0, 8, _t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("Helvetica", size=9)

    def line_of_text(self, text: str) -> None:
        self.set_font("Helvetica", size=9)
        self.multi_cell(0, 5, _t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def rows(self, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        self.set_font("Helvetica", size=8)
        widths = (1, 3) if len(header) == 2 else None  # a label and its value
        with self.table(text_align="LEFT", line_height=5, col_widths=widths) as table:
            table.row([_t(h) for h in header])
            for values in rows:
                table.row([_t(v) for v in values])
        self.ln(2)


# --- the chart ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExcursionChart:
    """What the report's chart draws: the readings, the limits, the excursion, the window."""

    points: list[tuple[datetime, float]]
    limits: list[tuple[str, float]]
    span: tuple[datetime, datetime]  # the excursion
    window: tuple[datetime, datetime]


def draw_chart(pdf: Report, series: ExcursionChart, x: float, y: float, w: float, h: float) -> None:
    """Readings as a line, limits as dashed red lines, the excursion as a shaded band."""
    values = [v for _, v in series.points] + [v for _, v in series.limits]
    low, high = (min(values), max(values)) if values else (0.0, 10.0)
    pad = max((high - low) * 0.1, 0.5)
    low, high = low - pad, high + pad
    t0, t1 = series.window
    seconds = max((t1 - t0).total_seconds(), 1.0)

    def px(t: datetime) -> float:
        return x + w * min(max((t - t0).total_seconds() / seconds, 0.0), 1.0)

    def py(v: float) -> float:
        return y + h - h * (v - low) / (high - low)

    pdf.set_fill_color(253, 220, 220)
    band_start, band_end = px(series.span[0]), px(series.span[1])
    pdf.rect(band_start, y, max(band_end - band_start, 0.3), h, style="F")
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)
    pdf.rect(x, y, w, h)
    pdf.set_font("Helvetica", size=7)
    for value in (low, (low + high) / 2, high):
        pdf.text(x - 11, py(value) + 1, _t(f"{value:.1f}"))
    pdf.text(x, y + h + 4, _t(_when(t0)))
    pdf.text(x + w - 28, y + h + 4, _t(_when(t1)))
    pdf.set_draw_color(200, 0, 0)
    pdf.set_dash_pattern(dash=1.5, gap=1)
    for name, value in series.limits:
        pdf.line(x, py(value), x + w, py(value))
        pdf.text(x + w + 1, py(value) + 1, _t(f"{name} {value:g}"))
    pdf.set_dash_pattern()
    pdf.set_draw_color(20, 60, 160)
    pdf.set_line_width(0.3)
    if len(series.points) >= 2:
        pdf.polyline([(px(t), py(v)) for t, v in series.points])
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)


def zone_readings(
    session: Session, zone_id: str, start: datetime, end: datetime, quantity: str = "temperature"
) -> list[tuple[datetime, float]]:
    """The zone's readings of `quantity` in [start, end] that are evidence (`ok`, or from a
    sensor past its calibration due date: used and marked, decision 0027), oldest first."""
    sensors = select(Sensor.id).where(Sensor.zone_id == zone_id)
    query = (
        select(Reading.taken_at, Reading.value)
        .where(
            Reading.sensor_id.in_(sensors),
            Reading.quantity == quantity,
            Reading.quality.in_(USABLE_QUALITIES),
            Reading.value.is_not(None),
            Reading.taken_at >= start,
            Reading.taken_at <= end,
        )
        .order_by(Reading.taken_at)
    )
    return [
        (taken_at, float(value))
        for taken_at, value in session.execute(query)
        if value is not None  # the query keeps none
    ]


# --- the excursion investigation report ---------------------------------------------------


def _names(session: Session) -> dict[int, str]:
    return {u.id: f"{u.full_name} ({u.username})" for u in session.scalars(select(User))}


def _alert_timeline(
    session: Session, alerts: list[Alert], names: dict[int, str]
) -> list[tuple[datetime, str]]:
    events = []
    for a in alerts:
        events.append((a.opened_at, f"Alert {a.id} opened ({a.severity}): {a.title}"))
        if a.escalated_at is not None:
            events.append((a.escalated_at, f"Alert {a.id} escalated to level {a.escalation_level}"))
        if a.acknowledged_at is not None:
            who = names.get(a.acknowledged_by or -1, "?")
            events.append((a.acknowledged_at, f"Alert {a.id} acknowledged by {who}"))
        for note in comments(session, a.id):
            events.append(
                (note.at, f"Comment on alert {a.id} by {names.get(note.user_id, '?')}: {note.text}")
            )
        if a.resolved_at is not None:
            who = names.get(a.resolved_by or -1, "?")
            events.append((a.resolved_at, f"Alert {a.id} resolved by {who}"))
    return events


def _signature_line(s: Signature) -> str:
    return f"Signed by {s.full_name} ({s.username}), meaning {s.meaning}: {s.reason}"


def excursion_report(session: Session, excursion_id: int, now: datetime | None = None) -> bytes:
    """The investigation report of one excursion, as PDF bytes."""
    excursion = session.get(Excursion, excursion_id)
    if excursion is None:
        raise LookupError(f"excursion {excursion_id} does not exist")
    zone = session.get(Zone, excursion.zone_id)
    end = excursion.ended_at or now or utcnow()
    window = (
        excursion.started_at - timedelta(seconds=MARGIN_S),
        end + timedelta(seconds=MARGIN_S),
    )
    quantity, unit = ("humidity", "% RH") if excursion.kind == "humidity" else ("temperature", "C")
    points = zone_readings(session, excursion.zone_id, *window, quantity=quantity)
    limits = []
    if zone is not None and zone.high is not None and quantity == "temperature":
        limits.append(("high", zone.high))
    if zone is not None and zone.low is not None and quantity == "temperature":
        limits.append(("low", zone.low))
    if excursion.limit is not None and all(v != excursion.limit for _, v in limits):
        limits.append(("limit", excursion.limit))
    exposures = session.execute(
        select(Exposure, Batch)
        .join(Batch, Batch.id == Exposure.batch_id)
        .where(Exposure.excursion_id == excursion.id)
        .order_by(Batch.lot)
    ).all()
    holds = list(
        session.scalars(select(Hold).where(Hold.excursion_id == excursion.id).order_by(Hold.id))
    )
    names = _names(session)
    alerts = alerts_about(session, "excursion", [str(excursion.id)]) + alerts_about(
        session, "hold", [str(h.id) for h in holds]
    )
    timeline = [
        (excursion.started_at, f"Excursion started ({excursion.kind}, {excursion.level})"),
        (excursion.detected_at, "Excursion detected"),
    ]
    if excursion.ended_at is not None:
        timeline.append((excursion.ended_at, "Excursion ended"))
    lots = {b.id: b.lot for _, b in exposures}
    for hold in holds:
        lot = lots.get(hold.batch_id, str(hold.batch_id))
        timeline.append((hold.opened_at, f"Batch {lot} put on hold: {hold.reason}"))
        if hold.decided_at is not None:
            who = names.get(hold.decided_by or -1, "?")
            timeline.append((hold.decided_at, f"Hold on batch {lot} {hold.status} by {who}"))
        for sig in signatures_on(session, hold):
            timeline.append((sig.signed_at, f"Hold on batch {lot}: {_signature_line(sig)}"))
    timeline.extend(_alert_timeline(session, alerts, names))
    timeline.sort(key=lambda e: e[0])

    pdf = Report(f"Excursion investigation report - excursion {excursion.id}")
    pdf.heading(f"Excursion investigation report - excursion {excursion.id}", 15)
    pdf.line_of_text(f"Generated {_when(now or utcnow())}")
    pdf.heading("Excursion")
    zone_name = f"{zone.name} ({zone.id}, site {zone.site_id})" if zone else excursion.zone_id
    pdf.rows(
        ("Field", "Value"),
        [
            ("Zone", zone_name),
            ("Kind / level", f"{excursion.kind} / {excursion.level}"),
            ("Profile / rule", f"{excursion.profile_id} / {excursion.rule}"),
            ("Started", _when(excursion.started_at)),
            ("Ended", _when(excursion.ended_at) if excursion.ended_at else "still open"),
            ("Peak / limit", f"{excursion.peak} / {excursion.limit}"),
            ("State", excursion.state),
            ("Suppressed", excursion.suppressed_reason or "no"),
            ("Evidence", excursion.evidence_note or "no sensor past its calibration due date"),
        ],
    )
    pdf.heading("Zone readings")
    pdf.line_of_text(
        f"{len(points)} readings ({quantity}, {unit}) from {_when(window[0])} "
        f"to {_when(window[1])}; shaded: the excursion; dashed: limits."
    )
    if excursion.evidence_note:  # drawn like the rest, and said (decision 0027)
        pdf.line_of_text(f"Evidence: {excursion.evidence_note}.")
    chart_y = pdf.get_y() + 2
    draw_chart(
        pdf,
        ExcursionChart(extremes(points, MAX_BUCKETS), limits, (excursion.started_at, end), window),
        25,
        chart_y,
        155,
        60,
    )
    pdf.set_y(chart_y + 68)
    pdf.heading("Exposed batches")
    if exposures:
        pdf.rows(
            ("Lot", "GTIN", "Items", "Minutes", "Min C", "Max C", "Degree-min", "From", "To"),
            [
                (
                    b.lot,
                    b.gtin,
                    e.items,
                    f"{e.minutes:.1f}",
                    "-" if e.min_value is None else f"{e.min_value:.1f}",
                    "-" if e.max_value is None else f"{e.max_value:.1f}",
                    f"{e.degree_minutes:.1f}",
                    _when(e.started_at),
                    _when(e.ended_at),
                )
                for e, b in exposures
            ],
        )
    else:
        pdf.line_of_text("No batch was in the zone during the excursion.")
    pdf.heading("Timeline of acknowledgements and signatures")
    pdf.rows(("Time", "Event"), [(_when(at), text) for at, text in timeline])
    return bytes(pdf.output())


# --- the recall report --------------------------------------------------------------------

CSV_COLUMNS = (
    "recall_id",
    "lot",
    "gtin",
    "serial",
    "epc",
    "disposition",
    "zone_id",
    "site_id",
    "customer_id",
    "shipment_id",
    "since",
    "custody_history",
    "exposures",
    "exposure_minutes",
)


def _history(found: RecallTrace, index: int) -> str:
    return " | ".join(
        f"{c.zone_id} {c.started_at.isoformat()}..{c.ended_at.isoformat() if c.ended_at else 'now'}"
        for c in found.items[index].custody
    )


def recall_csv(session: Session, recall_id: int) -> str:
    """One row per item of the recalled batch: where it is, its custody and exposures."""
    found = trace(session, recall_id)
    minutes = sum(e.minutes for e, _ in found.exposures)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for index, traced in enumerate(found.items):
        r = traced.record
        writer.writerow(
            safe_row(
                (
                    found.recall.id,
                    found.batch.lot,
                    found.batch.gtin,
                    traced.item.serial,
                    traced.item.epc or "",
                    r.disposition,
                    r.zone_id or "",
                    r.site_id or "",
                    r.customer_id or "",
                    r.shipment_id or "",
                    r.since.isoformat() if r.since else "",
                    _history(found, index),
                    len(found.exposures),
                    f"{minutes:.1f}",
                )
            )
        )
    return out.getvalue()


def recall_pdf(session: Session, recall_id: int, now: datetime | None = None) -> bytes:
    """The recall report for the regulator, as PDF bytes."""
    found = trace(session, recall_id)
    recall, batch = found.recall, found.batch
    pdf = Report(f"Recall report - recall {recall.id}")
    pdf.heading(f"Recall report - recall {recall.id} of batch {batch.lot}", 15)
    pdf.line_of_text(f"Generated {_when(now or utcnow())}")
    pdf.rows(
        ("Field", "Value"),
        [
            ("Batch", f"{batch.lot} (GTIN {batch.gtin}, expires {batch.expires_on.isoformat()})"),
            ("Opened", _when(recall.opened_at)),
            ("Reason", recall.reason),
            ("State", recall.state),
            ("Batch status before the recall", recall.previous_status),
        ],
    )
    pdf.heading("Signatures")
    for sig in found.signatures:
        pdf.line_of_text(signature_manifest(sig) + f"\nReason: {sig.reason}")
    counts: dict[str, int] = {}
    for traced in found.items:
        counts[traced.record.disposition] = counts.get(traced.record.disposition, 0) + 1
    pdf.heading("Items")
    pdf.line_of_text(
        ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(counts.items()))
    )
    pdf.rows(
        ("Serial", "Disposition", "Zone", "Site", "Customer", "Shipment", "Since"),
        [
            (
                t.item.serial,
                t.record.disposition,
                t.record.zone_id or "-",
                t.record.site_id or "-",
                t.record.customer_id or "-",
                t.record.shipment_id or "-",
                _when(t.record.since),
            )
            for t in found.items
        ],
    )
    pdf.heading("Exposure history of the batch")
    if found.exposures:
        pdf.rows(
            ("Excursion", "Zone", "Kind", "Minutes", "Min C", "Max C", "From", "To"),
            [
                (
                    x.id,
                    x.zone_id,
                    f"{x.kind} ({x.level})",
                    f"{e.minutes:.1f}",
                    "-" if e.min_value is None else f"{e.min_value:.1f}",
                    "-" if e.max_value is None else f"{e.max_value:.1f}",
                    _when(e.started_at),
                    _when(e.ended_at),
                )
                for e, x in found.exposures
            ],
        )
    else:
        pdf.line_of_text("No exposure recorded for this batch.")
    return bytes(pdf.output())
