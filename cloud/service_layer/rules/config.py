"""The zones' set-up an evaluation needs (sensor zones, profiles, suppression windows, sites,
channels), read from the database and kept between evaluations by the ingest worker."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.adapters.orm.alerting import NotificationChannel
from cloud.adapters.orm.quality import SuppressionWindow
from cloud.adapters.orm.readings import Sensor, Zone
from cloud.domain.excursions import Suppression
from cloud.domain.monitoring import Profile
from cloud.service_layer.notifications import active_channels
from cloud.service_layer.rules.profiles import zone_profiles


def _suppressions(session: Session, zone_ids: set[str], since: datetime) -> dict[str, list]:
    found: dict[str, list[Suppression]] = defaultdict(list)
    for w in session.scalars(
        select(SuppressionWindow).where(
            SuppressionWindow.zone_id.in_(zone_ids), SuppressionWindow.ended_at >= since
        )
    ):
        found[w.zone_id].append(
            Suppression(
                started_at=w.started_at, ended_at=w.ended_at, reason=w.reason, grace_min=w.grace_min
            )
        )
    return found


class RulesConfig:
    """Sensor zones, zone profiles and suppression windows, kept between evaluations.

    The ingest worker evaluates every batch with the same few zones; reading their set-up
    each time cost more statements than the evaluation itself. Each entry is read again
    after `ttl_s`, so a window added elsewhere applies within that time; a zone whose limits
    or profiles changed has its kept profiles dropped with its states at once (decision
    0024); `invalidate` drops everything at once (the worker calls it when a gateway's status
    changed sensors or zones). With ttl_s=0 nothing is kept. Used by one thread, except
    `invalidate`, which any thread may call: the owner drops the entries on its next call.
    """

    def __init__(self, ttl_s: float = 2.0):
        self.ttl_s = ttl_s
        self._zone_of: dict[str, tuple[str | None, float]] = {}
        self._owner_of: dict[str, tuple[str | None, float]] = {}
        self._profiles: dict[str, tuple[tuple[Profile, ...], float]] = {}
        # zone -> (windows ending at or after `since`, since, read at)
        self._windows: dict[str, tuple[list[Suppression], datetime, float]] = {}
        # (zone, profile) -> (version, detector state) this worker committed last
        self._states: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self._sites: dict[str, tuple[str | None, float]] = {}  # zone -> its site
        self._channels: tuple[list[NotificationChannel], float] | None = None
        self.profiles_read: set[str] = set()  # zones whose profiles the last call read afresh
        self._generation = self._dropped = 0

    def invalidate(self) -> None:
        self._generation += 1

    def _drop_if_invalidated(self) -> None:
        if self._dropped != self._generation:
            self._dropped = self._generation
            self._zone_of.clear()
            self._owner_of.clear()
            self._profiles.clear()
            self._windows.clear()
            self._states.clear()
            self._sites.clear()
            self._channels = None

    def _stale(self, keys: set[str], cache: dict[str, Any]) -> set[str]:
        """Keys to read again: those missing or expired and, if there are any, every kept
        one past half its lifetime too, so the entries expire together (one read every
        `ttl_s`, not one for each batch that brings an expired zone)."""
        self._drop_if_invalidated()
        now = time.monotonic()
        stale = {k for k in keys if k not in cache or cache[k][-1] <= now - self.ttl_s}
        if stale:
            stale.update(k for k, v in cache.items() if v[-1] <= now - self.ttl_s / 2)
        return stale

    def _mapped(
        self, session: Session, keys: set[str], cache: dict[str, Any], key: Any, value: Any
    ) -> dict[str, str]:
        """`value` of each of `keys` (the `key` column), from the cache or read again."""
        stale = self._stale(keys, cache)
        if stale:
            now = time.monotonic()
            found: dict[str, str | None] = dict(
                session.execute(select(key, value).where(key.in_(stale))).all()
            )
            for k in stale:
                cache[k] = (found.get(k), now)
        mapped = {k: cache[k][0] for k in keys}
        return {k: v for k, v in mapped.items() if v is not None}

    def zone_of(self, session: Session, sensor_ids: set[str]) -> dict[str, str]:
        return self._mapped(session, sensor_ids, self._zone_of, Sensor.id, Sensor.zone_id)

    def owners(self, session: Session, sensor_ids: set[str]) -> dict[str, str]:
        """The gateway each sensor is registered to: only its readings count."""
        return self._mapped(session, sensor_ids, self._owner_of, Sensor.id, Sensor.gateway_id)

    def sites(self, session: Session, zones: set[str]) -> dict[str, str]:
        """The site of each zone (alerts name it)."""
        return self._mapped(session, zones, self._sites, Zone.id, Zone.site_id)

    def channels(self, session: Session) -> list[NotificationChannel]:
        """The active notification channels (read with the session, used after it)."""
        self._drop_if_invalidated()
        if self._channels is None or self._channels[1] <= time.monotonic() - self.ttl_s:
            self._channels = (active_channels(session), time.monotonic())
        return self._channels[0]

    def profiles(self, session: Session, zones: set[str]) -> dict[str, tuple[Profile, ...]]:
        stale = self._stale(zones, self._profiles)
        self.profiles_read = stale & zones
        if stale:
            now = time.monotonic()
            for zone, found in zone_profiles(session, stale).items():
                self._profiles[zone] = (found, now)
        return {z: self._profiles[z][0] for z in zones}

    def renew_profiles(self, session: Session, zones: set[str]) -> dict[str, tuple[Profile, ...]]:
        """The zones' profiles read again now, whatever their age: the evaluation met a
        zone whose detector states this worker did not keep, so its set-up may have changed
        since it was read (decision 0024)."""
        now = time.monotonic()
        found = zone_profiles(session, zones)
        for zone in zones:
            self._profiles[zone] = (found[zone], now)
        self.profiles_read |= zones
        return found

    def suppressions(
        self, session: Session, zones: set[str], since: datetime
    ) -> dict[str, list[Suppression]]:
        self._drop_if_invalidated()
        fresh_after = time.monotonic() - self.ttl_s
        stale = {
            z
            for z in zones
            if z not in self._windows
            or self._windows[z][2] <= fresh_after
            or self._windows[z][1] > since
        }
        if stale:  # with every kept zone past half its lifetime, as _stale does
            now = time.monotonic()
            stale.update(z for z, kept in self._windows.items() if kept[2] <= now - self.ttl_s / 2)
            found = _suppressions(session, stale, since)
            for zone in stale:
                self._windows[zone] = (found.get(zone, []), since, now)
        result: dict[str, list[Suppression]] = defaultdict(list)
        for zone in zones:
            result[zone] = [w for w in self._windows[zone][0] if w.ended_at >= since]
        return result

    def kept_states(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, dict[str, Any]]]:
        """The detector states this worker committed last, of those keys it has."""
        self._drop_if_invalidated()
        return {k: self._states[k] for k in keys if k in self._states}

    def keep_states(self, states: dict[tuple[str, str], tuple[int, dict[str, Any]]]) -> None:
        """States just committed, with their versions (nothing is kept with ttl_s=0)."""
        if self.ttl_s > 0:
            self._states.update(states)

    def forget_states(self) -> None:
        """An evaluation was rolled back: the states it changed in place are not stored. The
        zones' profiles are read again with them: a state changed elsewhere may mean the
        zone's limits or assignments changed (`profiles.renew_set_up`)."""
        self._states.clear()
        self._profiles.clear()
