"""Transfers between warehouses and shipments to customers: their states and what they move.

Both are immutable: every step returns a new object with the state change (and its time,
from the clock passed in) appended to the history, and the custody records it implies:
loading puts items in the truck's zone, receiving or delivery puts them where they arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Self

from cloud.domain.custody import Place, Sighting, Source

Clock = Callable[[], datetime]


class IllegalTransition(ValueError):
    """A lifecycle step the current state does not allow."""

    def __init__(self, kind: str, ident: str, state: str, step: str, allowed: Iterable[str]):
        states = ", ".join(sorted(allowed))
        super().__init__(f"{kind} {ident} is {state}: cannot {step} (only from {states})")
        self.state, self.step = state, step


class TransferState(StrEnum):
    PLANNED = "planned"
    LOADED = "loaded"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"


class ShipmentState(StrEnum):
    PICKED = "picked"
    LOADED = "loaded"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


# step -> (states it may be taken from, state it leads to)
TRANSFER_STEPS: Mapping[str, tuple[frozenset[str], str]] = {
    "load": (frozenset({TransferState.PLANNED, TransferState.LOADED}), TransferState.LOADED),
    "depart": (frozenset({TransferState.LOADED}), TransferState.IN_TRANSIT),
    "receive": (frozenset({TransferState.IN_TRANSIT}), TransferState.RECEIVED),
}
SHIPMENT_STEPS: Mapping[str, tuple[frozenset[str], str]] = {
    "load": (frozenset({ShipmentState.PICKED}), ShipmentState.LOADED),
    "ship": (frozenset({ShipmentState.LOADED}), ShipmentState.SHIPPED),
    "deliver": (frozenset({ShipmentState.SHIPPED}), ShipmentState.DELIVERED),
}


@dataclass(frozen=True, slots=True)
class StateChange:
    state: str
    at: datetime


class DiscrepancyKind(StrEnum):
    MISSING = "missing"  # loaded, not received
    UNEXPECTED = "unexpected"  # received, not loaded


@dataclass(frozen=True, slots=True, order=True)
class Discrepancy:
    item: str
    kind: DiscrepancyKind


def _step(
    kind: str,
    ident: str,
    state: str,
    history: tuple[StateChange, ...],
    steps: Mapping[str, tuple[frozenset[str], str]],
    step: str,
    clock: Clock,
) -> tuple[str, tuple[StateChange, ...], datetime]:
    """The state after `step`, the history with it appended, and its time."""
    allowed, target = steps[step]
    if state not in allowed:
        raise IllegalTransition(kind, ident, state, step, allowed)
    at = clock()
    if history and at < history[-1].at:
        raise ValueError(
            f"{kind} {ident}: {step} at {at.isoformat()} is before its last state change "
            f"({history[-1].state} at {history[-1].at.isoformat()})"
        )
    return target, (*history, StateChange(target, at)), at


def _records(items: Iterable[str], place: Place, step: str, at: datetime) -> tuple[Sighting, ...]:
    return tuple(Sighting(i, place, step, at, Source.RECORD) for i in sorted(items))


def _require_truck(kind: str, ident: str, truck: Place) -> None:
    if not truck.truck:
        raise ValueError(f"{kind} {ident}: zone {truck.zone} is not a truck compartment")


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """Items moving between two warehouses on a truck."""

    id: str
    origin: str
    destination: str
    planned: frozenset[str]
    state: str = TransferState.PLANNED
    truck: Place | None = None
    loaded: frozenset[str] = frozenset()
    received: frozenset[str] = frozenset()
    history: tuple[StateChange, ...] = ()
    records: tuple[Sighting, ...] = ()

    @classmethod
    def plan(
        cls, id: str, origin: str, destination: str, items: Iterable[str], clock: Clock
    ) -> Self:
        """A planned transfer of these items."""
        if origin == destination:
            raise ValueError(f"transfer {id}: origin and destination are both {origin}")
        return cls(
            id=id,
            origin=origin,
            destination=destination,
            planned=frozenset(items),
            history=(StateChange(TransferState.PLANNED, clock()),),
        )

    def _advance(self, step: str, clock: Clock) -> tuple[str, tuple[StateChange, ...], datetime]:
        return _step("transfer", self.id, self.state, self.history, TRANSFER_STEPS, step, clock)

    def load(self, items: Iterable[str], truck: Place, clock: Clock) -> Self:
        """Load planned items onto the truck (again, for more items on the same truck)."""
        items = frozenset(items)
        state, history, at = self._advance("load", clock)
        _require_truck("transfer", self.id, truck)
        if self.truck is not None and truck != self.truck:
            raise ValueError(
                f"transfer {self.id} is loading on {self.truck.zone}, not {truck.zone}"
            )
        if unplanned := items - self.planned:
            raise ValueError(f"transfer {self.id}: not planned: {', '.join(sorted(unplanned))}")
        return replace(
            self,
            state=state,
            history=history,
            truck=truck,
            loaded=self.loaded | items,
            records=self.records + _records(items, truck, "loading", at),
        )

    def depart(self, clock: Clock) -> Self:
        """The truck leaves the origin."""
        state, history, _ = self._advance("depart", clock)
        return replace(self, state=state, history=history)

    def receive(self, items: Iterable[str], zone: Place, clock: Clock) -> Self:
        """What arrived is put into `zone` at the destination; differences become discrepancies."""
        items = frozenset(items)
        state, history, at = self._advance("receive", clock)
        if zone.truck or zone.site != self.destination:
            raise ValueError(
                f"transfer {self.id} is received at {self.destination}, not {zone.zone}"
            )
        return replace(
            self,
            state=state,
            history=history,
            received=items,
            records=self.records + _records(items, zone, "receiving", at),
        )

    @property
    def discrepancies(self) -> tuple[Discrepancy, ...]:
        """Per item, what arrived differently from what left (empty until received)."""
        if self.state != TransferState.RECEIVED:
            return ()
        missing = [Discrepancy(i, DiscrepancyKind.MISSING) for i in self.loaded - self.received]
        extra = [Discrepancy(i, DiscrepancyKind.UNEXPECTED) for i in self.received - self.loaded]
        return tuple(sorted(missing + extra))


@dataclass(frozen=True, slots=True, kw_only=True)
class Shipment:
    """Items picked against a customer's order and taken to the customer."""

    id: str
    order: str
    customer: str
    items: frozenset[str]
    state: str = ShipmentState.PICKED
    truck: Place | None = None
    history: tuple[StateChange, ...] = ()
    records: tuple[Sighting, ...] = ()

    @classmethod
    def pick(cls, id: str, order: str, customer: str, items: Iterable[str], clock: Clock) -> Self:
        """A shipment of the items picked for an order."""
        items = frozenset(items)
        if not items:
            raise ValueError(f"shipment {id}: nothing picked")
        return cls(
            id=id,
            order=order,
            customer=customer,
            items=items,
            history=(StateChange(ShipmentState.PICKED, clock()),),
        )

    def _advance(self, step: str, clock: Clock) -> tuple[str, tuple[StateChange, ...], datetime]:
        return _step("shipment", self.id, self.state, self.history, SHIPMENT_STEPS, step, clock)

    def load(self, truck: Place, clock: Clock) -> Self:
        """Every picked item goes onto the truck."""
        state, history, at = self._advance("load", clock)
        _require_truck("shipment", self.id, truck)
        return replace(
            self,
            state=state,
            history=history,
            truck=truck,
            records=self.records + _records(self.items, truck, "loading", at),
        )

    def ship(self, clock: Clock) -> Self:
        """The truck leaves for the customer."""
        state, history, _ = self._advance("ship", clock)
        return replace(self, state=state, history=history)

    def deliver(self, place: Place, clock: Clock) -> Self:
        """Handed over to the customer at `place` (a zone of the customer's site)."""
        state, history, at = self._advance("deliver", clock)
        if place.truck:
            raise ValueError(f"shipment {self.id}: delivered to a truck ({place.zone})")
        return replace(
            self,
            state=state,
            history=history,
            records=self.records + _records(self.items, place, "receiving", at),
        )
