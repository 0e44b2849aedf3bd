"""The REST API (Flask, JSON, problem details, OpenAPI) over the traceability service layer.

`create_app` imports Flask only when called: cloud.service_layer.tokens is a model module that the
migrations and the ingest worker import, and they do not need a web framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(database_url: str | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    """An API app on the database at `database_url` (or test_config["DATABASE_URL"])."""
    from cloud.entrypoints.api.app import build_app

    return build_app(database_url, test_config)
