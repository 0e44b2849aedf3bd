"""Read models for the control room: what every site and zone looks like right now.

The dashboard reads through here and never writes SQL of its own.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.models import Gateway, LatestReading, Sensor, Site, Zone, utcnow

STALE_AFTER = timedelta(seconds=60)
# Readings shown on screen; a sensor past its calibration date still shows, with a mark.
DISPLAYED = ("ok", "calibration_overdue")


@dataclass(frozen=True)
class Measurement:
    """The latest good values of one quantity across a zone's sensors."""

    low: float
    high: float
    unit: str
    taken_at: datetime

    def text(self, digits: int = 1) -> str:
        if round(self.low, digits) == round(self.high, digits):
            return f"{self.low:.{digits}f} {self.unit}"
        return f"{self.low:.{digits}f} to {self.high:.{digits}f} {self.unit}"


@dataclass(frozen=True)
class ZoneNow:
    id: str
    name: str
    kind: str
    low: float | None
    high: float | None
    temperature: Measurement | None
    humidity: Measurement | None
    sensors: int
    state: str  # ok | out_of_range | no_data
    calibration_overdue: bool = False

    @property
    def limits(self) -> str:
        if self.low is None and self.high is None:
            return "no limits"
        low = "" if self.low is None else f"{self.low:g}"
        high = "" if self.high is None else f"{self.high:g}"
        return f"{low} to {high} C"


@dataclass(frozen=True)
class GatewayNow:
    id: str
    state: str
    last_seen: datetime | None
    buffer_depth: int | None


@dataclass(frozen=True)
class SiteNow:
    id: str
    name: str
    kind: str
    timezone: str
    gateways: list[GatewayNow]
    zones: list[ZoneNow]


def zone_state(zone: Zone, temperature: Measurement | None, now: datetime) -> str:
    """Instantaneous state: no recent good reading, outside the limits, or fine."""
    if temperature is None or now - temperature.taken_at > STALE_AFTER:
        return "no_data"
    if zone.high is not None and temperature.high > zone.high:
        return "out_of_range"
    if zone.low is not None and temperature.low < zone.low:
        return "out_of_range"
    return "ok"


class ControlRoom:
    """The queries behind the control room's pages."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def overview(self, now: datetime | None = None) -> list[SiteNow]:
        """Every site with its gateways and its zones' latest conditions."""
        now = now or utcnow()
        with self.sessions() as session:
            sites = session.scalars(select(Site).order_by(Site.kind.desc(), Site.name)).all()
            zones = session.scalars(select(Zone).order_by(Zone.name)).all()
            gateways = session.scalars(select(Gateway).order_by(Gateway.id)).all()
            latest = session.execute(
                select(Sensor.zone_id, LatestReading)
                .join(LatestReading, LatestReading.sensor_id == Sensor.id)
                .where(LatestReading.quality.in_(DISPLAYED))
            ).all()
            sensor_count = defaultdict(int)
            for (zone_id,) in session.execute(select(Sensor.zone_id)).all():
                sensor_count[zone_id] += 1

        values: dict[tuple[str, str], list[LatestReading]] = defaultdict(list)
        for zone_id, reading in latest:
            values[(zone_id, reading.quantity)].append(reading)

        def measure(zone_id: str, quantity: str) -> Measurement | None:
            rows = values.get((zone_id, quantity))
            if not rows:
                return None
            numbers = [r.value for r in rows if r.value is not None]
            if not numbers:
                return None
            return Measurement(
                min(numbers), max(numbers), rows[0].unit, max(r.taken_at for r in rows)
            )

        zones_by_site: dict[str, list[ZoneNow]] = defaultdict(list)
        for zone in zones:
            temperature = measure(zone.id, "temperature")
            zones_by_site[zone.site_id].append(
                ZoneNow(
                    id=zone.id,
                    name=zone.name,
                    kind=zone.kind,
                    low=zone.low,
                    high=zone.high,
                    temperature=temperature,
                    humidity=measure(zone.id, "humidity"),
                    sensors=sensor_count[zone.id],
                    state=zone_state(zone, temperature, now),
                    calibration_overdue=any(
                        r.quality == "calibration_overdue"
                        for q in ("temperature", "humidity")
                        for r in values.get((zone.id, q), [])
                    ),
                )
            )
        gateways_by_site: dict[str, list[GatewayNow]] = defaultdict(list)
        for gw in gateways:
            gateways_by_site[gw.site_id].append(
                GatewayNow(gw.id, gw.state, gw.last_seen, gw.buffer_depth)
            )
        return [
            SiteNow(
                site.id,
                site.name,
                site.kind,
                site.timezone,
                gateways_by_site[site.id],
                zones_by_site[site.id],
            )
            for site in sites
        ]
