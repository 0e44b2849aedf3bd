"""Zone detail: the zone's series with its limit band and excursions, and the batches there."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from cloud.domain.clock import utcnow
from cloud.views import profiles as profile_views
from cloud.views.control_room import UserView
from cloud.views.zone_chart import ZoneChart, zone_batches, zone_chart
from dashboard import services
from dashboard.auth import guarded, may, require
from dashboard.present import badge, local

dash.register_page(__name__, path="/zone", name="Zone", order=1)

RANGES = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "365d": timedelta(days=365),
}
LOCAL = "%Y-%m-%d %H:%M:%S"
LEVEL_FILL = {"alarm": "rgba(255,92,87,0.28)", "warning": "rgba(227,179,65,0.22)"}
GRID = "#2d3646"
COLOURS = ("#8cc4ff", "#d2a8ff", "#7ee787", "#ffa657", "#ff7b72", "#79c0ff")


@guarded
def layout(user: UserView, zone: str | None = None, **query: str) -> html.Div:
    zones = services.control_room().zones()
    chosen = zone if zone in {z for z, _, _ in zones} else (zones[0][0] if zones else None)
    return html.Div(
        [
            html.H1("Zone detail"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="zone-pick",
                        options=[{"label": label, "value": z} for z, label, _ in zones],
                        value=chosen,
                        clearable=False,
                        className="dash-dropdown",
                    ),
                    dcc.RadioItems(
                        id="zone-range",
                        options=[{"label": k, "value": k} for k in RANGES],
                        value=query.get("range") if query.get("range") in RANGES else "24h",
                        inline=True,
                        inputStyle={"marginLeft": ".6rem"},
                    ),
                    html.Span(id="zone-source", className="muted"),
                ],
                className="toolbar",
            ),
            dcc.Loading(
                dcc.Graph(id="zone-graph", config={"displaylogo": False}, style={"height": "52vh"})
            ),
            html.Div(
                [
                    html.Div(
                        [html.H3("Excursions in range"), html.Div(id="zone-excursions")],
                        className="panel",
                    ),
                    html.Div(
                        [
                            html.H3("Batches in the zone during the range (zoom to narrow)"),
                            html.Div(id="zone-batches"),
                        ],
                        className="panel",
                    ),
                ],
                className="columns",
            ),
            *([_profiles_panel()] if may("profiles", user) else []),
        ]
    )


def _profiles_panel() -> html.Div:
    """An admin's choice of the profiles the zone is judged by, with a reason."""
    return html.Div(
        [
            html.H3("Monitoring profiles"),
            html.P(
                "The zone is judged by these; none: its kind's presets with its own limits.",
                className="muted",
            ),
            dcc.Dropdown(id="zone-profiles", multi=True, className="dash-dropdown"),
            html.Label("Reason", htmlFor="zone-profiles-reason"),
            dcc.Input(id="zone-profiles-reason", type="text", style={"width": "100%"}),
            html.Button("Assign", id="zone-profiles-assign", className="button"),
            html.Div(id="zone-profiles-message", role="status"),
        ],
        className="panel",
        id="zone-profiles-panel",
    )


@callback(
    Output("zone-graph", "figure"),
    Output("zone-source", "children"),
    Output("zone-excursions", "children"),
    Input("zone-pick", "value"),
    Input("zone-range", "value"),
)
def draw(zone_id: str | None, span: str) -> tuple[Any, str, Any]:
    require()
    if not zone_id:
        return {}, "no zone", "No zones yet."
    end = utcnow()
    chart = services.control_room().read(zone_chart, zone_id, end - RANGES[span], end)
    points = sum(len(s.points) for s in chart.series)
    source = (
        f"{points} points from {chart.source} \u00b7 min/max kept per bucket \u00b7 "
        f"times in {chart.timezone}"
    )
    return figure(chart), source, _excursion_table(chart)


@callback(
    Output("zone-profiles", "options"),
    Output("zone-profiles", "value"),
    Input("zone-pick", "value"),
    prevent_initial_call=False,
)
def profile_choice(zone_id: str | None) -> tuple[Any, Any]:
    require("profiles")
    if not zone_id:
        return [], []
    names, judged = services.control_room().read(profile_views.zone_choice, zone_id)
    return [{"label": n, "value": n} for n in names], judged


