"""What transfer and shipment routes share: bodies, refusals as problems, the
representation, and the one way a lifecycle command runs (find, step, commit, answer with
the record), each parameterised by the kind of moving record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, g, jsonify
from pydantic import AwareDatetime, Field
from sqlalchemy.orm import Session

from cloud.adapters.orm.traceability import Item
from cloud.domain.clock import utcnow
from cloud.domain.lifecycle import IllegalTransition
from cloud.entrypoints.api.auth import before_signing
from cloud.entrypoints.api.contract import Body
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.lookup import get_or_404, resolve_item
from cloud.entrypoints.api.pagination import Page, page_of
from cloud.entrypoints.api.problems import illegal_transition, response
from cloud.entrypoints.api.representations import signature_json
from cloud.service_layer.movements import Kind, UnknownRecord, history, lines, take_step
from cloud.service_layer.shipping_release import (
    ReleaseRefused,
    ReleaseView,
    release_for_shipment,
    release_view,
)
from cloud.service_layer.signatures import SignatureRefused

Ref = str  # an item reference: EPC (hex), (01)<gtin>(21)<serial> or <gtin>+<serial>


class Step(Body):
    """A lifecycle command; `at` defaults to now."""

    at: AwareDatetime | None = None


class ItemsStep(Step):
    items: list[Ref] = Field(min_length=1)


class ReleaseForShipment(Body):
    """QA's electronic signature (meaning shipment_release): password again and a reason."""

    password: str = Field(min_length=1)
    username: str | None = None  # the user ID: needed for the first signing in a session
    reason: str = Field(min_length=1)
    at: AwareDatetime | None = None


def when(step: Step) -> datetime:
    return step.at or utcnow()


def resolve_items(db: Session, refs: list[Ref]) -> list[Item]:
    return [resolve_item(db, ref) for ref in refs]


def refusals(bp: Blueprint) -> None:
    """Map what the lifecycle refuses to problems. (A blueprint's handler for ValueError would
    win over the app's for its subclass IllegalTransition, so that one is repeated here.)"""
    bp.register_error_handler(IllegalTransition, illegal_transition)

    @bp.errorhandler(UnknownRecord)
    def _unknown(exc: UnknownRecord) -> Response:
        return response(422, "unknown-reference", "Unknown reference", str(exc))

    @bp.errorhandler(ReleaseRefused)
    def _not_releasable(exc: ReleaseRefused) -> Response:
        return response(409, "release-refused", "Release for shipment refused", str(exc))

    @bp.errorhandler(SignatureRefused)
    def _not_signed(exc: SignatureRefused) -> Response:
        return response(403, "signature-refused", "Signature refused", str(exc))

    @bp.errorhandler(ValueError)
    def _refused(exc: ValueError) -> Response:
        return response(422, "refused", "Refused", str(exc))


def time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class MovementKind:
    """How the API shows one kind of moving record (transfer, shipment) and runs its steps."""

    kind: Kind
    fields: tuple[str, ...]  # of the record, in listings and in full
    times: tuple[str, ...]  # of each item line
    extra: tuple[str, ...] = ()  # other fields of each item line

    def render(self, db: Session, row: Any, full: bool = True) -> dict[str, Any]:
        """The record; in full with its items and its state history."""
        body: dict[str, Any] = {name: getattr(row, name) for name in self.fields}
        if full:
            body["items"] = [
                {
                    "element_string": f"(01){item.gtin}(21){item.serial}",
                    "epc": item.epc,
                    **{name: time(getattr(line, name)) for name in self.times},
                    **{name: getattr(line, name) for name in self.extra},
                }
                for line, item in lines(db, self.kind, row.id)
            ]
            body["history"] = [
                {"state": r.state, "at": time(r.at), "actor": r.actor}
                for r in history(db, self.kind, row.id)
            ]
        return body

    def find(self, db: Session, ident: str) -> Any:
        return get_or_404(db, self.kind.model, ident, f"{self.kind.name} {ident}")

    def listing(self, query: Any, page: Page) -> Response:
        db = get_db()
        return page_of(query, page, lambda row: self.render(db, row, False))

    def show(self, ident: str) -> Response:
        db = get_db()
        return jsonify(self.render(db, self.find(db, ident), True))

    def create(self, make: Callable[[Session], Any]) -> tuple[Response, int]:
        db = get_db()
        row = make(db)
        db.commit()
        return jsonify(self.render(db, row, True)), 201

    def manifest(self, db: Session, row: Any, view: ReleaseView) -> dict[str, Any]:
        """The release manifest: the batches' temperature evidence now and the signed release
        (its evidence as signed, its signature with printed name, time, meaning, hash)."""
        signed = None
        if view.release is not None and view.signature is not None:
            signed = {
                "id": view.release.id,
                "released_at": time(view.release.released_at),
                "manifest": view.release.manifest,
                "signature": signature_json(view.signature),
            }
        return {
            f"{self.kind.name}_id": row.id,
            "movement": view.movement,
            "state": row.state,
            "required": view.required,
            "batches": [asdict(b) for b in view.evidence],
            "release": signed,
        }

    def release_manifest(self, ident: str) -> Response:
        db = get_db()
        row = self.find(db, ident)
        return jsonify(self.manifest(db, row, release_view(db, row)))

    def release(self, ident: str, given: ReleaseForShipment) -> tuple[Response, int]:
        """QA signs the release for shipment over the evidence shown now."""
        db = get_db()
        row = self.find(db, ident)
        before_signing(given.username)
        release_for_shipment(
            db, row, g.user, given.password, given.reason, given.at, username=given.username
        )
        db.commit()
        return jsonify(self.manifest(db, row, release_view(db, row, given.at))), 201

    def step(
        self,
        ident: str,
        name: str,
        given: Step,
        zone_id: str | None = None,
        items: list[Ref] | None = None,
    ) -> Response:
        """Take a lifecycle step: the step is the audit reason unless the caller gave one."""
        db = get_db()
        row = self.find(db, ident)
        db.info.setdefault("reason", f"{self.kind.name} {ident}: {name}")
        moved = None if items is None else resolve_items(db, items)
        take_step(db, row, name, when(given), moved, zone_id)
        db.commit()
        return jsonify(self.render(db, row, True))
