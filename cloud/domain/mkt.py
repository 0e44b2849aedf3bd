"""Mean kinetic temperature (USP <1079.2>): the single temperature that would degrade a
product as much as the varying temperatures it saw.

MKT = (dH/R) / -ln( sum(t_i * exp(-(dH/R) / T_i)) / sum(t_i) ), T_i in kelvin, with
dH/R = 10,000 K (dH = 83.144 kJ/mol). Durations are weights, so uneven sampling is handled
by giving each value the time until the next one (left-rectangle rule). The window is 24 h
for controlled-cold products and 30 days for room-temperature products.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

DELTA_H_OVER_R = 10_000.0  # kelvin
KELVIN = 273.15
COLD_WINDOW = timedelta(hours=24)
ROOM_WINDOW = timedelta(days=30)
COLD_UPPER_C = 8.0  # a product stored at or below this is a cold product


class MKTError(ValueError):
    """Inputs MKT cannot be computed from, naming the bad value."""


def mkt(
    points: Iterable[tuple[float, float]],
    delta_h_over_r: float = DELTA_H_OVER_R,
    kelvin: float = KELVIN,
) -> float:
    """MKT in C of (temperature C, duration) pairs; durations in any one unit."""
    weight = total = 0.0
    for i, (temp_c, duration) in enumerate(points):
        if not math.isfinite(temp_c) or temp_c + kelvin <= 0:
            raise MKTError(f"point {i}: temperature {temp_c!r} C is not a physical temperature")
        if not math.isfinite(duration) or duration < 0:
            raise MKTError(f"point {i}: duration {duration!r} must be a non-negative number")
        weight += duration * math.exp(-delta_h_over_r / (temp_c + kelvin))
        total += duration
    if total <= 0:
        raise MKTError("no duration to average over")
    return delta_h_over_r / -math.log(weight / total) - kelvin


def durations(
    samples: Sequence[tuple[datetime, float]], start: datetime, end: datetime
) -> list[tuple[float, float]]:
    """(value, seconds) of time-ordered samples in [start, end), each held until the next."""
    points = []
    for i, (at, value) in enumerate(samples):
        nxt = samples[i + 1][0] if i + 1 < len(samples) else end
        a, b = max(at, start), min(nxt, end)
        if b > a:
            points.append((value, (b - a).total_seconds()))
    return points


def window_for(storage_high_c: float | None) -> timedelta:
    """24 h for cold products (stored at or below 8 C), 30 days for room temperature."""
    if storage_high_c is not None and storage_high_c <= COLD_UPPER_C:
        return COLD_WINDOW
    return ROOM_WINDOW
