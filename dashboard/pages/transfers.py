"""Transfers and shipments: on the road with the truck compartment's live temperature,
release gate results before loading, and discrepancies found on receipt."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html
from flask import current_app

from cloud.domain.clock import utcnow
from cloud.views.control_room import UserView
from cloud.views.transfers import Movement, movements
from dashboard import services
from dashboard.auth import guarded, require
from dashboard.present import age, badge, local

dash.register_page(__name__, path="/transfers", name="Transfers & shipments", order=5)


@guarded
def layout(_user: UserView, **_q: str) -> html.Div:
    return html.Div(
        [
            html.H1("Transfers and shipments"),
            dcc.Interval(id="transfers-tick", interval=current_app.config["COLDCHAIN_REFRESH_MS"]),
            dcc.Checklist(
                id="transfers-done",
                options=[{"label": " include every received and delivered one", "value": "done"}],
                value=[],
            ),
            html.Div(id="transfers-table", className="panel"),
        ]
    )


@callback(
    Output("transfers-table", "children"),
    Input("transfers-tick", "n_intervals"),
    Input("transfers-done", "value"),
)
def table(_n: int | None, done: list[str]) -> Any:
    require()
    rows = services.control_room().read(movements, bool(done))
    if not rows:
        return html.P("Nothing waiting to load or on the road.", className="muted")
    now = utcnow()
    header = (
        "Movement",
        "State",
        "Route",
        "Truck compartment now",
        "Items",
        "Release gate",
        "Receipt",
    )
    return html.Table(
        [html.Tr([html.Th(h) for h in header]), *[_row(m, now) for m in rows]],
        className="grid",
        id="transfers-grid",
    )


def _row(m: Movement, now: Any) -> html.Tr:
    truck: list[Any] = ["--"]
    if m.truck:
        state = "alarm" if m.out_of_limits else ("ok" if m.temperature else "unknown")
        truck = [
            badge(state),
            f" {m.truck}: {m.temperature or 'no reading'}",
            html.Div(
                f"taken {local(m.temperature_at, m.timezone, '%H:%M:%S %Z')} "
                f"({age(now, m.temperature_at)})"
                if m.temperature_at
                else "",
                className="muted",
            ),
        ]
    if m.state in ("planned", "picked"):
        gate: Any = (
            badge("ok", "MAY LOAD")
            if not m.gate
            else [badge("alarm", "BLOCKED"), html.Ul([html.Li(r) for r in m.gate])]
        )
    else:
        gate = html.Span("passed at loading", className="muted")
    receipt: Any = (
        [
            badge(
                "warning",
                f"{len(m.discrepancies)} DISCREPANC{'Y' if len(m.discrepancies) == 1 else 'IES'}",
            ),
            html.Ul([html.Li(d) for d in m.discrepancies]),
        ]
        if m.discrepancies
        else html.Span(
            "--" if m.state not in ("received", "delivered") else "complete", className="muted"
        )
    )
    return html.Tr(
        [
            html.Td(
                [
                    html.Strong(f"{m.kind} {m.id}"),
                    html.Div(local(m.created_at, m.timezone), className="muted"),
                ]
            ),
            html.Td(m.state.replace("_", " ")),
            html.Td(f"{m.origin} \u2192 {m.destination}"),
            html.Td(truck),
            html.Td(
                [html.Div(str(m.items)), html.Div(", ".join(m.lots), className="muted")],
                className="num",
            ),
            html.Td(gate),
            html.Td(receipt),
        ],
        id=f"transfers-row-{m.id}",
    )
