"""Wiring of the API process: config, database, error handlers, authentication, blueprints."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask

from cloud.adapters.throttle import PER_ACCOUNT, PER_CLIENT
from cloud.domain.holds import parse_two_person_reasons
from cloud.entrypoints.api import (
    access,
    alerts,
    auth,
    batches,
    customers,
    database,
    dead_letters,
    epcis,
    expiry,
    gateways,
    holds,
    imports,
    items,
    openapi,
    orders,
    problems,
    products,
    profiles,
    proposals,
    recalls,
    scans,
    session,
    set_aside,
    shipments,
    sites,
    transfers,
    zones,
)

log = logging.getLogger(__name__)
BLUEPRINTS = (
    session.bp,
    products.bp,
    batches.bp,
    items.bp,
    zones.bp,
    profiles.bp,
    sites.bp,
    gateways.bp,
    proposals.bp,
    customers.bp,
    orders.bp,
    scans.bp,
    transfers.bp,
    shipments.bp,
    epcis.bp,
    alerts.bp,
    recalls.bp,
    expiry.bp,
    *holds.BLUEPRINTS,
    access.bp,
    dead_letters.bp,
    set_aside.bp,
    imports.bp,
    openapi.bp,
)


def build_app(database_url: str | None, test_config: dict[str, Any] | None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        DATABASE_URL=database_url or os.environ.get("COLDCHAIN_DATABASE_URL"),
        SECRET_KEY=os.environ.get("COLDCHAIN_SECRET_KEY"),
        # Login sessions live in the database; the cookie (path /api) holds a random secret.
        SESSION_COOKIE_SECURE=os.environ.get("COLDCHAIN_HTTPS", "") not in ("", "0", "false"),
        SESSION_IDLE_TIMEOUT_S=float(os.environ.get("COLDCHAIN_SESSION_IDLE_S", 15 * 60)),
        SESSION_ABSOLUTE_TIMEOUT_S=float(os.environ.get("COLDCHAIN_SESSION_MAX_S", 12 * 3600)),
        LOGIN_RATE_LIMIT_PER_CLIENT=PER_CLIENT,
        LOGIN_RATE_LIMIT_PER_ACCOUNT=PER_ACCOUNT,
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        PAGE_LIMIT_MAX=500,
        # webhook targets outside the public internet that admins may register
        WEBHOOK_ALLOW=os.environ.get("COLDCHAIN_WEBHOOK_ALLOW", ""),
        # hold reasons whose release takes two QA (comma-separated kinds; unset: freezing)
        TWO_PERSON_REASONS=parse_two_person_reasons(os.environ.get("COLDCHAIN_TWO_PERSON_REASONS")),
    )
    if test_config is not None:
        app.config.from_mapping(test_config)
    if not app.config["DATABASE_URL"]:
        raise ValueError("the API needs a database: pass database_url or COLDCHAIN_DATABASE_URL")
    database.init_app(app)
    problems.init_app(app)
    auth.init_app(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app
