"""Transfers and shipments: on the road with the truck compartment's live temperature,
release gate results before loading, QA's signed release for shipment of cold goods (the
batches' temperature evidence shown before signing), and discrepancies found on receipt."""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from flask import current_app

from cloud.domain.clock import utcnow
from cloud.service_layer.release_gate import LoadRefused
from cloud.service_layer.signatures import SignatureRefused
from cloud.views import shipping_release as release_views
from cloud.views.control_room import UserView
from cloud.views.transfers import Movement, movements
from dashboard import services
from dashboard.auth import guarded, may, require
from dashboard.present import age, aria, badge, budget_cell, celsius, local

dash.register_page(__name__, path="/transfers", name="Transfers & shipments", order=5)


@guarded
def layout(user: UserView, **_q: str) -> html.Div:
    return html.Div(
        [
            html.H1("Transfers and shipments"),
            dcc.Store(id="transfers-pending"),
            html.Div(id="transfers-message", role="status"),
            _dialog(user) if may("shipment_release", user) else html.Div(),
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
    user = require()
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
        "Release for shipment",
        "Receipt",
    )
    signer = may("shipment_release", user)
    return html.Table(
        [html.Tr([html.Th(h) for h in header]), *[_row(m, now, signer) for m in rows]],
        className="grid",
        id="transfers-grid",
    )


def _release(m: Movement, signer: bool) -> Any:
    """Who released the cold goods for shipment, or that QA must (a button for QA)."""
    if m.released_by:
        return [badge("ok", "RELEASED"), html.Div(f"by {m.released_by}", className="muted")]
    if not m.release_needed:
        return html.Span("--", className="muted")
    button = html.Button(
        "Release for shipment\u2026",
        id={"type": "transfers-release", "kind": m.kind, "id": m.id},
        n_clicks=0,
    )
    return [badge("warning", "QA RELEASE NEEDED"), *([html.Div(button)] if signer else [])]


def _row(m: Movement, now: Any, signer: bool = False) -> html.Tr:
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
            html.Td(_release(m, signer)),
            html.Td(receipt),
        ],
        id=f"transfers-row-{m.id}",
    )


def _dialog(user: UserView) -> html.Div:
    return html.Div(
        id="transfers-dialog",
        className="dialog-backdrop hidden",
        children=html.Div(
            className="dialog wide",
            role="dialog",
            **aria(modal="true", labelledby="transfers-dialog-title"),
            children=[
                html.H2("Release for shipment: electronic signature", id="transfers-dialog-title"),
                html.Div(id="transfers-dialog-record"),
                html.Div(id="transfers-evidence"),
                html.Div(
                    [html.Strong("Meaning: Shipment release. "), release_views.MEANING_TEXT],
                    className="meaning",
                ),
                html.P(
                    f"Signing as {user.full_name} ({user.username}). Your signature, with the "
                    "date and time, this meaning and the evidence above, goes into the audit "
                    "trail.",
                    className="muted",
                ),
                html.Label("Reason", htmlFor="transfers-reason"),
                dcc.Textarea(id="transfers-reason", style={"width": "100%", "height": "3rem"}),
                html.Label(
                    "User ID (the first signature of a session needs it)",
                    htmlFor="transfers-user-id",
                ),
                dcc.Input(id="transfers-user-id", type="text", autoComplete="username"),
                html.Label("Password (again)", htmlFor="transfers-password"),
                dcc.Input(
                    id="transfers-password", type="password", autoComplete="current-password"
                ),
                html.Div(id="transfers-dialog-error", className="error", role="alert"),
                html.Div(
                    [
                        html.Button("Sign", id="transfers-sign", className="primary", n_clicks=0),
                        html.Button("Cancel", id="transfers-cancel", n_clicks=0),
                    ],
                    className="toolbar",
                ),
            ],
        ),
    )


