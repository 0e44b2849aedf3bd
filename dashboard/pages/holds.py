"""Holds: frozen batches with their exposure, remaining budget and MKT; QA releases or
rejects them with an electronic signature (password again, meaning shown)."""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from cloud.service_layer.signatures import SignatureRefused
from cloud.views import holds as hold_views
from cloud.views.control_room import UserView
from dashboard import services
from dashboard.auth import guarded, may, require
from dashboard.present import aria, badge, celsius, duration, local

dash.register_page(__name__, path="/holds", name="Holds", order=3)


@guarded
def layout(user: UserView, **_q: str) -> html.Div:
    signer = may("disposition", user)
    return html.Div(
        [
            html.H1("Holds: frozen batches"),
            html.P(
                "Release and reject need QA's electronic signature."
                if signer
                else "Only QA can release or reject a held batch; you can look.",
                className="muted",
            ),
            dcc.Store(id="holds-pending"),
            dcc.Store(id="holds-changed", data=0),
            html.Div(id="holds-message", role="status"),
            html.Div(id="holds-table", className="panel"),
            _dialog(user) if signer else html.Div(),
        ]
    )


def _dialog(user: UserView) -> html.Div:
    return html.Div(
        id="holds-dialog",
        className="dialog-backdrop hidden",
        children=html.Div(
            className="dialog",
            role="dialog",
            **aria(modal="true", labelledby="holds-dialog-title"),
            children=[
                html.H2("Electronic signature", id="holds-dialog-title"),
                html.Div(id="holds-dialog-record"),
                html.Div(id="holds-dialog-meaning", className="meaning"),
                html.P(
                    f"Signing as {user.full_name} ({user.username}). Your signature, with the "
                    f"date and time and this meaning, goes into the audit trail.",
                    className="muted",
                ),
                html.Label("Reason", htmlFor="holds-reason"),
                dcc.Textarea(id="holds-reason", style={"width": "100%", "height": "4rem"}),
                # 21 CFR 11.200: the first signing of a session asks for both components.
                html.Div(
                    [
                        html.Label("User ID", htmlFor="holds-user-id"),
                        dcc.Input(id="holds-user-id", type="text", autoComplete="username"),
                    ],
                    id="holds-user-id-row",
                    style=_shown(services.accounts().needs_user_id(user)),
                ),
                html.Label("Password (again)", htmlFor="holds-password"),
                dcc.Input(id="holds-password", type="password", autoComplete="current-password"),
                html.Div(id="holds-dialog-error", className="error", role="alert"),
                html.Div(
                    [
                        html.Button("Sign", id="holds-sign", className="primary", n_clicks=0),
                        html.Button("Cancel", id="holds-cancel", n_clicks=0),
                    ],
                    className="toolbar",
                ),
            ],
        ),
    )


@callback(Output("holds-table", "children"), Input("holds-changed", "data"))
def table(_changed: int) -> Any:
    user = require()
    rows = services.control_room().read(hold_views.frozen_batches)
    if not rows:
        return html.P("No batch is frozen. \u2713", className="success")
    signer = may("disposition", user)
    header = [
        "Batch",
        "Status",
        "Why",
        "Exposure",
        "Range seen",
        "Budget left",
        "MKT",
        "Held since",
    ] + (["Decision"] if signer else [])
    return html.Table(
        [
            html.Tr([html.Th(h) for h in header]),
            *[
                html.Tr(
                    [
                        html.Td(
                            [
                                dcc.Link(r.lot, href=f"/trace?q={r.lot}"),
                                html.Div(f"{r.product} ({r.gtin})", className="muted"),
                                html.Div(f"expires {r.expires_on}", className="muted"),
                            ]
                        ),
                        html.Td(
                            [
                                badge("held", "HELD"),
                                html.Div(f"hold {r.hold_id}: {r.status}", className="muted"),
                            ]
                        ),
                        html.Td(
                            [
                                html.Div(r.excursion),
                                html.Div(r.reason, className="muted"),
                                *(  # evidence from overdue sensors: used, and said
                                    [html.Div(f"Evidence: {r.evidence}", className="state-warning")]
                                    if r.evidence
                                    else []
                                ),
                            ]
                        ),
                        html.Td(
                            [
                                html.Div(duration(r.exposure_minutes)),
                                html.Div(
                                    ", ".join(
                                        f"{level} {duration(minutes)}"
                                        for level, minutes in sorted(r.level_minutes.items())
                                    ),
                                    className="muted",
                                ),
                                html.Div(
                                    f"{r.degree_minutes:.0f} \u00b0C\u00b7min, "
                                    f"{r.exposures} exposure(s)",
                                    className="muted",
                                ),
                            ],
                            className="num",
                        ),
                        html.Td(f"{celsius(r.min_value)} to {celsius(r.max_value)}"),
                        html.Td(
                            [
                                html.Div(duration(r.remaining_min)),
                                html.Div(
                                    f"of {duration(r.budget_min)}"
                                    if r.budget_min is not None
                                    else "no budget set",
                                    className="muted",
                                ),
                            ],
                            className="num",
                        ),
                        html.Td(celsius(r.mkt, 2), className="num"),
                        html.Td(local(r.opened_at, r.timezone)),
                        *(
                            [
                                html.Td(
                                    [
                                        html.Button(
                                            "Release\u2026",
                                            id={
                                                "type": "holds-decide",
                                                "hold": r.hold_id,
                                                "decision": "release",
                                            },
                                            n_clicks=0,
                                        ),
                                        html.Button(
                                            "Reject\u2026",
                                            id={
                                                "type": "holds-decide",
                                                "hold": r.hold_id,
                                                "decision": "reject",
                                            },
                                            n_clicks=0,
                                            className="danger",
                                        ),
                                    ],
                                    className="toolbar",
                                )
                            ]
                            if signer
                            else []
                        ),
                    ],
                    id=f"holds-row-{r.hold_id}",
                    className=f"hold-of-{r.lot}",
                )
                for r in rows
            ],
        ],
        className="grid",
        id="holds-grid",
    )


