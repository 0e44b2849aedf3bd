"""Dead letters (admins): the messages ingest refused, by gateway and reason, each with a
replay button that takes it through the normal ingest path once the cause is fixed."""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from flask import current_app

from cloud.domain.clock import utcnow
from cloud.views import dead_letters as letter_views
from cloud.views.control_room import UserView
from dashboard import services
from dashboard.auth import guarded, may, require
from dashboard.present import age

dash.register_page(__name__, path="/dead-letters", name="Dead letters", order=9)
HEADER = ("Received", "Gateway", "Topic", "Reason", "Size", "Count", "Replayed", "")
SHOWN = 200  # rows listed at most, newest first


@guarded
def layout(user: UserView, **_q: str) -> html.Div:
    if not may("dead_letters", user):
        return html.Div(
            [html.H1("Dead letters"), html.P("Only admins see dead letters.", className="muted")]
        )
    room = services.control_room()
    gateways = room.read(letter_views.dead_letter_gateways)
    return html.Div(
        [
            html.H1("Dead letters"),
            dcc.Interval(
                id="dead-letters-tick", interval=current_app.config["COLDCHAIN_REFRESH_MS"]
            ),
            dcc.Store(id="dead-letters-changed", data=0),
            html.Div(
                [
                    dcc.Dropdown(
                        id="dead-letters-gateway",
                        options=[{"label": g, "value": g} for g in gateways],
                        placeholder="Any gateway",
                    ),
                    dcc.Input(
                        id="dead-letters-reason",
                        type="text",
                        placeholder="Part of the reason",
                        debounce=True,
                    ),
                ],
                className="filters",
            ),
            html.Div(id="dead-letters-outcome", role="status"),
            html.Div(_table(_read(None, None)), id="dead-letters-table", className="panel"),
        ]
    )


def _read(gateway: str | None, reason: str | None) -> list[letter_views.DeadLetterRow]:
    given = letter_views.DeadLetterFilter(gateway_id=gateway or None, reason=reason or None)
    return services.control_room().read(letter_views.dead_letter_rows, given, SHOWN)


@callback(
    Output("dead-letters-table", "children"),
    Input("dead-letters-tick", "n_intervals"),
    Input("dead-letters-gateway", "value"),
    Input("dead-letters-reason", "value"),
    Input("dead-letters-changed", "data"),
)
def refresh(_n: int | None, gateway: str | None, reason: str | None, _changed: int) -> Any:
    require("dead_letters")
    return _table(_read(gateway, reason))


@callback(
    Output("dead-letters-outcome", "children"),
    Output("dead-letters-changed", "data"),
    Input({"type": "dead-letters-replay", "letter": ALL}, "n_clicks"),
    State("dead-letters-changed", "data"),
    prevent_initial_call=True,
)
def replay(clicks: list[int], changed: int | None) -> Any:
    """Replay the clicked dead letter, as the logged-in admin; say what it did."""
    if not ctx.triggered_id or not any(clicks):
        return no_update, no_update
    user = require("dead_letters")
    letter = int(ctx.triggered_id["letter"])
    detail = services.control_room().act(
        user, "replayed in the control room", letter_views.replay_dead_letter, letter
    )
    return f"Dead letter {letter}: {detail}", (changed or 0) + 1


def _replay_cell(d: letter_views.DeadLetterRow) -> Any:
    if not d.whole:
        return html.Span("not kept whole", className="muted")
    return html.Button(
        "Replay again" if d.replayed_at else "Replay",
        id={"type": "dead-letters-replay", "letter": d.id},
        n_clicks=0,
        className="secondary",
    )


def _table(rows: list[letter_views.DeadLetterRow]) -> Any:
    if not rows:
        return html.P("No dead letters.", className="muted")
    now = utcnow()
    return html.Table(
        [
            html.Tr([html.Th(h) for h in HEADER]),
            *[
                html.Tr(
                    [
                        html.Td(age(now, d.received_at), title=d.received_at.isoformat()),
                        html.Td(d.gateway_id or "--"),
                        html.Td(d.topic),
                        html.Td(d.reason[:300], title=d.reason),
                        html.Td(f"{d.size} B", className="num"),
                        html.Td(str(d.count), className="num"),
                        html.Td(
                            "--" if d.replayed_at is None else (d.replay_outcome or "replayed")
                        ),
                        html.Td(_replay_cell(d)),
                    ],
                    id=f"dead-letters-row-{d.id}",
                )
                for d in rows
            ],
        ],
        className="grid",
        id="dead-letters-grid",
    )
