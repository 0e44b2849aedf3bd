"""Read models for the control room: what every site and zone looks like right now.

The dashboard reads through here (and the other modules of cloud.views) and never writes
SQL of its own.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.adapters.orm.people import User
from cloud.adapters.orm.quality import Excursion
from cloud.adapters.orm.readings import Gateway, LatestReading, Sensor, Site, Zone
from cloud.adapters.orm.traceability import Batch
from cloud.domain.access import effective_role
from cloud.domain.audit_chain import AuditKey
from cloud.domain.clock import utcnow
from cloud.service_layer.accounts import check_password_of
from cloud.service_layer.signatures import user_named

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=3)  # a missed poll or two at one a minute is not "unknown"
INVENTORY_TTL_S = 10.0  # a new zone shows within this
EXPIRY_TTL_S = 60.0  # tiers move by the day
GATEWAY_OFFLINE_AFTER = timedelta(minutes=2)  # heartbeats come every 15-60 s
# Readings shown on screen; a sensor past its calibration date still shows, with a mark.
DISPLAYED = ("ok", "calibration_overdue")
STATES = ("ok", "warning", "alarm", "unknown")
P = ParamSpec("P")
T = TypeVar("T")


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
    state: str  # ok | warning | alarm | unknown
    calibration_overdue: bool = False
    open_excursions: int = 0

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
    state: str  # online | offline | unknown, as the gateway last said, aged by silence
    last_seen: datetime | None
    buffer_depth: int | None
    oldest_unsent_age_s: float | None = None


@dataclass(frozen=True)
class SiteNow:
    id: str
    name: str
    kind: str
    timezone: str
    gateways: list[GatewayNow]
    zones: list[ZoneNow]


@dataclass(frozen=True)
class Counts:
    """The numbers across the top of the overview; None where the service is missing."""

    open_excursions: int | None
    frozen_batches: int
    expiry: dict[str, int] | None = None  # tier -> batches
    expiry_by_site: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Overview:
    at: datetime
    sites: list[SiteNow]
    counts: Counts


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    full_name: str
    role: str
    session_id: int | None = None  # the login session this user acts in, if any
    must_change_password: bool = False


def _user_view(user: User) -> UserView:
    """The user as the control room sees them: in the role they may act in now (a viewer's
    while a role change waits for a second admin)."""
    role = effective_role(user.role, user.pending_role)
    return UserView(user.id, user.username, user.full_name, role)


def zone_state(
    zone: Zone | Any, temperature: Measurement | None, now: datetime, levels: set[str]
) -> str:
    """alarm or warning by the open excursions (rules), warning when out of limits before
    the alarm delay has passed, unknown without a recent good reading, else ok."""
    if "alarm" in levels:
        return "alarm"
    if temperature is None or now - temperature.taken_at > STALE_AFTER:
        return "unknown"
    if "warning" in levels:
        return "warning"
    if zone.high is not None and temperature.high > zone.high:
        return "warning"
    if zone.low is not None and temperature.low < zone.low:
        return "warning"
    return "ok"


def gateway_state(gateway: Gateway | Any, now: datetime) -> str:
    """What the gateway said last, unless it has been silent too long to believe it."""
    if gateway.last_seen is None:
        return "unknown"
    if gateway.state == "online" and now - gateway.last_seen > GATEWAY_OFFLINE_AFTER:
        return "offline"
    return gateway.state if gateway.state in ("online", "offline") else "unknown"


class ControlRoom:
    """The queries behind the control room's pages."""

    def __init__(self, sessions: sessionmaker[Session], audit_key: AuditKey | None = None):
        self.sessions = sessions
        self.audit_key = audit_key  # verifies the audit trail's seals
        self._cache: dict[str, tuple[float, Any]] = {}

    def _cached(self, ttl_s: float, key: str, compute: Callable[..., T], *args: Any) -> T:
        """What changes slowly (the inventory, expiry tiers) is read again after ttl_s only."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < ttl_s:
            return hit[1]
        value = compute(*args)
        self._cache[key] = (now, value)
        return value

    def read(self, query: Callable[Concatenate[Session, P], T], *args: P.args, **kw: P.kwargs) -> T:
        """Run a read-only service query in a fresh session."""
        with self.sessions() as session:
            return query(session, *args, **kw)

    def act(
        self,
        user: UserView,
        reason: str | None,
        action: Callable[Concatenate[Session, P], T],
        *args: P.args,
        **kw: P.kwargs,
    ) -> T:
        """Run a service action as `user` (the audit trail's actor), with a reason; commit."""
        with self.sessions() as session:
            session.info["actor"] = user.username
            if user.session_id is not None:  # a signature's continuous session
                session.info["login_session"] = user.session_id
            if reason and reason.strip():
                session.info["reason"] = reason.strip()
            result = action(session, *args, **kw)
            session.commit()
            return result

    # --- people ---------------------------------------------------------------------------

    def authenticate(self, username: str, password: str) -> UserView | None:
        """The active user with this username and password, else None."""
        with self.sessions() as session:
            user = user_named(session, username)
            right = (
                user is not None
                and user.kind == "person"  # machines act through tokens only
                and check_password_of(session, user, password, "login")
            )
            session.commit()  # a wrong password counts towards the lock-out
            if user is None or not user.active or not right:
                log.info("control room login refused for %r", username)
                return None
            return _user_view(user)

    def user(self, user_id: int) -> UserView | None:
        """The active user with this id, else None."""
        with self.sessions() as session:
            user = session.get(User, user_id)
            if user is None or not user.active or user.kind != "person":
                return None
            return _user_view(user)

    def users(self) -> list[UserView]:
        with self.sessions() as session:
            rows = session.scalars(
                select(User).where(User.active, User.kind == "person").order_by(User.username)
            )
            return [_user_view(u) for u in rows]

    # --- live -----------------------------------------------------------------------------

    def overview(self, now: datetime | None = None) -> Overview:
        """Every site with its gateways and zones' latest conditions, and the counts."""
        now = now or utcnow()
        with self.sessions() as session:
            # Plain rows, not ORM objects: this runs every few seconds over every zone.
            sites, zones, sensor_count = self._cached(
                INVENTORY_TTL_S, "inventory", _inventory, session
            )
            gateways = session.execute(
                select(
                    Gateway.id,
                    Gateway.site_id,
                    Gateway.state,
                    Gateway.last_seen,
                    Gateway.buffer_depth,
                    Gateway.oldest_unsent_age_s,
                ).order_by(Gateway.id)
            ).all()
            latest = session.execute(
                select(
                    Sensor.zone_id,
                    LatestReading.quantity,
                    LatestReading.value,
                    LatestReading.unit,
                    LatestReading.quality,
                    LatestReading.taken_at,
                )
                .join(LatestReading, LatestReading.sensor_id == Sensor.id)
                .where(LatestReading.quality.in_(DISPLAYED))
            ).all()
            excursions = _open_excursions(session)
            frozen = session.scalar(select(func.count()).where(Batch.status == "held")) or 0
            expiry, expiry_by_site = self._cached(
                EXPIRY_TTL_S, "expiry", _expiry_counts, session, now
            )

        # (zone, quantity) -> [(value, unit, quality, taken_at)], unpacked once per row
        values: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
        for zone_id, quantity, value, unit, quality, taken_at in latest:
            values[(zone_id, quantity)].append((value, unit, quality, taken_at))
        open_count = Counter(zone_id for zone_id, _ in excursions or ())

        def measure(zone_id: str, quantity: str) -> Measurement | None:
            rows = [r for r in values.get((zone_id, quantity), ()) if r[0] is not None]
            if not rows:
                return None
            numbers = [r[0] for r in rows]
            return Measurement(min(numbers), max(numbers), rows[0][1], max(r[3] for r in rows))

        levels: dict[str, set[str]] = defaultdict(set)
        for zone_id, level in excursions or ():
            levels[zone_id].add(level)
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
                    sensors=sensor_count.get(zone.id, 0),
                    state=zone_state(zone, temperature, now, levels[zone.id]),
                    calibration_overdue=any(
                        r[2] == "calibration_overdue"
                        for q in ("temperature", "humidity")
                        for r in values.get((zone.id, q), [])
                    ),
                    open_excursions=open_count[zone.id],
                )
            )
        gateways_by_site: dict[str, list[GatewayNow]] = defaultdict(list)
        for gw in gateways:
            gateways_by_site[gw.site_id].append(
                GatewayNow(
                    gw.id,
                    gateway_state(gw, now),
                    gw.last_seen,
                    gw.buffer_depth,
                    gw.oldest_unsent_age_s,
                )
            )
        return Overview(
            at=now,
            sites=[
                SiteNow(
                    site.id,
                    site.name,
                    site.kind,
                    site.timezone,
                    gateways_by_site[site.id],
                    zones_by_site[site.id],
                )
                for site in sites
            ],
            counts=Counts(
                open_excursions=None if excursions is None else len(excursions),
                frozen_batches=frozen,
                expiry=expiry,
                expiry_by_site=expiry_by_site,
            ),
        )

    def site_timezones(self) -> dict[str, str]:
        """Site id -> IANA time zone, for showing times in site-local time."""
        with self.sessions() as session:
            return dict(session.execute(select(Site.id, Site.timezone)).all())

    def zones(self) -> list[tuple[str, str, str]]:
        """(zone id, "site / zone" label, site time zone) for pickers."""
        with self.sessions() as session:
            rows = session.execute(
                select(Zone.id, Site.name, Zone.name, Site.timezone)
                .join(Site, Site.id == Zone.site_id)
                .order_by(Site.name, Zone.name)
            ).all()
        return [(z, f"{s} / {n}", tz) for z, s, n, tz in rows]


