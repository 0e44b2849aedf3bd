"""EPCIS 2.0 over REST: export custody as an EPCISDocument, import a partner's into custody."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from cloud.adapters.orm.traceability import Batch
from cloud.domain.epcis import EpcisError
from cloud.entrypoints.api.contract import Query, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.lookup import get_or_404, resolve_item
from cloud.entrypoints.api.pagination import Instant
from cloud.entrypoints.api.problems import invalid, parse_query
from cloud.service_layer.epcis_export import Selection, batch_selection, export_document
from cloud.service_layer.epcis_import import import_document

bp = Blueprint("epcis", __name__, url_prefix="/api/epcis")
MEDIA = "application/ld+json"


class EpcisQuery(Query):
    """One of batch, item or a time range (from/to); sensors adds each stay's temperatures."""

    batch: int | None = None
    item: str | None = None
    start: Instant | None = Field(None, alias="from")
    end: Instant | None = Field(None, alias="to")
    sensors: bool = False


class EpcisDocument(BaseModel):
    """A GS1 EPCIS 2.0 EPCISDocument (JSON or JSON-LD)."""

    model_config = ConfigDict(extra="allow")

    type: str = "EPCISDocument"
    schemaVersion: str = "2.0"  # noqa: N815  (the EPCIS field name)
    epcisBody: dict[str, Any]  # noqa: N815


@bp.get("/events")
@endpoint("read", query=EpcisQuery)
def export_events() -> Any:
    """Custody events of a batch, an item or a time range as an EPCIS 2.0 document."""
    given = parse_query(EpcisQuery)
    db = get_db()
    if given.batch is not None and given.item is not None:
        raise invalid(400, "give batch or item, not both", [{"field": "item", "message": "both"}])
    try:
        if given.batch is not None:
            get_or_404(db, Batch, given.batch, f"batch {given.batch}")
            selection = batch_selection(db, given.batch, given.start, given.end)
        elif given.item is not None:
            item = resolve_item(db, given.item)
            selection = Selection(frozenset({item.id}), given.start, given.end)
        else:
            selection = Selection(None, given.start, given.end)
    except ValueError as exc:
        raise invalid(400, str(exc), [{"field": "(query)", "message": str(exc)}]) from exc
    body = jsonify(export_document(db, selection, sensors=given.sensors))
    return Response(body.get_data(), status=200, mimetype=MEDIA)


@bp.post("/events")
@endpoint("epcis-import", body=EpcisDocument)
def import_events() -> Any:
    """Take a partner's EPCIS 2.0 document into custody; reports what could not be placed."""
    data = request.get_json()
    db = get_db()
    try:
        report = import_document(db, data, actor=g.user.username)
    except EpcisError as exc:
        raise invalid(
            422, str(exc), [{"field": exc.field or "(document)", "message": exc.message}]
        ) from exc
    db.commit()
    return jsonify(report.as_json())
