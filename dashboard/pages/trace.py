"""Batch trace: search by lot, GTIN, EPC or a scanned GS1 string; custody timeline,
exposures, where every item is now; QA can start a recall."""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from cloud.service_layer.signatures import SignatureRefused
from cloud.views import recalls
from cloud.views.control_room import UserView
from cloud.views.trace import BatchTrace, find, trace
from dashboard import services
from dashboard.auth import guarded, may, require
from dashboard.present import badge, celsius, duration, local

dash.register_page(__name__, path="/trace", name="Batch trace", order=6)


@guarded
def layout(_user: UserView, q: str = "", **_q: str) -> html.Div:
    return html.Div(
        [
            html.H1("Batch trace"),
            html.Div(
                [
                    dcc.Input(
                        id="trace-query",
                        type="text",
                        value=q,
                        debounce=True,
                        placeholder="lot, GTIN, EPC (hex) or scan a GS1 barcode here",
                        style={"width": "36rem"},
                        autoFocus=True,
                    ),
                    html.Button("Trace", id="trace-go", n_clicks=0, className="primary"),
                ],
                className="toolbar",
            ),
            html.Div(id="trace-found", className="muted"),
            dcc.Store(id="trace-batch"),
            dcc.Store(id="trace-changed", data=0),
            html.Div(id="trace-recall-message", role="status"),
            html.Div(id="trace-result"),
        ]
    )


@callback(
    Output("trace-found", "children"),
    Output("trace-batch", "data"),
    Input("trace-go", "n_clicks"),
    Input("trace-query", "value"),
    Input({"type": "trace-pick", "batch": ALL}, "n_clicks"),
)
def search(_n: int, query: str | None, _picks: list[int]) -> tuple[Any, Any]:
    require()
    if isinstance(ctx.triggered_id, dict):
        return no_update, ctx.triggered_id["batch"]
    if not (query or "").strip():
        return "", None
    try:
        found = services.control_room().read(find, query or "")
    except ValueError as exc:
        return html.Span(str(exc), className="error"), None
    if not found.batches:
        return f"Searched for {found.understood}: no batch found.", None
    if len(found.batches) == 1:
        return f"Found by {found.understood}.", found.batches[0][0]
    return [
        f"{len(found.batches)} batches for {found.understood}: ",
        *[
            html.Button(
                f"{lot} \u00b7 {product}",
                id={"type": "trace-pick", "batch": batch_id},
                n_clicks=0,
            )
            for batch_id, lot, _gtin, product in found.batches
        ],
    ], found.batches[0][0]


@callback(
    Output("trace-result", "children"),
    Input("trace-batch", "data"),
    Input("trace-changed", "data"),
)
def show(batch_id: int | None, _changed: int) -> Any:
    user = require()
    if batch_id is None:
        return ""
    result = services.control_room().read(trace, batch_id)
    recall: list[Any] = []
    if may("recall", user) and result.status != "recalled":
        recall = [
            html.Div(
                [
                    html.H3("Start a recall (electronic signature)"),
                    html.Div(
                        [
                            html.Strong(f"Meaning: {recalls.MEANING.capitalize()}. "),
                            recalls.MEANING_TEXT,
                        ],
                        className="meaning",
                    ),
                    html.P(f"Signing as {user.full_name} ({user.username}).", className="muted"),
                    html.Div(
                        [
                            dcc.Input(
                                id="trace-recall-reason",
                                placeholder="reason",
                                style={"width": "30rem"},
                            ),
                            # 21 CFR 11.200: the first signing of a session needs the user ID.
                            dcc.Input(
                                id="trace-recall-user-id",
                                placeholder="user ID",
                                autoComplete="username",
                                style={}
                                if services.accounts().needs_user_id(user)
                                else {"display": "none"},
                            ),
                            dcc.Input(
                                id="trace-recall-password",
                                type="password",
                                placeholder="password (again)",
                                autoComplete="current-password",
                            ),
                            html.Button(
                                "Sign and start recall",
                                id="trace-recall",
                                n_clicks=0,
                                className="danger",
                            ),
                        ],
                        className="toolbar",
                    ),
                ],
                className="panel",
            )
        ]
    return [
        _summary(result),
        html.Div([_timeline(result), _exposures(result)], className="columns"),
        *recall,
    ]


