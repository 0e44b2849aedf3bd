"""Alerts: the QA queue (severity, age, escalation level); acknowledge, comment, assign."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from flask import current_app

from cloud.domain.clock import utcnow
from cloud.views import alerts as alert_views
from cloud.views.control_room import UserView
from dashboard import services
from dashboard.auth import guarded, may, require
from dashboard.present import age, badge, local

dash.register_page(__name__, path="/alerts", name="Alerts", order=2)
ACTIONS = {
    "acknowledge": "acknowledge",
    "resolve": "resolve",
    "comment": "comment",
    "assign": "assign",
}


@guarded
def layout(user: UserView, **_q: str) -> html.Div:
    return html.Div(
        [
            html.H1("Alerts"),
            dcc.Interval(id="alerts-tick", interval=current_app.config["COLDCHAIN_REFRESH_MS"]),
            dcc.Store(id="alerts-selected"),
            dcc.Store(id="alerts-changed", data=0),
            dcc.Store(id="alerts-digest"),
            html.Div(
                [
                    html.Div(id="alerts-table", className="panel"),
                    html.Div(id="alerts-detail", className="panel"),
                ],
                className="columns",
            ),
        ]
    )


@callback(
    Output("alerts-table", "children"),
    Output("alerts-digest", "data"),
    Input("alerts-tick", "n_intervals"),
    Input("alerts-changed", "data"),
    State("alerts-digest", "data"),
)
def table(_n: int | None, _changed: int, digest: str | None) -> tuple[Any, Any]:
    """The queue, sent again only when something in it changed."""
    require()
    rows = services.control_room().read(alert_views.alert_queue)
    now = utcnow()
    ages = [age(now, r.opened_at) for r in rows]
    fresh = hashlib.blake2b(
        json.dumps([repr(r) for r in rows] + ages).encode(), digest_size=8
    ).hexdigest()
    if fresh == digest:
        return no_update, no_update
    if not rows:
        return html.P("No open alerts. \u2713", className="success"), fresh
    header = ("Severity", "Alert", "State", "Age", "Escalation", "Assignee", "")
    return (
        html.Table(
            [
                html.Tr([html.Th(h) for h in header]),
                *[
                    html.Tr(
                        [
                            html.Td(badge(r.severity)),
                            html.Td(
                                [
                                    html.Div(r.title),
                                    dcc.Link(r.subject, href=r.link, className="muted")
                                    if r.link
                                    else html.Div(r.subject, className="muted"),
                                ]
                            ),
                            html.Td(badge(r.state)),
                            html.Td(
                                [
                                    html.Div(a),
                                    html.Div(local(r.opened_at, r.timezone), className="muted"),
                                ]
                            ),
                            html.Td(f"level {r.escalation_level}", className="num"),
                            html.Td(r.assignee or "--"),
                            html.Td(
                                html.Button(
                                    "Open",
                                    id={"type": "alerts-open", "alert": r.id},
                                    n_clicks=0,
                                )
                            ),
                        ],
                        id=f"alerts-row-{r.id}",
                    )
                    for r, a in zip(rows, ages, strict=True)
                ],
            ],
            className="grid",
            id="alerts-queue",
        ),
        fresh,
    )


@callback(
    Output("alerts-selected", "data"),
    Input({"type": "alerts-open", "alert": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def select(clicks: list[int]) -> Any:
    if not ctx.triggered_id or not any(clicks):
        return no_update
    return ctx.triggered_id["alert"]


@callback(
    Output("alerts-detail", "children"),
    Input("alerts-selected", "data"),
    Input("alerts-changed", "data"),
)
def detail(alert_id: int | None, _changed: int) -> Any:
    user = require()
    if alert_id is None:
        return html.P("Open an alert to act on it.", className="muted")
    rows = {r.id: r for r in services.control_room().read(alert_views.alert_queue, True)}
    alert = rows.get(alert_id)
    if alert is None:
        return html.P(f"Alert {alert_id} is no longer in the queue.", className="muted")
    actions: list[Any] = []
    if alert.state == "open" and may("acknowledge", user):
        actions.append(_button("acknowledge", "Acknowledge", "primary"))
    if alert.state != "resolved" and may("resolve", user):
        actions.append(_button("resolve", "Resolve", ""))
    assign: list[Any] = []
    if alert.state != "resolved" and may("assign", user):
        people = services.control_room().users()
        assign = [
            html.H3("Assign"),
            html.Div(
                [
                    dcc.Dropdown(
                        id={"type": "alerts-field", "field": "assignee"},
                        options=[{"label": "nobody", "value": ""}]
                        + [
                            {"label": f"{p.full_name} ({p.role})", "value": p.username}
                            for p in people
                        ],
                        value="",
                        clearable=False,
                        className="dash-dropdown",
                    ),
                    _button("assign", "Assign", ""),
                ],
                className="toolbar",
            ),
        ]
    comment: list[Any] = []
    if alert.state != "resolved" and may("comment", user):
        comment = [
            html.H3("Comment"),
            dcc.Textarea(
                id={"type": "alerts-field", "field": "comment"},
                style={"width": "100%", "height": "4rem"},
                placeholder="What you found or did",
            ),
            _button("comment", "Add comment", ""),
        ]
    return [
        html.H2([badge(alert.severity), f" {alert.title}"]),
        html.P(
            [
                badge(alert.state),
                f" \u00b7 {alert.subject} \u00b7 opened {local(alert.opened_at, alert.timezone)} "
                f"\u00b7 escalation level {alert.escalation_level}",
            ]
        ),
        html.P(
            f"Acknowledged by {alert.acknowledged_by} at "
            f"{local(alert.acknowledged_at, alert.timezone)}"
            if alert.acknowledged_by
            else "Not acknowledged yet.",
            className="muted",
            id="alerts-ack-by",
        ),
        html.P(f"Assigned to {alert.assignee or 'nobody'}.", className="muted"),
        html.Div(actions, className="toolbar"),
        *assign,
        html.H3("Comments"),
        html.Ul(
            [
                html.Li(f"{local(c.at, alert.timezone)} \u00b7 {c.author}: {c.text}")
                for c in alert.comments
            ]
            or [html.Li("none yet", className="muted")],
            id="alerts-comments",
        ),
        *comment,
        html.Div(id="alerts-message", role="status"),
    ]


def _button(action: str, label: str, kind: str) -> html.Button:
    return html.Button(
        label, id={"type": "alerts-action", "action": action}, n_clicks=0, className=kind
    )


@callback(
    Output("alerts-changed", "data"),
    Input({"type": "alerts-action", "action": ALL}, "n_clicks"),
    State({"type": "alerts-field", "field": ALL}, "value"),
    State("alerts-selected", "data"),
    State("alerts-changed", "data"),
    prevent_initial_call=True,
)
def act(clicks: list[int], values: list[Any], alert_id: int | None, changed: int) -> Any:
    """Take the clicked action on the selected alert, as the logged-in user."""
    if not ctx.triggered_id or not any(clicks) or alert_id is None:
        return no_update
    action = ctx.triggered_id["action"]
    user = require(ACTIONS[action])
    fields = {s["id"]["field"]: v for s, v in zip(ctx.states_list[0], values, strict=True)}
    room = services.control_room()
    if action == "acknowledge":
        room.act(
            user,
            "acknowledged in the control room",
            alert_views.acknowledge_alert,
            alert_id,
            user.username,
        )
    elif action == "resolve":
        room.act(
            user, "resolved in the control room", alert_views.resolve_alert, alert_id, user.username
        )
    elif action == "comment":
        text = (fields.get("comment") or "").strip()
        if not text:
            return no_update
        room.act(user, None, alert_views.comment_alert, alert_id, user.username, text)
    elif action == "assign":
        room.act(
            user,
            "assigned in the control room",
            alert_views.assign_alert,
            alert_id,
            fields.get("assignee") or None,
        )
    return (changed or 0) + 1
