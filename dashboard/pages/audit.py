"""Audit log: filterable entries with signature details (secrets never shown), and the keyed
chain's integrity."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from cloud.views.audit import actors, audit_entries, audited_tables, integrity
from cloud.views.control_room import UserView
from dashboard import services
from dashboard.auth import guarded, require
from dashboard.present import badge, local

dash.register_page(__name__, path="/audit", name="Audit log", order=8)


@guarded
def layout(_user: UserView, table: str | None = None, **_q: str) -> html.Div:
    room = services.control_room()
    return html.Div(
        [
            html.H1("Audit log"),
            html.Div(id="audit-integrity", className="panel"),
            html.Div(
                [
                    dcc.Dropdown(
                        id="audit-table",
                        options=[{"label": t, "value": t} for t in room.read(audited_tables)],
                        value=table,
                        placeholder="every record type",
                        className="dash-dropdown",
                    ),
                    dcc.Dropdown(
                        id="audit-actor",
                        options=[{"label": a, "value": a} for a in room.read(actors)],
                        placeholder="every user",
                        className="dash-dropdown",
                    ),
                    dcc.Input(
                        id="audit-text",
                        type="text",
                        placeholder="record key or reason",
                        debounce=True,
                    ),
                    dcc.Checklist(
                        id="audit-signed",
                        options=[{"label": " signatures only", "value": "signed"}],
                        value=[],
                    ),
                    html.Button("Verify chain", id="audit-verify", n_clicks=0),
                ],
                className="toolbar",
            ),
            html.Div(id="audit-entries"),
        ]
    )


@callback(Output("audit-integrity", "children"), Input("audit-verify", "n_clicks"))
def verify(_n: int) -> Any:
    require()
    room = services.control_room()
    report = room.read(integrity, room.audit_key)
    notes = [html.Div(note, className="muted") for note in report.notes]
    if report.intact:
        checked = "every seal, link and sequence number matches"
        if room.audit_key is None:
            checked = "sequence and seals present (seals not recomputed: no audit key here)"
        return [
            badge("intact", "CHAIN INTACT"),
            f" all {report.checked} entries verified: {checked}.",
            *notes,
        ]
    return [badge("broken", "CHAIN BROKEN"), f" {report.problem}", *notes]


@callback(
    Output("audit-entries", "children"),
    Input("audit-table", "value"),
    Input("audit-actor", "value"),
    Input("audit-text", "value"),
    Input("audit-signed", "value"),
)
def entries(table: str | None, actor: str | None, text: str | None, signed: list[str]) -> Any:
    require()
    rows = services.control_room().read(
        audit_entries, table, actor, (text or "").strip() or None, None, None, bool(signed)
    )
    if not rows:
        return html.P("No entries match.", className="muted")
    return html.Table(
        [
            html.Tr(
                [
                    html.Th(h)
                    for h in ("#", "When (UTC)", "Who", "Action", "Record", "Reason", "Changes")
                ]
            ),
            *[
                html.Tr(
                    [
                        html.Td(str(r.id), className="num"),
                        html.Td(local(r.at, "UTC", "%Y-%m-%d %H:%M:%S")),
                        html.Td(
                            f"{r.actor} (outside the application)"
                            if r.outside_application
                            else r.actor
                        ),
                        html.Td(r.action),
                        html.Td(f"{r.table} {r.key}"),
                        html.Td(r.reason or "--"),
                        html.Td(
                            [
                                html.Div(r.changes, className="muted"),
                                *[
                                    html.Pre(m, className="manifest audit-signature")
                                    for m in r.signatures
                                ],
                            ]
                        ),
                    ]
                )
                for r in rows
            ],
        ],
        className="grid",
        id="audit-grid",
    )
