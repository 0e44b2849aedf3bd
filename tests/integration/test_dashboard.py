"""The overview page renders what ingest stored: values, limits, state by label and shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cloud.db import make_engine
from cloud.store import Batch, Store
from dashboard.app import create_app
from edge import wire


def seed(url: str) -> None:
    now = datetime.now(UTC)
    status = wire.StatusMessage(
        v=1,
        gateway="gw1",
        site="wh1",
        state="online",
        at=now,
        site_info=wire.SiteInfo(
            id="wh1", name="Leeds DC", kind="warehouse", timezone="Europe/London"
        ),
        zones=[
            wire.ZoneInfo(id="cold", name="Cold room 1", low=2, high=8),
            wire.ZoneInfo(id="amb", name="Ambient A", kind="ambient", low=15, high=25),
            wire.ZoneInfo(id="frz", name="Freezer", kind="freezer", low=-25, high=-15),
        ],
        sensors=[
            wire.SensorInfo(id="c1", zone="cold", model="XY-MD02", quantities=["temperature"]),
            wire.SensorInfo(id="c2", zone="cold", model="HMP4", quantities=["temperature"]),
            wire.SensorInfo(id="a1", zone="amb", model="RS-WS-N01", quantities=["temperature"]),
            wire.SensorInfo(id="f1", zone="frz", model="XY-MD02", quantities=["temperature"]),
        ],
    )
    batch = Batch()
    batch.statuses.append((status, now))

    def reading(seq: int, sensor: str, quantity: str, value: float, age_s: float) -> tuple:
        unit = "C" if quantity == "temperature" else "%RH"
        taken = now - timedelta(seconds=age_s)
        return ("gw1", seq, sensor, quantity, value, unit, "ok", taken, now)

    batch.readings = [
        reading(1, "c1", "temperature", 4.2, 5),
        reading(2, "c2", "temperature", 5.1, 4),
        reading(3, "c1", "humidity", 48.0, 5),
        reading(4, "a1", "temperature", 27.3, 3),  # above 25: out of range
        reading(5, "f1", "temperature", -20.0, 600),  # ten minutes old: no data
        reading(6, "c1", "temperature", 9.9, 900),  # older than seq 1: must not win
    ]
    engine = make_engine(url)
    Store(engine).write(batch)
    engine.dispose()


def test_overview_shows_every_zone_with_its_state(sqlite_url: str) -> None:
    seed(sqlite_url)
    app = create_app(sqlite_url, refresh_ms=1000)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    response = client.post(
        "/_dash-update-component",
        json={
            "output": "..overview-sites.children...overview-updated.children..",
            "outputs": [
                {"id": "overview-sites", "property": "children"},
                {"id": "overview-updated", "property": "children"},
            ],
            "inputs": [{"id": "overview-tick", "property": "n_intervals", "value": 1}],
            "changedPropIds": ["overview-tick.n_intervals"],
            "state": [],
        },
    )
    assert response.status_code == 200
    text = json.dumps(response.get_json())
    assert "Leeds DC" in text and "wh1" in text
    zones = {z: text.index(f"overview-zone-{z}") for z in ("cold", "amb", "frz")}
    assert "4.2 to 5.1 C" in text  # two probes in the cold room, newest values only
    assert "9.9" not in text
    assert "48 %RH" in text
    assert "27.3 C" in text and "OUT OF RANGE" in text and "\\u25b2" in text
    assert "NO DATA" in text and "\\u25a1" in text
    assert "limits 2 to 8 C" in text and "2 sensor(s)" in text
    assert "GMT" in text or "BST" in text  # site-local time
    assert "state-ok" in text and "state-out_of_range" in text and "state-no_data" in text
    assert len(zones) == 3
