"""Custody derivation: last known location, missed reads on trucks, pallets, late backlogs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.domain.custody import (
    Basis,
    CustodyInterval,
    Pack,
    Place,
    Sighting,
    Source,
    Unpack,
    containment,
    derive_custody,
    item_key,
    unit_key,
)

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
A_COLD = Place("a-cold", "wh-a")
A_DOCK = Place("a-dock", "wh-a")
A_AMBIENT = Place("a-ambient", "wh-a")
TRUCK_7 = Place("t7-reefer", "truck-7", truck=True)
TRUCK_8 = Place("t8-reefer", "truck-8", truck=True)
B_COLD = Place("b-cold", "wh-b")
B_DOCK = Place("b-dock", "wh-b")
PLACES = (A_COLD, A_DOCK, A_AMBIENT, TRUCK_7, TRUCK_8, B_COLD, B_DOCK)
STEPS = ("receiving", "storing", "picking", "loading", "shipping", "unloading")

VIAL = item_key("09506000134352", "1001")
VIAL_2 = item_key("09506000134352", "1002")
PALLET = unit_key("106141412345678908")
CASE = unit_key("106141412345678915")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def seen(subject: str, place: Place, step: str, minutes: float, **kw: object) -> Sighting:
    return Sighting(subject, place, step, at(minutes), **kw)  # type: ignore[arg-type]


def spans(intervals: tuple[CustodyInterval, ...]) -> list[tuple[str, float, float | None, str]]:
    """Intervals as (zone, start, end, basis) in minutes after T0, for readable asserts."""

    def minutes(t: datetime | None) -> float | None:
        return None if t is None else (t - T0) / timedelta(minutes=1)

    return [(i.zone, minutes(i.start), minutes(i.end), i.basis.value) for i in intervals]


# --- examples -----------------------------------------------------------------------------


def test_last_known_location_holds_until_the_next_sighting() -> None:
    events = [
        seen(VIAL, A_COLD, "receiving", 0),
        seen(VIAL, A_COLD, "storing", 30),
        seen(VIAL, A_AMBIENT, "picking", 60),
    ]
    assert spans(derive_custody(events)[VIAL]) == [
        ("a-cold", 0, 60, "observed"),
        ("a-ambient", 60, None, "observed"),
    ]


def test_loaded_at_the_dock_and_next_seen_on_the_truck_was_on_the_truck_since_loading() -> None:
    events = [
        seen(VIAL, A_COLD, "receiving", 0),
        seen(VIAL, A_DOCK, "loading", 60, direction="out"),
        # the truck's own door reader at the destination; nothing in between was read
        seen(VIAL, TRUCK_7, "unloading", 300),
        seen(VIAL, B_COLD, "receiving", 310),
    ]
    assert spans(derive_custody(events)[VIAL]) == [
        ("a-cold", 0, 60, "observed"),
        ("a-dock", 60, 60, "observed"),
        ("t7-reefer", 60, 300, "inferred"),
        ("t7-reefer", 300, 310, "observed"),
        ("b-cold", 310, None, "observed"),
    ]


def test_seen_in_the_truck_zone_then_at_the_destination_was_on_the_truck_in_between() -> None:
    events = [
        seen(VIAL, A_COLD, "receiving", 0),
        seen(VIAL, TRUCK_7, "loading", 60),
        seen(VIAL, B_COLD, "receiving", 600),
    ]
    assert spans(derive_custody(events)[VIAL]) == [
        ("a-cold", 0, 60, "observed"),
        ("t7-reefer", 60, 600, "observed"),
        ("b-cold", 600, None, "observed"),
    ]


def test_a_loading_record_names_the_truck_the_dock_read_could_not() -> None:
    events = [
        seen(VIAL, A_COLD, "receiving", 0),
        seen(VIAL, A_DOCK, "loading", 60),
        seen(VIAL, TRUCK_7, "loading", 75, source=Source.RECORD),
        seen(VIAL, B_COLD, "receiving", 600),
    ]
    assert spans(derive_custody(events)[VIAL])[2:] == [
        ("t7-reefer", 60, 75, "inferred"),
        ("t7-reefer", 75, 600, "observed"),
        ("b-cold", 600, None, "observed"),
    ]


def test_no_truck_known_leaves_a_gap_instead_of_a_guess() -> None:
    events = [seen(VIAL, A_COLD, "storing", 0), seen(VIAL, A_DOCK, "shipping", 60)]
    assert spans(derive_custody(events)[VIAL]) == [
        ("a-cold", 0, 60, "observed"),
        ("a-dock", 60, 60, "observed"),
    ]
    events.append(seen(VIAL, B_COLD, "receiving", 500))
    assert spans(derive_custody(events)[VIAL])[-1:] == [("b-cold", 500, None, "observed")]


def test_a_load_undone_keeps_the_item_at_the_site() -> None:
    events = [
        seen(VIAL, A_DOCK, "loading", 0),
        seen(VIAL, A_COLD, "storing", 20),
        seen(VIAL, A_DOCK, "loading", 40, direction="in"),  # carried back in through the door
    ]
    assert spans(derive_custody(events)[VIAL]) == [
        ("a-dock", 0, 20, "observed"),
        ("a-cold", 20, 40, "observed"),
        ("a-dock", 40, None, "observed"),
    ]


def test_a_pallet_moves_its_contents_until_they_are_unpacked() -> None:
    events = [
        seen(VIAL, A_COLD, "storing", 0),
        seen(VIAL_2, A_COLD, "storing", 0),
        seen(PALLET, A_AMBIENT, "storing", 5),  # before packing: moves nothing
        Pack(PALLET, VIAL, at(10)),
        Pack(PALLET, VIAL_2, at(10)),
        seen(PALLET, A_DOCK, "loading", 60),
        seen(PALLET, TRUCK_7, "unloading", 400),
        seen(PALLET, B_DOCK, "receiving", 410),
        Unpack(PALLET, VIAL, at(420)),
        Unpack(PALLET, VIAL_2, at(420)),
        seen(PALLET, B_COLD, "storing", 425),  # after unpacking: moves nothing
        seen(VIAL, B_COLD, "storing", 430),
    ]
    timelines = derive_custody(events)
    assert spans(timelines[VIAL]) == [
        ("a-cold", 0, 60, "observed"),
        ("a-dock", 60, 60, "via_parent"),
        ("t7-reefer", 60, 400, "inferred"),
        ("t7-reefer", 400, 410, "via_parent"),
        ("b-dock", 410, 430, "via_parent"),
        ("b-cold", 430, None, "observed"),
    ]
    assert spans(timelines[VIAL_2])[-1] == ("b-dock", 410, None, "via_parent")
    assert spans(timelines[PALLET])[0] == ("a-ambient", 5, 60, "observed")


def test_nested_units_move_items_at_every_depth() -> None:
    events = [
        Pack(CASE, VIAL, at(0)),
        Pack(PALLET, CASE, at(5)),
        seen(PALLET, TRUCK_8, "loading", 10),
        Unpack(PALLET, CASE, at(100)),
        seen(PALLET, B_DOCK, "receiving", 110),
        seen(CASE, B_COLD, "storing", 120),
    ]
    assert spans(derive_custody(events, [VIAL])[VIAL]) == [
        ("t8-reefer", 10, 120, "via_parent"),
        ("b-cold", 120, None, "via_parent"),
    ]


def test_a_move_between_units_at_one_instant_is_an_unpack_then_a_pack() -> None:
    other = unit_key("106141412345678922")
    spans_of = containment(
        [Pack(PALLET, VIAL, at(0)), Pack(other, VIAL, at(50)), Unpack(PALLET, VIAL, at(50))]
    )
    assert spans_of[VIAL] == [(PALLET, at(0), at(50)), (other, at(50), None)]


def test_a_packing_cycle_terminates() -> None:
    events = [Pack(PALLET, CASE, at(0)), Pack(CASE, PALLET, at(0)), seen(CASE, A_COLD, "x", 1)]
    assert spans(derive_custody(events)[PALLET]) == [("a-cold", 1, None, "via_parent")]


def test_a_late_truck_backlog_gives_the_timeline_of_in_order_arrival() -> None:
    warehouse = [seen(VIAL, A_COLD, "storing", 0), seen(VIAL, A_DOCK, "loading", 60)]
    truck_backlog = [seen(VIAL, TRUCK_7, "storing", m) for m in (90, 180, 270)]
    destination = [seen(VIAL, B_COLD, "receiving", 300)]
    in_order = derive_custody(warehouse + truck_backlog + destination)
    before_backlog = derive_custody(warehouse + destination)
    late = derive_custody(warehouse + destination + truck_backlog)
    assert late == in_order
    assert spans(before_backlog[VIAL])[-1] == ("b-cold", 300, None, "observed")
    assert ("t7-reefer", 60, 90, "inferred") in spans(in_order[VIAL])


def test_only_the_subjects_asked_for_are_derived() -> None:
    events = [seen(VIAL, A_COLD, "storing", 0), seen(VIAL_2, A_COLD, "storing", 0)]
    assert list(derive_custody(events, [VIAL_2, "(01)00000000000000(21)never-seen"])) == [
        "(01)00000000000000(21)never-seen",
        VIAL_2,
    ]


# --- properties ---------------------------------------------------------------------------

SUBJECTS = [item_key("09506000134352", str(n)) for n in range(3)] + [PALLET, CASE]
ITEMS = SUBJECTS[:3]
minutes_ = st.integers(min_value=0, max_value=240)

sightings = st.builds(
    seen,
    st.sampled_from(SUBJECTS),
    st.sampled_from(PLACES),
    st.sampled_from(STEPS),
    minutes_,
    source=st.sampled_from(list(Source)),
    direction=st.sampled_from([None, "in", "out"]),
)
item_sightings = st.builds(
    seen, st.sampled_from(ITEMS), st.sampled_from(PLACES), st.sampled_from(STEPS), minutes_
)
packings = st.builds(
    lambda kind, parent, child, m: kind(parent, child, at(m)),
    st.sampled_from([Pack, Unpack]),
    st.sampled_from([PALLET, CASE]),
    st.sampled_from(SUBJECTS),
    minutes_,
)
event_lists = st.lists(st.one_of(sightings, packings), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.data(), event_lists)
def test_any_order_of_arrival_and_any_repeats_give_the_same_timelines(data, events) -> None:
    shuffled = data.draw(st.permutations(events))
    repeated = shuffled + data.draw(
        st.lists(st.sampled_from(events), max_size=5) if events else st.just([])
    )
    assert derive_custody(shuffled) == derive_custody(events) == derive_custody(repeated)


@settings(max_examples=300, deadline=None)
@given(event_lists)
def test_intervals_of_one_subject_never_overlap_and_run_forward(events) -> None:
    for intervals in derive_custody(events).values():
        for index, interval in enumerate(intervals):
            assert interval.end is None or interval.start <= interval.end
            for later in intervals[index + 1 :]:
                assert not interval.overlaps(later), (interval, later)
                assert interval.start <= later.start
        assert all(i.end is not None for i in intervals[:-1])


@settings(max_examples=300, deadline=None)
@given(event_lists)
def test_every_sighting_lies_inside_an_interval_in_its_zone(events) -> None:
    timelines = derive_custody(events)
    for s in events:
        if isinstance(s, Sighting):
            assert any(i.zone == s.place.zone and i.covers(s.at) for i in timelines[s.subject]), s


@settings(max_examples=300, deadline=None)
@given(st.lists(item_sightings, max_size=30))
def test_inferred_truck_intervals_lie_only_between_a_departure_and_the_next_sighting(
    events,
) -> None:
    for subject, intervals in derive_custody(events).items():
        own = [s for s in events if s.subject == subject]
        for interval in intervals:
            if interval.basis is not Basis.INFERRED:
                continue
            assert interval.end is not None and interval.start < interval.end
            assert any(s.departs and s.at == interval.start for s in own)
            arrival = [s for s in own if s.at == interval.end and s.place.zone == interval.zone]
            assert arrival and all(s.place.truck for s in arrival)
            assert not any(interval.start < s.at < interval.end for s in own)


@settings(max_examples=200, deadline=None)
@given(st.lists(item_sightings, max_size=30))
def test_without_packing_nothing_is_via_parent(events) -> None:
    timelines = derive_custody(events)
    assert all(i.basis is not Basis.VIA_PARENT for t in timelines.values() for i in t)


@settings(max_examples=200, deadline=None)
@given(event_lists)
def test_deriving_some_subjects_gives_what_deriving_all_gives_them(events) -> None:
    everything = derive_custody(events)
    for subject in everything:
        assert derive_custody(events, [subject]) == {subject: everything[subject]}
