"""Which readings are evidence, and what a record says about evidence from sensors past
their calibration due date (decision 0027).

A reading of `ok` quality, or flagged `calibration_overdue` by its gateway, carries a real
value: the rules use it like any other to open and close excursions, and for the exposure's
extremes and degree-minutes. Evidence from an overdue sensor is used, never hidden, and
marked: every excursion, exposure and hold it went into says "1 of 2 sensors calibration
overdue since ...". Any other flag (timeout, modbus_exception, out_of_range, stale,
sensor_fault, invalid_value, clock_unsynchronised) is no evidence of the zone's condition.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

OK = "ok"
CALIBRATION_OVERDUE = "calibration_overdue"
USABLE_QUALITIES = (OK, CALIBRATION_OVERDUE)


def usable(quality: str, value: float | None) -> bool:
    """Whether a reading is evidence of its zone's condition: a value of a trusted quality."""
    return value is not None and quality in USABLE_QUALITIES


def calibration_note(readings: Iterable[tuple[str, datetime, str]]) -> str | None:
    """What a record says of the (sensor, taken_at, quality) readings it rests on: None when
    no sensor among them was past its calibration due date, else "2 of 3 sensors calibration
    overdue since 2026-07-01 08:00 UTC" (the first overdue reading's time)."""
    sensors: set[str] = set()
    overdue: set[str] = set()
    since: datetime | None = None
    for sensor, taken_at, quality in readings:
        if quality not in USABLE_QUALITIES:
            continue
        sensors.add(sensor)
        if quality == CALIBRATION_OVERDUE:
            overdue.add(sensor)
            since = taken_at if since is None or taken_at < since else since
        # a sensor both ok and overdue in the span counts as overdue: some evidence was
    if not overdue or since is None:
        return None
    noun = "sensor" if len(sensors) == 1 else "sensors"
    when = since.strftime("%Y-%m-%d %H:%M UTC")
    return f"{len(overdue)} of {len(sensors)} {noun} calibration overdue since {when}"
