"""What transfer and shipment routes share: bodies, refusals as problems, representations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response
from pydantic import AwareDatetime, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.api.contract import Body
from cloud.api.lifecycle_store import ReleaseBlocked, UnknownRecord
from cloud.api.lookup import resolve_item
from cloud.api.problems import illegal_transition, response
from cloud.domain.lifecycle import IllegalTransition
from cloud.models import utcnow
from cloud.traceability import Item

Ref = str  # an item reference: EPC (hex), (01)<gtin>(21)<serial> or <gtin>+<serial>


class Step(Body):
    """A lifecycle command; `at` defaults to now."""

    at: AwareDatetime | None = None


class ItemsStep(Step):
    items: list[Ref] = Field(min_length=1)


def when(step: Step) -> datetime:
    return step.at or utcnow()


def resolve_items(db: Session, refs: list[Ref]) -> list[Item]:
    return [resolve_item(db, ref) for ref in refs]


def refusals(bp: Blueprint) -> None:
    """Map what the lifecycle refuses to problems. (A blueprint's handler for ValueError would
    win over the app's for its subclass IllegalTransition, so that one is repeated here.)"""
    bp.register_error_handler(IllegalTransition, illegal_transition)

    @bp.errorhandler(ReleaseBlocked)
    def _blocked(exc: ReleaseBlocked) -> Response:
        return response(409, "release-blocked", "Release gate", str(exc))

    @bp.errorhandler(UnknownRecord)
    def _unknown(exc: UnknownRecord) -> Response:
        return response(422, "unknown-reference", "Unknown reference", str(exc))

    @bp.errorhandler(ValueError)
    def _refused(exc: ValueError) -> Response:
        return response(422, "refused", "Refused", str(exc))


def time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def history_json(db: Session, model: Any, column: str, ident: str) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(model).where(getattr(model, column) == ident).order_by(model.at, model.id)
    )
    return [{"state": r.state, "at": time(r.at), "actor": r.actor} for r in rows]
