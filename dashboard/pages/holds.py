"""Holds: frozen batches with their exposure, remaining budget and MKT; QA releases or
rejects them with an electronic signature (password again, meaning shown). A high-risk hold
takes two QA: one signs the review, another the approval (or rejection)."""

from __future__ import annotations

from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from cloud.service_layer.signatures import SignatureRefused
from cloud.views import holds as hold_views
from cloud.views.control_room import UserView
from dashboard import services
from dashboard.auth import guarded, may, require
from dashboard.present import aria, badge, budget_cell, celsius, duration, local

dash.register_page(__name__, path="/holds", name="Holds", order=3)


@guarded
def layout(user: UserView, **_q: str) -> html.Div:
    signer = may("disposition", user)
    return html.Div(
        [
            html.H1("Holds: frozen batches"),
            html.P(
                "Release and reject need QA's electronic signature; a high-risk hold takes two "
                "QA: one signs the review, another the approval or rejection."
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


def _two_person(r: hold_views.HoldRow) -> list[Any]:
    """Why two QA must sign, who reviewed, and the signatures given so far."""
    if not r.two_person:
        return []
    shown: list[Any] = [
        html.Div(f"Two QA signatures: {', '.join(r.two_person)}", className="state-warning")
    ]
    if r.reviewed_by_name:
        shown.append(
            html.Div(
                f"Reviewed by {r.reviewed_by_name}, awaiting approval",
                className="muted",
                id=f"holds-reviewed-{r.hold_id}",
            )
        )
    shown += [
        html.Div(
            f"{s.meaning.capitalize()}: {s.full_name} ({s.username}), "
            f"{local(s.signed_at, r.timezone)}",
            className="muted signature-line",
        )
        for s in r.signatures
    ]
    return shown


def _button(r: hold_views.HoldRow, label: str, decision: str, danger: bool = False) -> Any:
    return html.Button(
        label,
        id={"type": "holds-decide", "hold": r.hold_id, "decision": decision},
        n_clicks=0,
        className="danger" if danger else "",
    )


def _buttons(r: hold_views.HoldRow, user: UserView) -> list[Any]:
    """The decisions this QA may sign on the hold: two people sign a two-person hold."""
    if not r.two_person:
        return [_button(r, "Release\u2026", "release"), _button(r, "Reject\u2026", "reject", True)]
    if r.reviewed_by is None:
        return [_button(r, "Review\u2026", "review")]
    if r.reviewed_by == user.username:
        return [html.Span("You reviewed it: another QA approves", className="muted")]
    return [
        _button(r, "Approve release\u2026", "release"),
        _button(r, "Reject\u2026", "reject", True),
    ]


@callback(Output("holds-table", "children"), Input("holds-changed", "data"))
def table(_changed: int) -> Any:
    user = require()
    rows = services.control_room().read(hold_views.frozen_batches, services.two_person_reasons())
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
                                *_two_person(r),
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
                        budget_cell(r.remaining_min, r.budget_min),
                        html.Td(celsius(r.mkt, 2), className="num"),
                        html.Td(local(r.opened_at, r.timezone)),
                        *([html.Td(_buttons(r, user), className="toolbar")] if signer else []),
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
        found = services.control_room().read(
            hold_views.frozen_batches, services.two_person_reasons()
        )
        row = next((r for r in found if r.hold_id == trigger["hold"]), None)
        if row is None:
            return keep
        meaning = row.meaning_of(trigger["decision"])
        return (
            {
                "hold": row.hold_id,
                "decision": trigger["decision"],
                "lot": row.lot,
                "meaning": meaning,
            },
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
            pending.get("meaning"),
            services.two_person_reasons(),
            (user_id or "").strip() or None,
        )
    except SignatureRefused as exc:
        return (*keep[:4], f"Not signed: {exc}", "", *keep[6:])
    except (ValueError, LookupError) as exc:
        return (*keep[:4], f"Not done: {exc}", *keep[5:])
    done = {
        "release": "released",
        "reject": "rejected",
        "review": "reviewed, awaiting approval by another QA",
    }[pending["decision"]]
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
            f"\u2713 Batch {pending['lot']} {done}; "
            + (
                "your review signature is recorded."
                if hold.signature_id is None
                else f"signature {hold.signature_id} recorded."
            ),
            className="success",
            id="holds-done",
        ),
    )
