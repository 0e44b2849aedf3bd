"""Master-data import from CSV: every row validated; any error and nothing is imported."""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, jsonify, request

from cloud.entrypoints.api.contract import endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.problems import Problem
from cloud.service_layer.master_data import ImportRefused, add_rows, read_csv

bp = Blueprint("imports", __name__, url_prefix="/api/import")


@bp.post("/<any(products, batches, items):kind>")
@endpoint("master-data", media="text/csv", status=201)
def import_csv(kind: str) -> Any:
    """Import products, batches or items from a CSV file (header row; UTF-8)."""
    if request.mimetype != "text/csv":
        raise Problem(415, "about:blank", "Unsupported Media Type", "send the file as text/csv")
    # Read as it arrives: decoded strictly, line by line, never the whole body at once.
    lines = io.TextIOWrapper(request.stream, encoding="utf-8", errors="strict", newline="")
    db = get_db()
    try:
        records = add_rows(db, kind, read_csv(kind, lines))
    except UnicodeDecodeError as exc:
        raise Problem(400, "about:blank", "Bad Request", f"the file is not UTF-8: {exc}") from exc
    except ImportRefused as exc:
        errors = [{"line": e.line, "field": e.field, "message": e.message} for e in exc.errors]
        raise Problem(
            422,
            "import-refused",
            "Import refused",
            f"{len(errors)} error(s) in the file; nothing was imported",
            errors=errors,
        ) from exc
    db.commit()
    return jsonify({"kind": kind, "imported": len(records)}), 201