@callback(
    Output("zone-profiles-message", "children"),
    Output("zone-profiles", "value", allow_duplicate=True),
    Input("zone-profiles-assign", "n_clicks"),
    State("zone-pick", "value"),
    State("zone-profiles", "value"),
    State("zone-profiles-reason", "value"),
    prevent_initial_call=True,
)
def assign_profiles(
    _clicks: int | None, zone_id: str | None, names: list[str] | None, reason: str | None
) -> tuple[Any, Any]:
    """Assign the chosen profiles to the zone (audited with the reason)."""
    user = require("profiles")
    if not zone_id:
        return "Choose a zone.", no_update
    if not (reason or "").strip():
        return html.P("Give a reason.", className="error"), no_update
    try:
        judged = services.control_room().act(
            user, reason, profile_views.assign, zone_id, list(names or [])
        )
    except ValueError as exc:
        return html.P(f"Not done: {exc}", className="error"), no_update
    return html.P(
        f"\u2713 {zone_id} is judged by {', '.join(judged)}.", className="success"
    ), judged


@callback(
    Output("zone-batches", "children"),
    Input("zone-pick", "value"),
    Input("zone-range", "value"),
    Input("zone-graph", "relayoutData"),
)
def batches(zone_id: str | None, span: str, relayout: dict[str, Any] | None) -> Any:
    require()
    if not zone_id:
        return ""
    end = utcnow()
    start = end - RANGES[span]
    timezone = dict((z, tz) for z, _, tz in services.control_room().zones()).get(zone_id, "UTC")
    if relayout and "xaxis.range[0]" in relayout:
        start, end = _zoomed(relayout, timezone) or (start, end)
    rows = services.control_room().read(zone_batches, zone_id, start, end)
    caption = f"{local(start, timezone)} to {local(end, timezone)}"
    if not rows:
        return [html.P(caption, className="muted"), html.P("No tracked batches in the zone.")]
    return [
        html.P(caption, className="muted"),
        html.Table(
            [
                html.Tr(
                    [
                        html.Th(h)
                        for h in (
                            "Lot",
                            "Product",
                            "Status",
                            "Expires",
                            "Items",
                            "Here now",
                            "In since",
                        )
                    ]
                ),
                *[
                    html.Tr(
                        [
                            html.Td(dcc.Link(b.lot, href=f"/trace?q={b.lot}")),
                            html.Td(f"{b.product} ({b.gtin})"),
                            html.Td(badge(b.status)),
                            html.Td(b.expires_on),
                            html.Td(str(b.items), className="num"),
                            html.Td(str(b.here_now), className="num"),
                            html.Td(local(b.first_in, timezone)),
                        ]
                    )
                    for b in rows
                ],
            ],
            className="grid",
            id="zone-batch-table",
        ),
    ]


def _zoomed(relayout: dict[str, Any], timezone: str) -> tuple[datetime, datetime] | None:
    from dashboard.present import tz_of

    try:
        first, last = (
            datetime.fromisoformat(str(relayout[f"xaxis.range[{i}]"])[:19]) for i in (0, 1)
        )
    except ValueError:
        return None
    zone = tz_of(timezone)
    return first.replace(tzinfo=zone), last.replace(tzinfo=zone)


