"""Overview: every site and zone, live; only the cards whose content changed are sent again."""

from __future__ import annotations

import hashlib
from typing import Any

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from flask import current_app

from cloud.domain.clock import utcnow
from cloud.views.control_room import Counts, GatewayNow, Overview, SiteNow, ZoneNow
from dashboard import services
from dashboard.auth import guarded, require
from dashboard.present import STATES, local, local_time

dash.register_page(__name__, path="/", name="Overview", order=0)

SEEN = "%d %b %H:%M:%S %Z"
TIERS = ("expired", "7", "30", "60")
TIER_LABEL = {
    "expired": "expired",
    "7": "\u2264 7 days",
    "30": "\u2264 30 days",
    "60": "\u2264 60 days",
}


@guarded
def layout(_user: Any, **_query: str) -> html.Div:
    now = utcnow()
    overview = services.control_room().overview(now)
    return html.Div(
        [
            dcc.Interval(id="overview-tick", interval=current_app.config["COLDCHAIN_REFRESH_MS"]),
            dcc.Store(id="overview-seen", data=digests(overview)),
            html.Div(
                [
                    html.Div(_counts(overview.counts), id="overview-counts", className="counts"),
                    html.Div(_updated(overview), id="overview-updated", className="updated"),
                ],
                className="overview-head",
            ),
            html.Div(
                id="overview-sites", className="sites", children=_sites(overview, render(overview))
            ),
        ]
    )


Cards = dict[str, dict[str, Any]]  # card key -> the card, drawn inside its slot


def digests(overview: Overview) -> dict[str, str]:
    """A short digest of what each card shows, keyed "z:<id>" / "g:<id>": the next tick
    sends again only the cards whose digest changed. Cards carry no clock-dependent text."""
    found = {}
    for site in overview.sites:
        for gateway in site.gateways:
            found[f"g:{gateway.id}"] = _digest((gateway, site.timezone))
        for zone in site.zones:
            found[f"z:{zone.id}"] = _digest((zone, site.timezone))
    return found


def _digest(value: Any) -> str:
    return hashlib.blake2b(repr(value).encode(), digest_size=8).hexdigest()


def render(overview: Overview, only: set[str] | None = None) -> Cards:
    """The content of every card (or of the `only` ones), keyed as in `digests`."""
    cards: Cards = {}
    for site in overview.sites:
        for gateway in site.gateways:
            key = f"g:{gateway.id}"
            if only is None or key in only:
                cards[key] = _el("Div", _gateway(gateway, site), f"gateway state-{gateway.state}")
        for zone in site.zones:
            key = f"z:{zone.id}"
            if only is None or key in only:
                cards[key] = _el("Div", _zone(zone, site), f"zone state-{zone.state}")
    return cards


@callback(
    Output("overview-counts", "children"),
    Output("overview-updated", "children"),
    Output({"type": "overview-zone", "zone": ALL}, "children"),
    Output({"type": "overview-gateway", "gateway": ALL}, "children"),
    Output("overview-sites", "children"),
    Output("overview-seen", "data"),
    Input("overview-tick", "n_intervals"),
    State("overview-seen", "data"),
)
def refresh(_n: int | None, seen: dict[str, str] | None) -> tuple[Any, ...]:
    """Send the counts, and only the cards whose content changed since the last tick."""
    require()
    overview = services.control_room().overview(utcnow())
    fresh = digests(overview)
    zone_ids = [o["id"]["zone"] for o in ctx.outputs_list[2]]
    gateway_ids = [o["id"]["gateway"] for o in ctx.outputs_list[3]]
    shown = {f"z:{z}" for z in zone_ids} | {f"g:{g}" for g in gateway_ids}
    if shown != set(fresh):  # a site, zone or gateway came or went: draw the sites again
        return (
            _counts(overview.counts),
            _updated(overview),
            [no_update] * len(zone_ids),
            [no_update] * len(gateway_ids),
            _sites(overview, render(overview)),
            fresh,
        )
    seen = seen or {}
    changed = {key for key, digest in fresh.items() if seen.get(key) != digest}
    cards = render(overview, changed)

    return (
        _counts(overview.counts),
        _updated(overview),
        [cards.get(f"z:{z}", no_update) for z in zone_ids],
        [cards.get(f"g:{g}", no_update) for g in gateway_ids],
        no_update,
        fresh if changed else no_update,
    )


def _updated(overview: Overview) -> str:
    return f"Updated {overview.at:%H:%M:%S} UTC \u00b7 times on cards are site-local"


