"""Gateways: each gateway's health from its latest heartbeat, and the records it has lost."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html
from flask import current_app

from cloud.domain.clock import utcnow
from cloud.views import gateways as gateway_views
from cloud.views.control_room import UserView
from dashboard import services
from dashboard.auth import guarded, require
from dashboard.present import age, badge

dash.register_page(__name__, path="/gateways", name="Gateways", order=7)
HEADER = (
    "Gateway",
    "Site",
    "State",
    "Last heartbeat",
    "Buffer",
    "Oldest unsent",
    "Dropped",
    "Clock",
    "Disk free",
    "Missing records",
)


@guarded
def layout(_user: UserView, **_q: str) -> html.Div:
    return html.Div(
        [
            html.H1("Gateways"),
            dcc.Interval(id="gateways-tick", interval=current_app.config["COLDCHAIN_REFRESH_MS"]),
            html.Div(_table(_read()), id="gateways-table", className="panel"),
        ]
    )


def _read() -> list[gateway_views.GatewayHealth]:
    return services.control_room().read(gateway_views.gateways)


@callback(Output("gateways-table", "children"), Input("gateways-tick", "n_intervals"))
def refresh(_n: int | None) -> Any:
    require()
    return _table(_read())


def _bytes(n: int | None) -> str:
    if n is None:
        return "--"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n //= 1024
    return f"{n:.0f} TB"


def _clock(synchronised: bool | None) -> Any:
    if synchronised is None:
        return "--"
    return badge("ok", "SYNCHRONISED") if synchronised else badge("warning", "NOT SYNCHRONISED")


def _missing(g: gateway_views.GatewayHealth) -> Any:
    lines: list[Any] = [
        html.Div(
            f"{m.first}-{m.last} ({m.count})"
            + (" dropped by the gateway" if m.covered_by_drops else ""),
            className="muted" if m.covered_by_drops else "error",
        )
        for m in g.missing
    ]
    if g.seq_restart_from is not None:
        lines.append(
            html.Div(
                f"numbering restarted at {g.seq_restart_from} (below {g.seq_restart_below})",
                className="error",
            )
        )
    return lines or "none"


def _table(rows: list[gateway_views.GatewayHealth]) -> Any:
    if not rows:
        return html.P("No gateway has been heard from yet.", className="muted")
    now = utcnow()
    return html.Table(
        [
            html.Tr([html.Th(h) for h in HEADER]),
            *[
                html.Tr(
                    [
                        html.Td(g.id),
                        html.Td(g.site_id),
                        html.Td(badge(g.state)),
                        html.Td(age(now, g.last_heartbeat)),
                        html.Td(
                            "--" if g.buffer_depth is None else str(g.buffer_depth), className="num"
                        ),
                        html.Td(
                            "--"
                            if g.oldest_unsent_age_s is None
                            else f"{g.oldest_unsent_age_s:.0f} s",
                            className="num",
                        ),
                        html.Td(
                            "--" if g.dropped_records is None else str(g.dropped_records),
                            className="num",
                        ),
                        html.Td(_clock(g.clock_synchronised)),
                        html.Td(_bytes(g.disk_free_bytes), className="num"),
                        html.Td(_missing(g), id=f"gateways-missing-{g.id}"),
                    ]
                )
                for g in rows
            ],
        ],
        className="grid",
        id="gateways-grid",
    )
