"""Expiry: batches by tier per site (dates in the site's own day), and the FEFO view."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from cloud.domain.clock import utcnow
from cloud.views import expiry as expiry_views
from cloud.views.control_room import UserView
from dashboard import services
from dashboard.auth import guarded, require
from dashboard.present import badge

dash.register_page(__name__, path="/expiry", name="Expiry", order=4)
TIER_TEXT = {
    "expired": "EXPIRED",
    "7": "\u2264 7 DAYS",
    "30": "\u2264 30 DAYS",
    "60": "\u2264 60 DAYS",
}
TIER_STATE = {"expired": "expired", "7": "alarm", "30": "warning"}


@guarded
def layout(_user: UserView, **_q: str) -> html.Div:
    room = services.control_room()
    lines = room.read(expiry_views.order_lines)
    return html.Div(
        [
            html.H1("Expiry"),
            html.Div(_board(room.read(expiry_views.expiry_board, utcnow())), id="expiry-board"),
            html.Div(
                [
                    html.H2("FEFO: first expired, first out"),
                    dcc.Dropdown(
                        id="expiry-line",
                        options=[{"label": label, "value": line} for line, label in lines],
                        value=lines[0][0] if lines else None,
                        placeholder="order line",
                        className="dash-dropdown",
                    ),
                    html.Div(id="expiry-fefo"),
                ],
                className="panel",
            ),
        ]
    )


def _board(rows: list[Any]) -> list[Any]:
    if not rows:
        return [html.P("No batch is in an expiry tier. \u2713", className="success")]
    by_site: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_site[row.site].append(row)
    sections = []
    for site, lines in sorted(by_site.items()):
        counts: dict[str, int] = defaultdict(int)
        for line in lines:
            counts[line.tier] += 1
        summary = " \u00b7 ".join(f"{TIER_TEXT.get(t, t)}: {n}" for t, n in sorted(counts.items()))
        sections.append(
            html.Div(
                [
                    html.H2(site),
                    html.P(summary, className="muted"),
                    html.Table(
                        [
                            html.Tr(
                                [
                                    html.Th(h)
                                    for h in (
                                        "Tier",
                                        "Lot",
                                        "Product",
                                        "Expires",
                                        "Days left",
                                        "Items here",
                                    )
                                ]
                            ),
                            *[
                                html.Tr(
                                    [
                                        html.Td(
                                            badge(
                                                TIER_STATE.get(r.tier, "info"),
                                                TIER_TEXT.get(r.tier, r.tier),
                                            )
                                        ),
                                        html.Td(dcc.Link(r.lot, href=f"/trace?q={r.lot}")),
                                        html.Td(f"{r.product} ({r.gtin})"),
                                        html.Td(r.expires_on.isoformat()),
                                        html.Td(f"{r.days_left} d", className="num"),
                                        html.Td(str(r.items), className="num"),
                                    ]
                                )
                                for r in lines
                            ],
                        ],
                        className="grid",
                    ),
                ],
                className="panel",
            )
        )
    return sections


@callback(Output("expiry-fefo", "children"), Input("expiry-line", "value"))
def fefo(line_id: int | None) -> Any:
    require()
    if line_id is None:
        return html.P("No order lines yet.", className="muted")
    try:
        suggestion = services.control_room().read(expiry_views.fefo, line_id, utcnow())
    except LookupError as exc:
        return html.P(str(exc), className="error")
    return [
        html.H3("Pick from"),
        html.Table(
            [
                html.Tr([html.Th(h) for h in ("Order", "Lot", "Expires", "Units")]),
                *[
                    html.Tr(
                        [
                            html.Td(str(i + 1), className="num"),
                            html.Td(p.lot),
                            html.Td(p.expires_on.isoformat()),
                            html.Td(str(p.quantity), className="num"),
                        ]
                    )
                    for i, p in enumerate(suggestion.picks)
                ],
            ],
            className="grid",
            id="expiry-picks",
        ),
        html.P(
            f"\u25b2 short by {suggestion.short_by} unit(s)" if suggestion.short_by else "",
            className="error",
        ),
        *(
            [
                html.H3("Not picked"),
                html.Ul([html.Li(f"{s.lot}: {s.reason}") for s in suggestion.skipped]),
            ]
            if suggestion.skipped
            else []
        ),
    ]
