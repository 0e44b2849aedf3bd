"""Overview: every site and zone, live, with state shown by label and shape as well as colour."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dash
from dash import Input, Output, callback, dcc, html
from flask import current_app

from cloud.models import utcnow
from cloud.views import GatewayNow, SiteNow, ZoneNow
from dashboard import services

dash.register_page(__name__, path="/", name="Overview", order=0)

STATE_LABEL = {
    "ok": ("\u25cf", "OK"),  # filled circle
    "out_of_range": ("\u25b2", "OUT OF RANGE"),  # triangle
    "no_data": ("\u25a1", "NO DATA"),  # hollow square
}


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            dcc.Interval(id="overview-tick", interval=current_app.config["COLDCHAIN_REFRESH_MS"]),
            html.Div(id="overview-updated", className="updated"),
            html.Div(id="overview-sites", className="sites", children=render(utcnow())),
        ]
    )


@callback(
    Output("overview-sites", "children"),
    Output("overview-updated", "children"),
    Input("overview-tick", "n_intervals"),
)
def refresh(_n: int | None) -> tuple[list[html.Section], str]:
    now = utcnow()
    return render(now), f"Updated {now:%H:%M:%S} UTC"


def render(now: datetime) -> list[html.Section]:
    sites = services.control_room().overview(now)
    if not sites:
        return [html.Section("No gateway has reported yet.", className="site empty")]
    return [_site(site, now) for site in sites]


def _site(site: SiteNow, now: datetime) -> html.Section:
    return html.Section(
        className=f"site site-{site.kind}",
        id=f"overview-site-{site.id}",
        children=[
            html.H2([html.Span(site.kind.upper(), className="kind"), f" {site.name}"]),
            html.Div([_gateway(g, now) for g in site.gateways], className="gateways"),
            html.Div([_zone(z, site.timezone, now) for z in site.zones], className="zones"),
        ],
    )


def _gateway(gateway: GatewayNow, now: datetime) -> html.Span:
    age = "never" if gateway.last_seen is None else _age(now, gateway.last_seen)
    backlog = "" if gateway.buffer_depth is None else f", backlog {gateway.buffer_depth}"
    return html.Span(
        f"{gateway.id}: {gateway.state} (seen {age}{backlog})",
        className=f"gateway gateway-{gateway.state}",
    )


def _zone(zone: ZoneNow, timezone: str, now: datetime) -> html.Div:
    shape, label = STATE_LABEL[zone.state]
    temperature = zone.temperature.text() if zone.temperature else "--"
    humidity = zone.humidity.text(0) if zone.humidity else "--"
    when = "no reading"
    if zone.temperature:
        taken = zone.temperature.taken_at
        when = f"taken {_local(taken, timezone)} ({_age(now, taken)})"
    return html.Div(
        className=f"zone state-{zone.state}",
        id=f"overview-zone-{zone.id}",
        children=[
            html.Div([html.Span(shape, className="shape"), f" {label}"], className="state"),
            html.Div(zone.name, className="zone-name"),
            html.Div(temperature, className="temperature"),
            html.Div(humidity, className="humidity"),
            html.Div(f"limits {zone.limits} | {zone.sensors} sensor(s)", className="limits"),
            html.Div(when, className="taken"),
            *(
                [html.Div("\u26a0 CALIBRATION OVERDUE", className="calibration")]
                if zone.calibration_overdue
                else []
            ),
        ],
    )


def _local(moment: datetime, timezone: str) -> str:
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%H:%M:%S %Z")


def _age(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"
