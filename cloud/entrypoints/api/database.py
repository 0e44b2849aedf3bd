"""One database session per request, carrying the acting user and the reason for the audit."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from cloud import bootstrap

EXTENSION = "coldchain.sessions"


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = bootstrap.api(app.config["DATABASE_URL"])
    app.teardown_appcontext(close_db)


def get_db() -> Session:
    """The request's session (opened on first use; rolled back unless the route commits)."""
    if "db" not in g:
        g.db = current_app.extensions[EXTENSION]()
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()
