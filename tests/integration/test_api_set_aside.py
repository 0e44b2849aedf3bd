"""Admins list the readings set aside: quarantined by the rules, implausible in time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.adapters.orm.quality import QuarantinedReading
from cloud.adapters.orm.readings import ImplausibleReading
from tests.integration.api_support import Api, running_api

pytestmark = pytest.mark.integration
NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        yield running


def test_admins_list_quarantined_and_implausible_readings(api: Api) -> None:
    db = api.db
    for seq, gateway in ((1, "gw-a"), (2, "gw-a"), (1, "gw-b")):
        db.add(
            QuarantinedReading(
                gateway_id=gateway,
                seq=seq,
                sensor_id=f"{gateway}-t1",
                taken_at=NOW,
                received_at=NOW + timedelta(seconds=seq),
                worker_id="ingest-1",
                reason=f"evaluation failed: ValueError {seq}",
                quarantined_at=NOW + timedelta(minutes=seq),
            )
        )
    db.add(
        ImplausibleReading(
            gateway_id="gw-a",
            seq=7,
            sensor_id="gw-a-t1",
            quantity="temperature",
            value=5.0,
            unit="C",
            quality="ok",
            taken_at=datetime(1970, 1, 1, tzinfo=UTC),
            received_at=NOW,
            reason="taken_at 1970-01-01T00:00:00+00:00 is before the earliest plausible time",
        )
    )
    db.commit()
    admin = api.as_("admin")
    found = api.client.get("/api/quarantined-readings?gateway=gw-a", headers=admin).get_json()
    assert [(r["gateway_id"], r["seq"]) for r in found["items"]] == [("gw-a", 2), ("gw-a", 1)]
    assert found["items"][0]["reason"] == "evaluation failed: ValueError 2"
    paged = api.client.get("/api/quarantined-readings?limit=1", headers=admin).get_json()
    assert len(paged["items"]) == 1 and paged["next"]
    (odd,) = api.client.get("/api/implausible-readings", headers=admin).get_json()["items"]
    assert (odd["gateway_id"], odd["seq"], odd["value"]) == ("gw-a", 7, 5.0)
    assert odd["taken_at"].startswith("1970-01-01") and "earliest plausible" in odd["reason"]
    assert api.client.get("/api/implausible-readings", headers=api.as_("qa")).status_code == 403
    bad = api.client.get("/api/quarantined-readings?since=yesterday", headers=admin)
    assert bad.status_code == 400
