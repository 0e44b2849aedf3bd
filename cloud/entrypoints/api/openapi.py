"""The OpenAPI 3.1 document, built from the URL map and each route's declared contract."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from pydantic import BaseModel

from cloud.domain.access import ACTIONS, ROLES
from cloud.entrypoints.api.contract import PUBLIC, Contract, contract_of, endpoint

bp = Blueprint("openapi", __name__, url_prefix="/api")
ARGUMENT = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")
REF = "#/components/schemas/{model}"
PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["type", "title", "status"],
}


def openapi_path(rule: str) -> str:
    """/api/items/<ref>/custody -> /api/items/{ref}/custody"""
    return ARGUMENT.sub(lambda m: "{" + m["name"] + "}", rule)


def _path_parameters(rule: str) -> list[dict[str, Any]]:
    params = []
    for m in ARGUMENT.finditer(rule):
        schema: dict[str, Any] = {"type": "integer" if m["converter"] == "int" else "string"}
        if m["converter"] == "any":
            schema["enum"] = [v.strip() for v in m["args"].split(",")]
        params.append({"name": m["name"], "in": "path", "required": True, "schema": schema})
    return params


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF, by_alias=True)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _roles(action: str) -> list[str]:
    return [] if action == PUBLIC else [r for r in ROLES if r in ACTIONS[action].roles]


def _scope(action: str) -> str | None:
    return None if action == PUBLIC else ACTIONS[action].scope


def _operation(endpoint_name: str, view: Any, contract: Contract, rule: str, comps: dict) -> dict:
    doc = (view.__doc__ or endpoint_name).strip().splitlines()[0]
    problem = {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}
    responses: dict[str, Any] = {str(contract.status): {"description": "Success"}}
    for status, text in ((400, "Bad request"), (404, "Not found"), (422, "Invalid")):
        responses[str(status)] = {"description": text, "content": problem}
    operation: dict[str, Any] = {
        "operationId": endpoint_name.replace(".", "_"),
        "summary": doc,
        "tags": [endpoint_name.split(".")[0]],
        "parameters": _path_parameters(rule)
        + (_query_parameters(contract.query) if contract.query else []),
        "responses": responses,
        "x-action": contract.action,
        "x-roles": _roles(contract.action),
        "x-token-scope": _scope(contract.action),
    }
    if contract.action == PUBLIC:
        operation["security"] = []
    else:
        responses["401"] = {"description": "Not authenticated", "content": problem}
        responses["403"] = {
            "description": "Role or token scope does not allow it",
            "content": problem,
        }
    if contract.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {contract.media: {"schema": _schema(contract.body, comps)}},
        }
    elif contract.media != "application/json":
        operation["requestBody"] = {
            "required": True,
            "content": {contract.media: {"schema": {"type": "string"}}},
        }
    return operation


def build_document(app: Flask) -> dict[str, Any]:
    """Every /api route with its parameters, body, roles and problem responses."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {"Problem": PROBLEM}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api"):
            continue
        view = app.view_functions[rule.endpoint]
        contract = contract_of(view)
        if contract is None:
            continue  # undeclared: refused by the authorisation hook, and caught by a test
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            path = paths.setdefault(openapi_path(rule.rule), {})
            path[method.lower()] = _operation(rule.endpoint, view, contract, rule.rule, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Cold-chain traceability API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }


@bp.get("/openapi.json")
@endpoint(PUBLIC)
def document() -> Any:
    """This document."""
    return jsonify(build_document(current_app))