def _inventory(session: Session) -> tuple[list[Any], list[Any], dict[str, int]]:
    """Sites, zones and sensors per zone: what the gateways announced."""
    sites = session.execute(
        select(Site.id, Site.name, Site.kind, Site.timezone).order_by(Site.kind.desc(), Site.name)
    ).all()
    zones = session.execute(
        select(Zone.id, Zone.site_id, Zone.name, Zone.kind, Zone.low, Zone.high).order_by(Zone.name)
    ).all()
    sensors = dict(
        session.execute(select(Sensor.zone_id, func.count()).group_by(Sensor.zone_id)).all()
    )
    return list(sites), list(zones), sensors


def _open_excursions(session: Session) -> list[tuple[str, str]] | None:
    """(zone id, level) of every open excursion that is not suppressed."""
    excursion = Excursion
    return list(
        session.execute(
            select(excursion.zone_id, excursion.level).where(
                excursion.state == "open", excursion.suppressed_reason.is_(None)
            )
        ).all()
    )


def _expiry_counts(
    session: Session, now: datetime
) -> tuple[dict[str, int] | None, dict[str, dict[str, int]]]:
    """Batches per expiry tier, overall and per site."""
    from cloud.views import expiry as expiry_views  # it reads this module's helpers

    return expiry_views.tier_counts(expiry_views.expiry.expiry_tiers(session, now))
