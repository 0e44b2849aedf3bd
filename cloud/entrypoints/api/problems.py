"""Errors as RFC 9457 problem details (application/problem+json), and request parsing that
turns bad input into them: validation problems list every field that is wrong."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from flask import Flask, Response, json, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from cloud.adapters.orm.audit import AuditError
from cloud.domain.lifecycle import IllegalTransition

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:coldchain:problem:"
M = TypeVar("M", bound=BaseModel)


class Problem(Exception):
    """An error response: status, a short problem type, the detail, any extra members."""

    def __init__(self, status: int, kind: str, title: str, detail: str, **extra: Any):
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail, self.extra = (
            status,
            kind,
            title,
            detail,
            extra,
        )


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "Not found", f"{what} does not exist")


def invalid(status: int, detail: str, errors: list[dict[str, Any]]) -> Problem:
    return Problem(status, "validation", "Invalid request", detail, errors=errors)


def field_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    """Pydantic's errors as {field, message} pairs, the field a dotted path."""
    return [
        {
            "field": prefix + ".".join(str(part) for part in err["loc"]) or "(body)",
            "message": err["msg"],
        }
        for err in exc.errors(include_url=False)
    ]


def parse_body(model: type[M], *, optional: bool = False) -> M:
    """The JSON body validated by `model` (422 naming each bad field; 400 if not JSON)."""
    if optional and not request.get_data():
        data: Any = {}
    else:
        data = request.get_json()  # 415 if not JSON, 400 if malformed
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(422, "the request body is not valid", field_errors(exc)) from exc


def parse_query(model: type[M]) -> M:
    """The query string validated by `model` (400 naming each bad parameter)."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise invalid(400, "the query string is not valid", field_errors(exc)) from exc


def response(status: int, kind: str, title: str, detail: str, **extra: Any) -> Response:
    body = {
        "type": TYPE_BASE + kind if kind != "about:blank" else kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
        **extra,
    }
    return Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)


def illegal_transition(exc: IllegalTransition) -> Response:
    return response(409, "illegal-transition", "Illegal transition", str(exc), state=str(exc.state))


def init_app(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return response(exc.status, exc.kind, exc.title, exc.detail, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        return response(status, "about:blank", exc.name, exc.description or exc.name)

    app.register_error_handler(IllegalTransition, illegal_transition)

    @app.errorhandler(AuditError)
    def _unaudited(exc: AuditError) -> Response:
        # The only audit refusal a caller can cause: a change without a reason.
        errors = [{"field": "reason", "message": "give a reason (body field or X-Reason)"}]
        return response(422, "reason-required", "Reason required", str(exc), errors=errors)

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError) -> Response:
        log.info("integrity error: %s", exc.orig)
        detail = "the change conflicts with stored data (a duplicate or a missing reference)"
        return response(409, "conflict", "Conflict", detail)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return response(500, "about:blank", "Internal Server Error", "an unexpected error")