def _summary(t: BatchTrace) -> html.Div:
    return html.Div(
        [
            html.H2([f"Lot {t.lot} \u00b7 {t.product} ", badge(t.status)]),
            html.P(
                f"GTIN {t.gtin} \u00b7 expires {t.expires_on} \u00b7 quantity {t.quantity} "
                f"\u00b7 {t.items} serialised item(s)",
                className="muted",
            ),
            html.H3("Where every item is now"),
            html.Ul([html.Li(f"{n} item(s): {place}") for place, n in t.where_now], id="trace-now"),
            *(
                [
                    html.H3("Shipments"),
                    html.Ul(
                        [
                            html.Li(f"{s} ({state}) to {customer}: {n} item(s)")
                            for s, state, customer, n in t.shipments
                        ]
                    ),
                ]
                if t.shipments
                else []
            ),
            *([html.H3("Recalls"), html.Ul([html.Li(r) for r in t.recalls])] if t.recalls else []),
        ],
        className="panel",
    )


def _timeline(t: BatchTrace) -> html.Div:
    return html.Div(
        [
            html.H3("Custody timeline (site-local times)"),
            html.Ol(
                [
                    html.Li(
                        f"{local(s.started_at, s.timezone)} \u2192 "
                        f"{local(s.ended_at, s.timezone) if s.ended_at else 'now'}: "
                        f"{s.site} / {s.zone}, {s.items} item(s)"
                    )
                    for s in t.timeline
                ]
                or [html.Li("no custody recorded", className="muted")],
                className="timeline",
                id="trace-timeline",
            ),
        ],
        className="panel",
    )


def _exposures(t: BatchTrace) -> html.Div:
    return html.Div(
        [
            html.H3("Exposures"),
            html.Ul(
                [
                    html.Li(
                        f"{e.excursion} in {e.zone} from {local(e.started_at, e.timezone)}: "
                        f"{duration(e.minutes)}, {celsius(e.min_value)} to {celsius(e.max_value)}, "
                        f"{e.degree_minutes:.0f} \u00b0C\u00b7min"
                    )
                    for e in t.exposures
                ]
                or [html.Li("none recorded", className="muted")],
                id="trace-exposures",
            ),
        ],
        className="panel",
    )


@callback(
    Output("trace-recall-message", "children"),
    Output("trace-changed", "data"),
    Input("trace-recall", "n_clicks"),
    State("trace-recall-reason", "value"),
    State("trace-recall-user-id", "value"),
    State("trace-recall-password", "value"),
    State("trace-batch", "data"),
    State("trace-changed", "data"),
    prevent_initial_call=True,
)
def start_recall(
    clicks: int,
    reason: str | None,
    user_id: str | None,
    password: str | None,
    batch_id: int | None,
    changed: int,
) -> Any:
    """Open a signed recall of the batch shown, as the logged-in QA user."""
    user = require("recall")
    if not clicks or batch_id is None:
        return no_update, no_update
    if not (reason or "").strip() or not password:
        return html.Span("A recall needs a reason and your password.", className="error"), no_update
    user_id = (user_id or "").strip() or None
    if user_id is None and services.accounts().needs_user_id(user):
        said = "The first signature of a session needs your user ID too."
        return html.Span(said, className="error"), no_update
    try:
        text = services.control_room().act(
            user, reason, recalls.start, batch_id, user.username, password, reason or "", user_id
        )
    except SignatureRefused as exc:
        return html.Span(f"Not signed: {exc}", className="error"), no_update
    except (ValueError, LookupError) as exc:
        return html.Span(f"Not started: {exc}", className="error"), no_update
    return html.Span(f"\u2713 {text}", className="success", id="trace-recalled"), (changed or 0) + 1
