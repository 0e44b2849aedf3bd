"""The Dash control room: a thin shell around the pages in dashboard/pages/."""

from __future__ import annotations

from pathlib import Path

import dash
from dash import Dash, dcc, html

from cloud.db import make_engine, session_factory
from cloud.views import ControlRoom
from dashboard import services

HERE = Path(__file__).parent


def create_app(database_url: str, refresh_ms: int = 3000) -> Dash:
    """A control room on the database at `database_url`."""
    services.configure(ControlRoom(session_factory(make_engine(database_url))))
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        title="Cold-chain control room",
        update_title=None,
    )
    app.server.config["COLDCHAIN_REFRESH_MS"] = refresh_ms
    app.layout = html.Div(
        className="shell",
        children=[
            html.Header(
                className="topbar",
                children=[
                    html.Span("Cold-chain control room", className="brand"),
                    html.Nav(
                        [
                            dcc.Link(page["name"], href=page["relative_path"], className="navlink")
                            for page in dash.page_registry.values()
                        ]
                    ),
                ],
            ),
            html.Main(dash.page_container, className="content"),
        ],
    )
    return app
