"""How values look on screen: site-local times, ages, units, and states by shape and label."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from dash import html

# State -> (shape, label): never colour alone (a colour-blind monitor reads shape and word).
STATES = {
    "ok": ("\u25cf", "OK"),  # filled circle
    "warning": ("\u25c6", "WARNING"),  # diamond
    "alarm": ("\u25b2", "ALARM"),  # triangle
    "unknown": ("\u25a1", "UNKNOWN"),  # hollow square
    "online": ("\u25cf", "ONLINE"),
    "offline": ("\u2715", "OFFLINE"),  # cross
    "info": ("\u25cb", "INFO"),  # hollow circle
    "critical": ("\u25b2", "CRITICAL"),
    "open": ("\u25c6", "OPEN"),
    "acknowledged": ("\u25d0", "ACKNOWLEDGED"),  # half circle
    "resolved": ("\u2713", "RESOLVED"),  # tick
    "investigating": ("\u25d0", "INVESTIGATING"),
    "released": ("\u2713", "RELEASED"),
    "rejected": ("\u2715", "REJECTED"),
    "held": ("\u25a0", "HELD"),  # filled square
    "available": ("\u25cf", "AVAILABLE"),
    "expired": ("\u2715", "EXPIRED"),
    "recalled": ("\u2715", "RECALLED"),
    "intact": ("\u2713", "INTACT"),
    "broken": ("\u2715", "BROKEN"),
}


def aria(**attributes: str) -> dict[str, Any]:
    """aria-* attributes to spread into a Dash component: aria(hidden="true")."""
    return {f"aria-{name}": value for name, value in attributes.items()}


def badge(state: str, text: str | None = None) -> html.Span:
    """A state as shape + label, coloured by the theme through its class."""
    shape, label = STATES.get(state, ("\u25cb", state.upper()))
    return html.Span(
        [html.Span(shape, className="shape", **aria(hidden="true")), f" {text or label}"],
        className=f"badge state-{state}",
    )


@lru_cache(maxsize=256)
def tz_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def local(moment: datetime | None, timezone: str, fmt: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    """A stored UTC time shown in the site's time zone, with the zone's abbreviation."""
    if moment is None:
        return "--"
    return moment.astimezone(tz_of(timezone)).strftime(fmt)


def local_time(moment: datetime | None, timezone: str) -> str:
    return local(moment, timezone, "%H:%M:%S %Z")


def age(now: datetime, then: datetime | None) -> str:
    """How long ago, in the largest unit that reads well."""
    if then is None:
        return "never"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def duration(minutes: float | None) -> str:
    if minutes is None:
        return "--"
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def celsius(value: float | None, digits: int = 1) -> str:
    return "--" if value is None else f"{value:.{digits}f} \u00b0C"


def budget_cell(remaining_min: float | None, budget_min: float | None) -> html.Td:
    """A stability budget's cell: what is left, and of how much (or that none is set)."""
    total = f"of {duration(budget_min)}" if budget_min is not None else "no budget set"
    return html.Td(
        [html.Div(duration(remaining_min)), html.Div(total, className="muted")], className="num"
    )