def _evidence(card: release_views.ReleaseCard) -> html.Table:
    """Each batch's temperature evidence: budget left, MKT, open excursions."""
    header = ("Batch", "Class", "Items", "Budget left", "MKT", "Open excursions")
    return html.Table(
        [
            html.Tr([html.Th(h) for h in header]),
            *[
                html.Tr(
                    [
                        html.Td([html.Strong(b.lot), html.Div(b.product, className="muted")]),
                        html.Td(b.temperature_class),
                        html.Td(str(b.items), className="num"),
                        budget_cell(b.remaining_budget_min, b.budget_min),
                        html.Td(celsius(b.mkt_c, 2), className="num"),
                        html.Td(
                            html.Ul(
                                [
                                    html.Li(f"{e.level} {e.kind} in {e.zone_id} (#{e.id})")
                                    for e in b.open_excursions
                                ]
                            )
                            if b.open_excursions
                            else html.Span("none", className="muted")
                        ),
                    ],
                    className=f"evidence-of-{b.lot}",
                )
                for b in card.evidence
            ],
        ],
        className="grid",
        id="transfers-evidence-grid",
    )


@callback(
    Output("transfers-pending", "data"),
    Output("transfers-dialog", "className"),
    Output("transfers-dialog-record", "children"),
    Output("transfers-evidence", "children"),
    Output("transfers-dialog-error", "children"),
    Output("transfers-password", "value"),
    Output("transfers-reason", "value"),
    Output("transfers-message", "children"),
    Input({"type": "transfers-release", "kind": ALL, "id": ALL}, "n_clicks"),
    Input("transfers-cancel", "n_clicks"),
    Input("transfers-sign", "n_clicks"),
    State("transfers-pending", "data"),
    State("transfers-user-id", "value"),
    State("transfers-password", "value"),
    State("transfers-reason", "value"),
    prevent_initial_call=True,
)
def release_dialog(
    clicks: list[int],
    _cancel: int,
    _sign: int,
    pending: dict[str, Any] | None,
    user_id: str | None,
    password: str | None,
    reason: str | None,
) -> tuple[Any, ...]:
    """Open the release dialog with the evidence, cancel it, or sign."""
    user = require("shipment_release")
    trigger = ctx.triggered_id
    keep = (no_update,) * 8
    if isinstance(trigger, dict):
        if not any(clicks):
            return keep
        try:
            card = services.control_room().read(
                release_views.release_of, trigger["kind"], trigger["id"]
            )
        except LookupError:
            return keep
        return (
            {"kind": card.kind, "id": card.id},
            "dialog-backdrop",
            html.P([html.Strong(f"Release {card.movement} for shipment"), f" ({card.state})"]),
            _evidence(card),
            "",
            "",
            "",
            no_update,
        )
    if trigger == "transfers-cancel" or not pending:
        return (None, "dialog-backdrop hidden", "", "", "", "", "", no_update)
    if not password or not (reason or "").strip():
        return (*keep[:4], "Give a reason and your password.", *keep[5:])
    if not (user_id or "").strip() and services.accounts().needs_user_id(user):
        return (*keep[:4], "The first signature of a session needs your user ID too.", *keep[5:])
    try:
        card = services.control_room().act(
            user,
            reason,
            release_views.release,
            pending["kind"],
            pending["id"],
            user.username,
            password,
            reason or "",
            (user_id or "").strip() or None,
        )
    except SignatureRefused as exc:
        return (*keep[:4], f"Not signed: {exc}", "", *keep[6:])
    except (LoadRefused, ValueError, LookupError) as exc:
        return (*keep[:4], f"Not done: {exc}", *keep[5:])
    return (
        None,
        "dialog-backdrop hidden",
        "",
        "",
        "",
        "",
        "",
        html.P(
            f"\u2713 {card.movement} released for shipment; signature {card.signature_id} "
            "recorded.",
            className="success",
            id="transfers-done",
        ),
    )
