"""A batch of decoded MQTT messages: what one ingest transaction writes.

`MessageBatch.add_message` decodes one message the way the worker, a replay and the tests
do: readings (their times checked against the plausible window, implausible ones kept
apart), RFID observations, gateway events, statuses and heartbeats; what cannot be decoded
becomes a dead letter, kept bounded (decision 0025). `cloud.service_layer.store` writes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from cloud.domain.plausibility import TimeWindow, implausible
from cloud.domain.refusals import RefusalBudget
from edge import wire


class Refusal(NamedTuple):
    """Why a message was refused, and whether its dead letter has a row of its own."""

    reason: str
    own_row: bool


@dataclass
class MessageBatch:
    """Decoded messages of one ingest transaction."""

    readings: list[tuple[Any, ...]] = field(default_factory=list)  # in READING_COLUMNS order
    observations: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[tuple[wire.StatusMessage, datetime]] = field(default_factory=list)
    heartbeats: list[wire.Heartbeat] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    # Rows counting a gateway's refusals beyond its budget, per minute: added up on write.
    counted_letters: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # gateway -> (site, time)
    _refused: dict[str | None, int] = field(default_factory=dict, repr=False)
    _floods: dict[str | None, dict[str, Any]] = field(default_factory=dict, repr=False)
    _counted: dict[str | None, int] = field(default_factory=dict, repr=False)
    # The worker's own rows of refusals per gateway, kept between batches (decision 0028);
    # None (a replay, a test): only the per-batch bound.
    budget: RefusalBudget | None = None
    # Readings whose time cannot be believed: kept apart, never handed to the rules.
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    window: TimeWindow = field(default_factory=TimeWindow)
    # Gateways whose latest heartbeat said their clock is not synchronised (the caller's set,
    # kept between batches; heartbeats decoded into this batch update it in arrival order).
    unsynchronised: set[str] = field(default_factory=set)

    def add_envelope(self, envelope: wire.ReadingsEnvelope, received_at: datetime) -> None:
        gateway = envelope.gateway
        earliest, latest = self.window.bounds(received_at)
        flag = gateway in self.unsynchronised
        # Times in UTC's one tzinfo object: pydantic gives every parsed time a tzinfo of its
        # own, and two such times compare 10-20 times slower than two in UTC (the rollups'
        # extremes, the rules' sorting), convert and pickle slower too. The instant is kept.
        for r in envelope.records:
            taken_at = r.taken_at.astimezone(UTC)
            # a reading already flagged bad keeps its flag, which says more
            unsure = flag and r.quality is wire.Quality.OK
            quality = wire.Quality.CLOCK_UNSYNCHRONISED.value if unsure else r.quality.value
            row = (
                gateway,
                r.seq,
                r.sensor,
                r.quantity,
                r.value,
                r.unit,
                quality,
                taken_at,
                received_at,
            )
            if earliest <= taken_at <= latest:
                self.readings.append(row)
                continue
            reason = implausible(taken_at, earliest, latest, self.window.skew)
            self.quarantined.append(
                dict(zip(READING_COLUMNS, row, strict=True)) | {"reason": reason}
            )
        self.seen[gateway] = (envelope.site, received_at)

    def add_heartbeat(self, beat: wire.Heartbeat) -> None:
        self.heartbeats.append(beat)
        if beat.clock_synchronised is False:
            self.unsynchronised.add(beat.gateway)
        elif beat.clock_synchronised:
            self.unsynchronised.discard(beat.gateway)

    def add_observations(self, envelope: wire.ObservationsEnvelope, received_at: datetime) -> None:
        gateway = envelope.gateway
        self.observations.extend(
            {"gateway_id": gateway, **o.model_dump(), "received_at": received_at}
            for o in envelope.records
        )
        self.seen[gateway] = (envelope.site, received_at)

    def add_events(self, envelope: wire.EventsEnvelope, received_at: datetime) -> None:
        gateway = envelope.gateway
        self.events.extend(
            {
                "gateway_id": gateway,
                **e.model_dump(exclude={"zone"}),
                "zone_id": e.zone,
                "received_at": received_at,
            }
            for e in envelope.records
        )
        self.seen[gateway] = (envelope.site, received_at)

    def sequences(self) -> dict[str, list[int]]:
        """The seqs of the batch's records (readings, observations, events) per gateway."""
        out: dict[str, list[int]] = {}
        for row in self.readings:
            out.setdefault(row[0], []).append(row[1])
        for record in (*self.observations, *self.events):
            out.setdefault(record["gateway_id"], []).append(record["seq"])
        return out

    def add_message(self, topic: str, payload: bytes, received_at: datetime) -> Refusal | None:
        """Decode one MQTT message into the batch; a dead letter's reason if it was refused."""
        if not payload and topic.endswith("/status"):
            return None  # an empty retained message clears a status; nothing to store
        try:
            _channel, message = wire.decode(topic, payload)
        except wire.WireError as exc:
            own_row = self.add_dead_letter(topic, payload, str(exc), received_at)
            return Refusal(str(exc), own_row)
        match message:  # each channel has its own model
            case wire.ReadingsEnvelope():
                self.add_envelope(message, received_at)
            case wire.ObservationsEnvelope():
                self.add_observations(message, received_at)
            case wire.EventsEnvelope():
                self.add_events(message, received_at)
            case wire.StatusMessage():
                self.statuses.append((message, received_at))
            case wire.Heartbeat():
                self.add_heartbeat(message)
        return None

    def add_dead_letter(
        self, topic: str, payload: bytes, reason: str, received_at: datetime
    ) -> bool:
        """Keep a refused message with its reason; True if it got a row of its own.

        Bounded (decision 0025): a payload over KEEP_BYTES keeps its first KiB, its size and
        the SHA-256 of the whole; past FLOOD_KEEP refusals from one gateway in a batch the
        rest are counted in one row per gateway, so a flood costs a few rows, not one each."""
        digest = hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()
        gateway = dead_letter_gateway(topic)
        kept = self._refused.get(gateway, 0)
        self._refused[gateway] = kept + 1
        own = kept < FLOOD_KEEP and (
            self.budget is None or self.budget.take(gateway, received_at.timestamp())
        )
        if not own:
            self._counted[gateway] = self._counted.get(gateway, 0) + 1
            flood = self._floods.get(gateway)
            if flood is None:
                # With a budget, one row per gateway and minute, counts added up by the store.
                key = (
                    f"flood:{digest}"
                    if self.budget is None
                    else f"flood:{gateway}:{topic if gateway is None else ''}:"
                    f"{received_at.astimezone(UTC):%Y-%m-%dT%H:%M}"
                )
                flood = self._floods[gateway] = {
                    "topic": topic[:512],
                    "gateway_id": gateway,
                    "payload": payload[:PREVIEW_BYTES],
                    "size": len(payload),
                    "count": 0,
                    "digest": hashlib.sha256(key.encode()).hexdigest(),
                    "received_at": received_at,
                }
                (self.dead_letters if self.budget is None else self.counted_letters).append(flood)
            flood["count"] += 1
            flood["reason"] = (
                f"flood: {flood['count']} more refused messages from {gateway or topic} in one "
                f"batch, counted here (the first {FLOOD_KEEP} have rows of their own); the "
                f"latest: {reason[:REASON_CHARS]}"
                if self.budget is None
                else f"flood: refused messages from {gateway or topic} beyond "
                f"{self.budget.rate:g} a second ({self.budget.burst:g} at once), counted "
                f"here per minute (see count); the latest: {reason[:REASON_CHARS]}"
            )
            return False
        self.dead_letters.append(
            {
                "topic": topic[:512],
                "gateway_id": gateway,
                "payload": payload if len(payload) <= KEEP_BYTES else payload[:PREVIEW_BYTES],
                "size": len(payload),
                "count": 1,
                "reason": reason[:REASON_CHARS],
                "digest": digest,
                "received_at": received_at,
            }
        )
        return True

    def refused_beyond_rows(self) -> dict[str | None, int]:
        """Per gateway, the refused messages counted in a flood row rather than kept one each."""
        return dict(self._counted)


KEEP_BYTES = 64 * 1024  # a refused payload up to this is kept whole, to be replayed after a fix
PREVIEW_BYTES = 1024  # beyond it: the first KiB, the size and the digest of the whole
REASON_CHARS = 2000
FLOOD_KEEP = 20  # refusals from one gateway kept one row each per batch; the rest counted


def dead_letter_gateway(topic: str) -> str | None:
    """The gateway a refused message's topic names (cc/v1/{site}/{gateway}/...), if any."""
    parts = topic.split("/")
    return parts[3][:64] if len(parts) >= 5 and parts[0] == "cc" and parts[3] else None


READING_COLUMNS = (
    "gateway_id",
    "seq",
    "sensor_id",
    "quantity",
    "value",
    "unit",
    "quality",
    "taken_at",
    "received_at",
)