def figure(chart: ZoneChart) -> dict[str, Any]:
    """A plain plotly figure dict (no validation pass: the chart must answer fast)."""
    tz = chart.timezone
    traces = []
    for i, series in enumerate(chart.series):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{series.sensor_id} ({series.unit})",
                "x": [local(t, tz, LOCAL) for t, _ in series.points],
                "y": [round(v, 2) for _, v in series.points],
                "line": {"width": 1.5, "color": COLOURS[i % len(COLOURS)]},
                "yaxis": "y" if series.quantity == "temperature" else "y2",
                "hovertemplate": "%{x}<br>%{y} " + series.unit + "<extra>%{fullData.name}</extra>",
            }
        )
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    if chart.low is not None and chart.high is not None:
        shapes.append(
            {
                "type": "rect",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": chart.low,
                "y1": chart.high,
                "fillcolor": "rgba(63,185,80,0.10)",
                "line": {"width": 0},
                "layer": "below",
            }
        )
    for limit, label in ((chart.low, "low limit"), (chart.high, "high limit")):
        if limit is not None:
            shapes.append(
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "yref": "y",
                    "y0": limit,
                    "y1": limit,
                    "line": {"dash": "dash", "color": "#3fb950", "width": 1},
                }
            )
            annotations.append(
                {
                    "xref": "paper",
                    "x": 1,
                    "y": limit,
                    "text": f"{label} {limit:g} \u00b0C",
                    "showarrow": False,
                    "xanchor": "right",
                    "yanchor": "bottom",
                    "font": {"color": "#3fb950", "size": 11},
                }
            )
    for level, kind, limit, delay in chart.levels:
        if (kind == "high" and limit == chart.high) or (kind == "low" and limit == chart.low):
            continue  # already drawn as the band's edge
        colour = "#ff5c57" if level == "alarm" else "#e3b341"
        sign = ">" if kind == "high" else "<"
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": limit,
                "y1": limit,
                "line": {"dash": "dot", "color": colour, "width": 1},
            }
        )
        annotations.append(
            {
                "xref": "paper",
                "x": 0,
                "y": limit,
                "text": f"{level} {sign} {limit:g} \u00b0C for {delay:g} min",
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "bottom",
                "font": {"color": colour, "size": 11},
            }
        )
    for index, excursion in enumerate(chart.excursions):
        start = max(excursion.started_at, chart.start)
        end = min(excursion.ended_at or chart.end, chart.end)
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "x0": local(start, tz, LOCAL),
                "x1": local(end, tz, LOCAL),
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "fillcolor": LEVEL_FILL.get(excursion.level, LEVEL_FILL["warning"]),
                "line": {"width": 0},
                "layer": "below",
            }
        )
        shape = "\u25b2" if excursion.level == "alarm" else "\u25c6"
        annotations.append(
            {
                "xref": "x",
                "x": local(start, tz, LOCAL),
                "yref": "paper",
                "y": 1 - 0.07 * (index % 5),  # stacked: excursions often start together
                "text": f"{shape} {excursion.level.upper()} {excursion.kind}",
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "top",
                "font": {"color": "#ff5c57" if excursion.level == "alarm" else "#e3b341"},
            }
        )
    return {
        "data": traces,
        "layout": {
            "font": {"color": "#e6e9ef"},
            "paper_bgcolor": "#171d27",
            "plot_bgcolor": "#171d27",
            "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
            "title": {"text": f"{chart.site_name} / {chart.zone_name}", "x": 0.01},
            "xaxis": {
                "type": "date",
                "range": [local(chart.start, tz, LOCAL), local(chart.end, tz, LOCAL)],
                "title": {"text": f"time ({tz})"},
                "gridcolor": GRID,
            },
            "yaxis": {"title": {"text": "temperature (\u00b0C)"}, "gridcolor": GRID},
            "yaxis2": {
                "title": {"text": "humidity (%RH)"},
                "overlaying": "y",
                "side": "right",
                "showgrid": False,
            },
            "legend": {"orientation": "h", "y": -0.15},
            "shapes": shapes,
            "annotations": annotations,
            "uirevision": chart.zone_id,
        },
    }


def _excursion_table(chart: ZoneChart) -> Any:
    if not chart.excursions:
        return html.P("No excursions in this range.", className="muted")
    tz = chart.timezone
    return html.Table(
        [
            html.Tr([html.Th(h) for h in ("Level", "Kind", "Started", "Ended", "Peak", "Limit")]),
            *[
                html.Tr(
                    [
                        html.Td(badge(e.level)),
                        html.Td(e.kind),
                        html.Td(local(e.started_at, tz)),
                        html.Td(local(e.ended_at, tz) if e.ended_at else "open"),
                        html.Td(
                            "--" if e.peak is None else f"{e.peak:.1f} \u00b0C", className="num"
                        ),
                        html.Td(
                            "--" if e.limit is None else f"{e.limit:g} \u00b0C", className="num"
                        ),
                    ]
                )
                for e in chart.excursions
            ],
        ],
        className="grid",
    )