def _counts(counts: Counts) -> list[html.Div]:
    def tile(label: str, value: int | None, state: str, href: str) -> html.Div:
        text = "n/a" if value is None else str(value)
        alert = "alarm" if state != "ok" and value else "ok"
        return html.Div(
            dcc.Link(
                [html.Div(text, className="count-value"), html.Div(label, className="count-label")],
                href=href,
            ),
            className=f"count state-{alert}",
            id=f"overview-count-{label.split()[0].lower()}",
        )

    tiles = [
        tile("Open excursions", counts.open_excursions, "alarm", "/alerts"),
        tile("Frozen batches", counts.frozen_batches, "alarm", "/holds"),
    ]
    if counts.expiry is None:
        tiles.append(tile("Expiry tiers (service not installed)", None, "ok", "/expiry"))
    else:
        for tier in TIERS:
            tiles.append(
                tile(
                    f"Expiring {TIER_LABEL[tier]}" if tier != "expired" else "Expired batches",
                    counts.expiry.get(tier, 0),
                    "alarm" if tier in ("expired", "7") else "ok",
                    "/expiry",
                )
            )
    return tiles


def _sites(overview: Overview, cards: Cards) -> list[html.Section]:
    if not overview.sites:
        return [html.Section("No gateway has reported yet.", className="site empty")]
    return [_site(site, cards) for site in overview.sites]


def _site(site: SiteNow, cards: Cards) -> html.Section:
    def card(kind: str, ident: str) -> html.Div:
        return html.Div(
            # a card is a serialised component, which Dash renders but its types do not list
            cards[f"{kind[0]}:{ident}"],  # type: ignore[arg-type]
            id={"type": f"overview-{kind}", kind: ident},
            className="slot",
        )

    return html.Section(
        className=f"site site-{site.kind}",
        id=f"overview-site-{site.id}",
        children=[
            html.H2([html.Span(site.kind.upper(), className="kind"), f" {site.name}"]),
            html.Div([card("gateway", g.id) for g in site.gateways], className="gateways"),
            html.Div([card("zone", z.id) for z in site.zones], className="zones"),
        ],
    )


# The cards are built as the renderer receives components (type, namespace, props): the
# overview draws hundreds of them, and this skips Dash's per-component checks in Python.
def _el(tag: str, children: Any, class_name: str, **props: Any) -> dict[str, Any]:
    return {
        "type": tag,
        "namespace": "dash_html_components",
        "props": {"children": children, "className": class_name, **props},
    }


def _link(text: str, href: str, class_name: str) -> dict[str, Any]:
    return {
        "type": "Link",
        "namespace": "dash_core_components",
        "props": {"children": text, "href": href, "className": class_name},
    }


def _badge(state: str) -> dict[str, Any]:
    shape, label = STATES.get(state, ("\u25cb", state.upper()))
    return _el(
        "Span",
        [_el("Span", shape, "shape", **{"aria-hidden": "true"}), f" {label}"],
        f"badge state-{state}",
    )


def _gateway(gateway: GatewayNow, site: SiteNow) -> list[Any]:
    if gateway.buffer_depth is None:
        backlog = "backlog --"
    else:
        backlog = f"backlog {gateway.buffer_depth} record(s)"
        if gateway.buffer_depth and gateway.oldest_unsent_age_s:
            backlog += f", oldest {gateway.oldest_unsent_age_s:.0f} s"
    return [
        _badge(gateway.state),
        f" {gateway.id} \u00b7 last seen {local(gateway.last_seen, site.timezone, SEEN)} "
        f"\u00b7 {backlog}",
    ]


def _zone(zone: ZoneNow, site: SiteNow) -> list[Any]:
    temperature = zone.temperature.text() if zone.temperature else "-- C"
    humidity = zone.humidity.text(0) if zone.humidity else "-- %RH"
    when = "no reading"
    if zone.temperature:
        when = f"taken {local_time(zone.temperature.taken_at, site.timezone)}"
    return [
        _el("Div", _badge(zone.state), "state"),
        _link(zone.name, f"/zone?zone={zone.id}", "zone-name"),
        _el("Div", temperature, "temperature"),
        _el("Div", humidity, "humidity"),
        _el("Div", f"limits {zone.limits} \u00b7 {zone.sensors} sensor(s)", "limits"),
        _el("Div", when, "taken"),
        *(
            [_el("Div", f"\u25b2 {zone.open_excursions} open excursion(s)", "excursions")]
            if zone.open_excursions
            else []
        ),
        *(
            [_el("Div", "\u26a0 CALIBRATION OVERDUE", "calibration")]
            if zone.calibration_overdue
            else []
        ),
    ]
