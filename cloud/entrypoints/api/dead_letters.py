"""Dead letters (admin): list and read refused messages, replay them after a fix."""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, jsonify
from pydantic import Field
from sqlalchemy import Engine

from cloud.adapters.orm.readings import DeadLetter
from cloud.entrypoints.api.contract import Body, endpoint
from cloud.entrypoints.api.database import get_db
from cloud.entrypoints.api.pagination import Instant, Page, page_of
from cloud.entrypoints.api.problems import Problem, not_found, parse_body, parse_query
from cloud.service_layer.dead_letters import MAX_REPLAY, ReplayOutcome, replay
from cloud.service_layer.store import Store
from cloud.views.dead_letters import DeadLetterFilter, dead_letters, oldest_first_ids

bp = Blueprint("dead_letters", __name__, url_prefix="/api/dead-letters")
PREVIEW = 4096  # characters of a payload shown as text


class Filter(Page):
    gateway: str | None = Field(None, max_length=64)
    reason: str | None = Field(None, max_length=200)
    since: Instant | None = None
    until: Instant | None = None
    replayed: bool | None = None


class Replay(Body):
    """Which dead letters to replay: every field given narrows them; oldest first."""

    gateway: str | None = Field(None, max_length=64)
    reason_contains: str | None = Field(None, max_length=200)
    since: Instant | None = None
    until: Instant | None = None
    limit: int = Field(100, ge=1, le=MAX_REPLAY)
    include_replayed: bool = False


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def letter_json(d: DeadLetter) -> dict[str, Any]:
    return {
        "id": d.id,
        "received_at": _time(d.received_at),
        "topic": d.topic,
        "gateway_id": d.gateway_id,
        "reason": d.reason,
        "size": d.size,
        "count": d.count,
        "whole": d.whole,
        "replayed_at": _time(d.replayed_at),
        "replay_outcome": d.replay_outcome,
    }


def _outcome_json(o: ReplayOutcome) -> dict[str, Any]:
    return {"dead_letter_id": o.dead_letter_id, "stored": o.stored, "detail": o.detail}


def _store() -> Store:
    bind = get_db().get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return Store(engine)


@bp.get("")
@endpoint("dead_letters", query=Filter)
def list_dead_letters() -> Any:
    """Refused messages, newest first, by gateway, part of the reason, time, replayed."""
    given = parse_query(Filter)
    chosen = DeadLetterFilter(given.gateway, given.reason, given.since, given.until, given.replayed)
    return page_of(dead_letters(chosen), given, letter_json)


@bp.get("/<int:letter_id>")
@endpoint("dead_letters")
def get_dead_letter(letter_id: int) -> Any:
    """One dead letter with its kept payload (base64, and as text where it decodes)."""
    letter = get_db().get(DeadLetter, letter_id)
    if letter is None:
        raise not_found(f"dead letter {letter_id}")
    text = letter.payload[:PREVIEW].decode("utf-8", errors="replace")
    return jsonify(
        {
            **letter_json(letter),
            "payload_base64": base64.b64encode(letter.payload).decode(),
            "payload_text": text,
        }
    )


@bp.post("/<int:letter_id>/replay")
@endpoint("dead_letters")
def replay_one(letter_id: int) -> Any:
    """Replay one dead letter through the normal, idempotent ingest path."""
    db = get_db()
    if db.get(DeadLetter, letter_id) is None:
        raise not_found(f"dead letter {letter_id}")
    (outcome,) = replay(db, _store(), [letter_id])
    if not outcome.stored and outcome.detail.startswith("cannot"):
        raise Problem(409, "not-replayable", "Cannot be replayed", outcome.detail)
    return jsonify(_outcome_json(outcome))


@bp.post("/replay")
@endpoint("dead_letters", body=Replay)
def replay_many() -> Any:
    """Replay the dead letters a filter names, oldest first, each with its outcome."""
    given = parse_body(Replay)
    db = get_db()
    chosen = DeadLetterFilter(
        given.gateway,
        given.reason_contains,
        given.since,
        given.until,
        None if given.include_replayed else False,
    )
    outcomes = replay(db, _store(), oldest_first_ids(db, chosen, given.limit))
    return jsonify(
        {
            "replayed": len(outcomes),
            "stored": sum(o.stored for o in outcomes),
            "outcomes": [_outcome_json(o) for o in outcomes],
        }
    )
