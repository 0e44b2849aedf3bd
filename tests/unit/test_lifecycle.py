"""Transfers and shipments: their steps, the errors for illegal ones, and what they move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.domain.custody import Basis, Place, Sighting, Source, derive_custody
from cloud.domain.lifecycle import (
    SHIPMENT_STEPS,
    TRANSFER_STEPS,
    Discrepancy,
    DiscrepancyKind,
    IllegalTransition,
    Shipment,
    ShipmentState,
    Transfer,
    TransferState,
)

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
TRUCK = Place("t7-reefer", "truck-7", truck=True)
OTHER_TRUCK = Place("t8-reefer", "truck-8", truck=True)
A_DOCK = Place("a-dock", "wh-a")
B_COLD = Place("b-cold", "wh-b")
C_COLD = Place("c-cold", "wh-c")
PHARMACY = Place("st-marys-pharmacy", "st-marys")
ITEMS = ("vial-1", "vial-2", "vial-3")


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> ManualClock:
        self.now += timedelta(minutes=minutes)
        return self


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def planned(clock: ManualClock) -> Transfer:
    return Transfer.plan("TR-1", "wh-a", "wh-b", ITEMS, clock)


def in_transit(clock: ManualClock) -> Transfer:
    transfer = planned(clock).load(ITEMS, TRUCK, clock.advance(30))
    return transfer.depart(clock.advance(10))


# --- transfers ----------------------------------------------------------------------------


def test_a_transfer_goes_planned_loaded_in_transit_received(clock: ManualClock) -> None:
    transfer = planned(clock)
    transfer = transfer.load(ITEMS[:2], TRUCK, clock.advance(20))
    transfer = transfer.load(ITEMS[2:], TRUCK, clock.advance(5))  # a second pallet
    transfer = transfer.depart(clock.advance(10))
    transfer = transfer.receive(ITEMS, B_COLD, clock.advance(300))
    assert transfer.state == TransferState.RECEIVED
    assert [(c.state, c.at) for c in transfer.history] == [
        ("planned", T0),
        ("loaded", T0 + timedelta(minutes=20)),
        ("loaded", T0 + timedelta(minutes=25)),
        ("in_transit", T0 + timedelta(minutes=35)),
        ("received", T0 + timedelta(minutes=335)),
    ]
    assert transfer.loaded == frozenset(ITEMS)
    assert transfer.discrepancies == ()


def test_loading_puts_items_on_the_truck_and_receiving_puts_them_in_the_warehouse(
    clock: ManualClock,
) -> None:
    transfer = in_transit(clock).receive(ITEMS, B_COLD, clock.advance(300))
    assert [(r.subject, r.place, r.step, r.source) for r in transfer.records[:3]] == [
        (item, TRUCK, "loading", Source.RECORD) for item in ITEMS
    ]
    assert {r.place for r in transfer.records[3:]} == {B_COLD}
    timeline = derive_custody(transfer.records)["vial-1"]
    assert [(i.zone, i.basis) for i in timeline] == [
        ("t7-reefer", Basis.OBSERVED),
        ("b-cold", Basis.OBSERVED),
    ]


def test_records_and_a_dock_read_together_infer_the_truck_leg(clock: ManualClock) -> None:
    dock_read = Sighting("vial-1", A_DOCK, "loading", T0 + timedelta(minutes=25))
    transfer = in_transit(clock).receive(ITEMS, B_COLD, clock.advance(300))
    timeline = derive_custody([dock_read, *transfer.records])["vial-1"]
    assert [(i.zone, i.basis) for i in timeline] == [
        ("a-dock", Basis.OBSERVED),
        ("t7-reefer", Basis.INFERRED),
        ("t7-reefer", Basis.OBSERVED),
        ("b-cold", Basis.OBSERVED),
    ]


def test_what_arrives_differently_is_a_discrepancy_per_item(clock: ManualClock) -> None:
    transfer = in_transit(clock)
    assert transfer.discrepancies == ()
    received = transfer.receive(["vial-1", "vial-3", "stray-9"], B_COLD, clock.advance(300))
    assert received.discrepancies == (
        Discrepancy("stray-9", DiscrepancyKind.UNEXPECTED),
        Discrepancy("vial-2", DiscrepancyKind.MISSING),
    )
    # the missing vial stays on the truck as far as custody knows; the stray is in the room
    timelines = derive_custody(received.records)
    assert timelines["vial-2"][-1].zone == "t7-reefer" and timelines["vial-2"][-1].end is None
    assert timelines["stray-9"][-1].zone == "b-cold"


@pytest.mark.parametrize(
    ("steps", "attempt", "state"),
    [
        ((), "depart", "planned"),
        ((), "receive", "planned"),
        (("load",), "receive", "loaded"),
        (("load", "depart"), "load", "in_transit"),
        (("load", "depart"), "depart", "in_transit"),
        (("load", "depart", "receive"), "load", "received"),
        (("load", "depart", "receive"), "receive", "received"),
    ],
)
def test_an_illegal_transfer_step_names_the_state_and_the_step(
    clock: ManualClock, steps: tuple[str, ...], attempt: str, state: str
) -> None:
    transfer = planned(clock)
    calls = {
        "load": lambda t: t.load(ITEMS, TRUCK, clock.advance(10)),
        "depart": lambda t: t.depart(clock.advance(10)),
        "receive": lambda t: t.receive(ITEMS, B_COLD, clock.advance(10)),
    }
    for step in steps:
        transfer = calls[step](transfer)
    with pytest.raises(IllegalTransition, match=f"transfer TR-1 is {state}: cannot {attempt}"):
        calls[attempt](transfer)


def test_transfer_steps_check_what_they_are_given(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="origin and destination are both wh-a"):
        Transfer.plan("TR-2", "wh-a", "wh-a", ITEMS, clock)
    transfer = planned(clock)
    with pytest.raises(ValueError, match="zone a-dock is not a truck compartment"):
        transfer.load(ITEMS, A_DOCK, clock)
    with pytest.raises(ValueError, match="not planned: vial-9"):
        transfer.load(["vial-1", "vial-9"], TRUCK, clock)
    loaded = transfer.load(ITEMS[:1], TRUCK, clock)
    with pytest.raises(ValueError, match="loading on t7-reefer, not t8-reefer"):
        loaded.load(ITEMS[1:], OTHER_TRUCK, clock)
    moving = loaded.depart(clock)
    with pytest.raises(ValueError, match="received at wh-b, not c-cold"):
        moving.receive(ITEMS, C_COLD, clock)
    with pytest.raises(ValueError, match="received at wh-b, not t7-reefer"):
        moving.receive(ITEMS, TRUCK, clock)


def test_a_step_dated_before_the_last_one_is_refused(clock: ManualClock) -> None:
    transfer = planned(clock).load(ITEMS, TRUCK, clock.advance(60))
    with pytest.raises(ValueError, match="depart at 2026-03-02T06:30:00\\+00:00 is before"):
        transfer.depart(clock.advance(-30))


def test_steps_leave_the_earlier_object_untouched(clock: ManualClock) -> None:
    transfer = planned(clock)
    transfer.load(ITEMS, TRUCK, clock.advance(5))
    assert transfer.state == TransferState.PLANNED and transfer.records == ()


# --- shipments ----------------------------------------------------------------------------


def picked(clock: ManualClock) -> Shipment:
    return Shipment.pick("SH-1", "PO-77", "st-marys", ITEMS, clock)


def test_a_shipment_goes_picked_loaded_shipped_delivered(clock: ManualClock) -> None:
    shipment = picked(clock).load(TRUCK, clock.advance(15))
    shipment = shipment.ship(clock.advance(5))
    shipment = shipment.deliver(PHARMACY, clock.advance(120))
    assert shipment.state == ShipmentState.DELIVERED
    assert [c.state for c in shipment.history] == ["picked", "loaded", "shipped", "delivered"]
    timeline = derive_custody(shipment.records)["vial-2"]
    assert [(i.zone, i.start - T0) for i in timeline] == [
        ("t7-reefer", timedelta(minutes=15)),
        ("st-marys-pharmacy", timedelta(minutes=140)),
    ]


@pytest.mark.parametrize(
    ("steps", "attempt", "state"),
    [
        ((), "ship", "picked"),
        ((), "deliver", "picked"),
        (("load",), "load", "loaded"),
        (("load",), "deliver", "loaded"),
        (("load", "ship"), "load", "shipped"),
        (("load", "ship", "deliver"), "ship", "delivered"),
    ],
)
def test_an_illegal_shipment_step_names_the_state_and_the_step(
    clock: ManualClock, steps: tuple[str, ...], attempt: str, state: str
) -> None:
    shipment = picked(clock)
    calls = {
        "load": lambda s: s.load(TRUCK, clock),
        "ship": lambda s: s.ship(clock),
        "deliver": lambda s: s.deliver(PHARMACY, clock),
    }
    for step in steps:
        shipment = calls[step](shipment)
    with pytest.raises(IllegalTransition, match=f"shipment SH-1 is {state}: cannot {attempt}"):
        calls[attempt](shipment)


def test_shipment_steps_check_what_they_are_given(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="nothing picked"):
        Shipment.pick("SH-2", "PO-77", "st-marys", [], clock)
    with pytest.raises(ValueError, match="not a truck compartment"):
        picked(clock).load(B_COLD, clock)
    shipped = picked(clock).load(TRUCK, clock).ship(clock)
    with pytest.raises(ValueError, match="delivered to a truck"):
        shipped.deliver(OTHER_TRUCK, clock)


# --- any sequence of steps ----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted(TRANSFER_STEPS)), max_size=8))
def test_any_transfer_step_sequence_follows_the_table_or_raises(steps: list[str]) -> None:
    clock = ManualClock()
    transfer = planned(clock)
    for step in steps:
        clock.advance(1)
        allowed, target = TRANSFER_STEPS[step]
        before = transfer
        try:
            if step == "load":
                transfer = transfer.load(ITEMS, TRUCK, clock)
            elif step == "depart":
                transfer = transfer.depart(clock)
            else:
                transfer = transfer.receive(ITEMS, B_COLD, clock)
        except IllegalTransition as error:
            assert before.state not in allowed and error.state == before.state
            continue
        assert before.state in allowed and transfer.state == target
    times = [c.at for c in transfer.history]
    assert times == sorted(times) and transfer.history[-1].state == transfer.state


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted(SHIPMENT_STEPS)), max_size=6))
def test_any_shipment_step_sequence_follows_the_table_or_raises(steps: list[str]) -> None:
    clock = ManualClock()
    shipment = picked(clock)
    for step in steps:
        allowed, target = SHIPMENT_STEPS[step]
        before = shipment
        try:
            if step == "load":
                shipment = shipment.load(TRUCK, clock.advance(1))
            elif step == "ship":
                shipment = shipment.ship(clock.advance(1))
            else:
                shipment = shipment.deliver(PHARMACY, clock.advance(1))
        except IllegalTransition:
            assert before.state not in allowed
            continue
        assert before.state in allowed and shipment.state == target
