"""The rules check themselves: a zone's stored excursions against a from-scratch replay of
its readings, nightly by the scheduler and on demand from the CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from cloud.adapters.orm.alerting import Alert
from cloud.adapters.orm.quality import Excursion
from cloud.entrypoints.scheduler import Scheduler, SchedulerConfig
from cloud.service_layer.rules.reconcile import reconcile, reconcile_zone
from tests.integration.test_rules import Plant, at

pytestmark = pytest.mark.integration


def _excursion_day(plant: Plant) -> None:
    """A-cold: 4 h in range, 90 min at 10-11 C, back in range; truck: in range throughout."""
    plant.ingest(plant.readings("a-cold", 0, [5.0] * 240 + [10.5] * 90 + [5.0] * 60))
    plant.ingest(plant.readings("t7-reefer", 0, [5.0] * 390))


def test_an_untouched_record_agrees_and_an_edited_one_is_reported(pg_url: str) -> None:
    plant = Plant(pg_url)
    _excursion_day(plant)
    with plant.sessions() as s:
        stored = s.scalars(select(Excursion).where(Excursion.zone_id == "a-cold")).all()
        assert stored and all(e.ended_at is not None for e in stored)
        assert all(r.agrees for r in reconcile(s, ["a-cold", "t7-reefer"], at(0)))

    # Someone (or a bug) shortened an excursion and deleted another: the replay says so.
    first = min(stored, key=lambda e: e.id)
    with plant.engine.begin() as conn:  # behind the ORM's back, as a raw write would be
        conn.execute(update(Excursion).where(Excursion.id == first.id).values(ended_at=at(250)))
    with plant.sessions(info={"actor": "test"}) as s:
        (report,) = reconcile(s, ["a-cold"], at(0), now=at(600))
        s.commit()
        assert not report.agrees
        assert any(
            d.what == "differs" and d.episode.started_at == first.started_at
            for d in report.differences
        )
        alerts = s.scalars(select(Alert).where(Alert.subject_kind == "zone")).all()
        assert len(alerts) == 1 and alerts[0].severity == "critical"
        assert "a-cold" in alerts[0].title and "differ" in alerts[0].title
        # The truck's zone still agrees: one zone's difference is its own.
        assert reconcile_zone(s, "t7-reefer", at(0)).agrees
    with pytest.raises(LookupError, match="nowhere"):
        with plant.sessions() as s:
            reconcile_zone(s, "nowhere", at(0))
    plant.engine.dispose()


def test_the_scheduler_reconciles_once_a_night(pg_url: str) -> None:
    plant = Plant(pg_url)
    _excursion_day(plant)
    with plant.engine.begin() as conn:
        conn.execute(update(Excursion).where(Excursion.zone_id == "a-cold").values(peak=99.0))
    night = at(24 * 60).replace(hour=1)
    clock = [night]
    scheduler = Scheduler(
        plant.sessions, SchedulerConfig(reconcile_hour_utc=2), clock=lambda: clock[0], senders={}
    )
    assert scheduler.tick().zones_reconciled == 0  # 01:00: not yet
    clock[0] = night + timedelta(hours=1, minutes=5)
    report = scheduler.tick()
    assert report.zones_reconciled == 3 and report.zones_differing == 1
    clock[0] += timedelta(minutes=30)
    assert scheduler.tick().zones_reconciled == 0  # once a night
    with plant.sessions() as s:
        titles = s.scalars(select(Alert.title).where(Alert.subject_kind == "zone")).all()
        assert len(titles) == 1 and "peak" in titles[0]
    plant.engine.dispose()


def test_the_cli_reconciles_a_zone_on_demand(pg_url: str) -> None:
    plant = Plant(pg_url)
    _excursion_day(plant)
    since = at(0).isoformat()
    command = [sys.executable, "-m", "cloud.entrypoints.cli", "reconcile", "--database-url"]
    ok = subprocess.run(
        [*command, pg_url, "--zone", "a-cold", "--since", since], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "a-cold since" in ok.stdout and "agrees" in ok.stdout
    with plant.engine.begin() as conn:
        conn.execute(update(Excursion).where(Excursion.zone_id == "a-cold").values(limit=99.0))
    differs = subprocess.run(
        [*command, pg_url, "--zone", "a-cold", "--since", since], capture_output=True, text=True
    )
    assert differs.returncode == 1 and "difference(s)" in differs.stdout
    unknown = subprocess.run(
        [*command, pg_url, "--zone", "nowhere"], capture_output=True, text=True
    )
    assert unknown.returncode != 0 and "nowhere" in unknown.stderr
    plant.engine.dispose()
