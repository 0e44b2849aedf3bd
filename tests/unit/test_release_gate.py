"""The release gate lists every reason that applies."""

from __future__ import annotations

from datetime import date

from cloud.domain.release_gate import (
    Destination,
    GateBatch,
    Load,
    reasons,
    temperature_class,
)

TODAY = date(2026, 3, 2)


def batch(ident: int = 1, **changes: object) -> GateBatch:
    values: dict = {
        "id": ident,
        "lot": f"L{ident}",
        "status": "available",
        "expires_on": date(2027, 1, 1),
        "temperature_class": "2-8C",
    }
    values.update(changes)
    return GateBatch(**values)


def test_a_clean_load_may_go() -> None:
    load = Load(
        batches=(batch(),),
        today=TODAY,
        from_zones=("a-cold",),
        open_excursions=(("b-cold", 4, "high"),),  # another zone's trouble
        destination=Destination(site_id="wh-b", approved=frozenset({"2-8C"})),
    )
    assert reasons(load) == []


def test_every_reason_at_once() -> None:
    load = Load(
        batches=(
            batch(1, status="held", expires_on=date(2026, 3, 1), recalled=True),
            batch(2, expires_on=date(2026, 3, 20)),
            batch(3, status="rejected"),
        ),
        today=TODAY,
        delivery=date(2026, 3, 5),
        min_shelf_life_days={1: 30, 2: 30, 3: 30},
        from_zones=("a-cold",),
        open_excursions=(("a-cold", 7, "high"),),
        destination=Destination(site_id="st-marys", approved=frozenset({"15-25C"})),
    )
    got = {(r.code, r.subject) for r in reasons(load)}
    assert got == {
        ("expired", "L1"),
        ("held", "L1"),
        ("recalled", "L1"),
        ("shelf_life", "L1"),
        ("shelf_life", "L2"),
        ("rejected", "L3"),
        ("open_excursion", "a-cold"),
        ("destination", "L1"),
        ("destination", "L2"),
        ("destination", "L3"),
    }
    text = {r.detail for r in reasons(load)}
    assert "batch L2 has 15 days of shelf life left at delivery, the order needs 30" in text
    assert "zone a-cold it is leaving has an open high excursion (7)" in text
    assert "site st-marys is not approved for 2-8C products (batch L3)" in text


def test_a_site_without_an_approval_list_is_not_restricted() -> None:
    load = Load(
        batches=(batch(),), today=TODAY, destination=Destination(site_id="x", approved=None)
    )
    assert reasons(load) == []
    none = Load(
        batches=(batch(),), today=TODAY, destination=Destination(site_id="x", approved=frozenset())
    )
    assert [r.code for r in reasons(none)] == ["destination"]


def test_temperature_classes() -> None:
    assert temperature_class(-25, -15) == "frozen"
    assert temperature_class(2, 8) == "2-8C"
    assert temperature_class(15, 25) == "15-25C"
    assert temperature_class(None, None) == "uncontrolled"
