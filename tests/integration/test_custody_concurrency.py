"""Custody under concurrent writers: API scans and EPCIS captures for the same items at the
same moment, through a real threaded HTTP server, never leave an item in two places.

Every path that rebuilds custody takes one lock (`serialise_custody`), and a partial unique
index makes a second open interval of an item impossible to store."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.serving import make_server

from cloud.adapters.orm.traceability import CustodyInterval, Item
from edge.gs1 import decode_epc
from tests.integration.api_support import Api, at, epc, running_api
from tests.integration.test_api import scan_of
from tests.integration.test_epcis_store import observed, partner_document

pytestmark = pytest.mark.integration
WRITERS = 8
ROUNDS = 5


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    with running_api(pg_url) as running:
        yield running


@pytest.fixture
def served(api: Api) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def at_once(
    calls: list[tuple[str, dict[str, Any]]], headers: dict[str, str]
) -> list[tuple[int, str]]:
    """Every call from a thread of its own, released together."""
    start = threading.Barrier(len(calls))
    answers: list[tuple[int, str]] = [(0, "")] * len(calls)

    def call(n: int) -> None:
        start.wait(10)
        answers[n] = post(*calls[n], headers)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return answers


def open_intervals(api: Api) -> dict[int, int]:
    api.db.expire_all()
    query = (
        select(CustodyInterval.item_id, func.count())
        .where(CustodyInterval.ended_at.is_(None))
        .group_by(CustodyInterval.item_id)
    )
    return {item: n for item, n in api.db.execute(query)}


def test_concurrent_scans_and_captures_leave_one_open_interval_per_item(
    api: Api, served: str
) -> None:
    items = [1, 2, 3]
    for round_ in range(ROUNDS):
        minutes = 10 * (round_ + 1)
        calls: list[tuple[str, dict[str, Any]]] = []
        for writer in range(WRITERS):
            door = ("a-cold-door", "b-cold-door")[writer % 2]
            if writer % 4 < 2:  # half scan, half capture EPCIS events
                serial = items[writer % len(items)]
                calls.append(
                    (
                        f"{served}/api/scans",
                        {
                            "data": scan_of(serial),
                            "read_point_id": door,
                            "scanned_at": at(minutes).isoformat(),
                        },
                    )
                )
            else:
                uris = [decode_epc(epc(n)).pure_identity_uri for n in items]
                event = observed(
                    f"urn:uuid:{uuid.uuid4()}", uris, f"urn:coldchain:readpoint:{door}", minutes
                )
                calls.append((f"{served}/api/epcis/events", partner_document(event)))
        answers = at_once(calls, api.as_("operator"))
        assert [status for status, _ in answers if status not in (200, 201)] == [], answers
        placed = open_intervals(api)
        assert placed and all(n == 1 for n in placed.values()), (round_, placed)
        ids = set(api.db.scalars(select(Item.id).where(Item.serial.in_(["1", "2", "3"]))))
        assert ids <= set(placed), (ids, placed)


def test_a_second_open_interval_of_an_item_cannot_be_stored(api: Api) -> None:
    item = api.db.scalars(select(Item).where(Item.serial == "1")).one()
    for _ in range(2):
        api.db.add(
            CustodyInterval(item_id=item.id, zone_id="a-cold", started_at=at(0), basis="observed")
        )
    with pytest.raises(IntegrityError, match="custody_one_open_per_item"):
        api.db.flush()
    api.db.rollback()