@callback(
    Output("holds-pending", "data"),
    Output("holds-dialog", "className"),
    Output("holds-dialog-record", "children"),
    Output("holds-dialog-meaning", "children"),
    Output("holds-dialog-error", "children"),
    Output("holds-password", "value"),
    Output("holds-reason", "value"),
    Output("holds-changed", "data"),
    Output("holds-message", "children"),
    Output("holds-user-id-row", "style"),
    Input({"type": "holds-decide", "hold": ALL, "decision": ALL}, "n_clicks"),
    Input("holds-cancel", "n_clicks"),
    Input("holds-sign", "n_clicks"),
    State("holds-pending", "data"),
    State("holds-user-id", "value"),
    State("holds-password", "value"),
    State("holds-reason", "value"),
    State("holds-changed", "data"),
    prevent_initial_call=True,
)
def dialog(
    clicks: list[int],
    _cancel: int,
    _sign: int,
    pending: dict[str, Any] | None,
    user_id: str | None,
    password: str | None,
    reason: str | None,
    changed: int,
) -> tuple[Any, ...]:
    """Open the signature dialog for a decision, cancel it, or sign."""
    step = _dialog_step(clicks, pending, user_id, password, reason, changed)
    needed = services.accounts().needs_user_id(require("disposition"))
    return (*step, _shown(needed))


def _shown(needed: bool) -> dict[str, str]:
    return {} if needed else {"display": "none"}


def _dialog_step(
    clicks: list[int],
    pending: dict[str, Any] | None,
    user_id: str | None,
    password: str | None,
    reason: str | None,
    changed: int,
) -> tuple[Any, ...]:
    user = require("disposition")
    trigger = ctx.triggered_id
    keep = (no_update,) * 9
    if isinstance(trigger, dict):
        if not any(clicks):
            return keep
        rows = {r.hold_id: r for r in services.control_room().read(hold_views.frozen_batches)}
        row = rows.get(trigger["hold"])
        if row is None:
            return keep
        meaning = hold_views.DECISIONS[trigger["decision"]]
        return (
            {"hold": row.hold_id, "decision": trigger["decision"], "lot": row.lot},
            "dialog-backdrop",
            html.P(
                [
                    html.Strong(f"{trigger['decision'].capitalize()} batch {row.lot}"),
                    f" \u00b7 {row.product} ({row.gtin}) \u00b7 {row.excursion}",
                ]
            ),
            [html.Strong(f"Meaning: {meaning.capitalize()}. "), hold_views.MEANING_TEXT[meaning]],
            "",
            "",
            "",
            no_update,
            no_update,
        )
    if trigger == "holds-cancel" or not pending:
        return (None, "dialog-backdrop hidden", "", "", "", "", "", no_update, no_update)
    if not password or not (reason or "").strip():
        return (*keep[:4], "Give a reason and your password.", *keep[5:])
    if not (user_id or "").strip() and services.accounts().needs_user_id(user):
        return (*keep[:4], "The first signature of a session needs your user ID too.", *keep[5:])
    try:
        hold = services.control_room().act(
            user,
            reason,
            hold_views.disposition,
            pending["hold"],
            pending["decision"],
            user.username,
            password,
            reason or "",
            (user_id or "").strip() or None,
        )
    except SignatureRefused as exc:
        return (*keep[:4], f"Not signed: {exc}", "", *keep[6:])
    except (ValueError, LookupError) as exc:
        return (*keep[:4], f"Not done: {exc}", *keep[5:])
    done = "released" if pending["decision"] == "release" else "rejected"
    return (
        None,
        "dialog-backdrop hidden",
        "",
        "",
        "",
        "",
        "",
        (changed or 0) + 1,
        html.P(
            f"\u2713 Batch {pending['lot']} {done}; signature {hold.signature_id} recorded.",
            className="success",
            id="holds-done",
        ),
    )
