"""The audit trail: an append-only, hash-chained log of every change to a regulated record.

A model opts in with `audited(Model)` (also usable as a class decorator). Every flush that
creates, updates or deletes an audited object appends one entry per object, in the same
transaction, with the acting user and the reason taken from `session.info["actor"]` and
`session.info["reason"]` (21 CFR Part 11 11.10(e); EU GMP Annex 11 9: a change or deletion
needs a reason). Each entry carries the SHA-256 of the previous one, so an entry edited,
deleted or moved in the database breaks the chain, and `verify_trail` names the first break.

Appenders lock the one-row chain head (SELECT ... FOR UPDATE on PostgreSQL; SQLite serialises
writers itself), so concurrent transactions extend the chain one after the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Text,
    event,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from cloud.adapters.orm.base import Base
from cloud.adapters.orm.readings import MasterDataProposal, Zone
from cloud.domain.audit_chain import (
    GENESIS,
    ChainEntry,
    ChainProblem,
    ChainReport,
    canonical_json,
    entry_hash,
    json_value,
    seal,
    verify_chain,
)
from cloud.domain.clock import utcnow

__all__ = [  # the chain's values are used through this module too
    "GENESIS",
    "AuditChainHead",
    "AuditEntry",
    "AuditError",
    "ChainEntry",
    "ChainProblem",
    "ChainReport",
    "audited",
    "canonical_json",
    "entry_hash",
    "is_audited",
    "json_value",
    "record_key",
    "row_values",
    "seal",
    "verify_chain",
    "verify_trail",
]

ACTIONS = ("create", "update", "delete")
REDACTED = "[redacted]"
_PENDING = "coldchain.audit.pending"  # session.info key: changes seen by before_flush

M = TypeVar("M")


class AuditError(Exception):
    """A change that cannot be recorded in the audit trail, so it is refused."""


# --- storage ------------------------------------------------------------------------------


class AuditEntry(Base):
    """One change to a regulated record. Rows are only appended; see `verify_trail`."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(8))
    record_table: Mapped[str] = mapped_column(String(64))
    record_key: Mapped[str] = mapped_column(String(200))
    old_values: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    new_values: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("audit_entries_record", "record_table", "record_key"),)

    def chain_entry(self) -> ChainEntry:
        return _chain_entry({c.name: getattr(self, c.name) for c in self.__table__.columns})


class AuditChainHead(Base):
    """The newest entry's id and hash: the row appenders lock, and where a verifier expects
    the log to end. One row, id 1, written by the migration."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


def _chain_entry(row: Any) -> ChainEntry:
    return ChainEntry(
        id=row["id"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        table=row["record_table"],
        key=row["record_key"],
        old=row["old_values"],
        new=row["new_values"],
        reason=row["reason"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def verify_trail(engine: Engine) -> ChainReport:
    """Verify the whole audit trail in the database, in one consistent snapshot."""
    entries, head = AuditEntry.__table__, AuditChainHead.__table__
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # pysqlite would read each SELECT in its own snapshot
        head_row = conn.execute(select(head.c.last_id, head.c.last_hash)).first()
        query = select(entries).order_by(entries.c.id)
        rows = conn.execution_options(yield_per=1000).execute(query)
        report = verify_chain(
            (_chain_entry(row._mapping) for row in rows),
            None if head_row is None else (head_row.last_id, head_row.last_hash),
        )
        conn.rollback()
    return report


# --- opting in, and the flush hook --------------------------------------------------------

_AUDITED: dict[type, frozenset[str]] = {}  # model -> columns whose values are not written


def audited(model: type[M], *, redact: Iterable[str] = ()) -> type[M]:
    """Record every create, update and delete of `model` in the audit trail.

    Use as `@audited` on the class or call `audited(Model, redact={"password_hash"})`;
    redacted columns show as changed without their values.
    """
    mapper = inspect(model)
    for prop in mapper.column_attrs:
        # The old value of an expired or unloaded attribute is loaded before it is replaced,
        # so an update always knows what it changed from.
        event.listen(prop.class_attribute, "set", _keep_old_value, active_history=True)
    _AUDITED[model] = frozenset(redact)
    return model


def is_audited(obj_or_model: Any) -> bool:
    model = obj_or_model if isinstance(obj_or_model, type) else type(obj_or_model)
    return any(cls in _AUDITED for cls in model.__mro__)


def _redacted(model: type) -> frozenset[str]:
    return next((_AUDITED[cls] for cls in model.__mro__ if cls in _AUDITED), frozenset())


def _keep_old_value(target: Any, value: Any, oldvalue: Any, initiator: Any) -> None:
    """A no-op listener; registering it with active_history is what matters."""


def record_key(obj: Any) -> str:
    """The primary key of a mapped object as text: the value, or a JSON array if composite."""
    values = [json_value(v) for v in inspect(obj).mapper.primary_key_from_instance(obj)]
    if len(values) == 1:
        return str(values[0])
    return canonical_json(values).decode()


def _column_value(column: Any, value: Any) -> Any:
    if isinstance(column.type, Float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # 8 and 8.0 are the same limit; it reads back as 8.0
    return json_value(value)


def row_values(obj: Any) -> dict[str, Any]:
    """Every column of a mapped object, by column name, as JSON values (redactions applied)."""
    redact = _redacted(type(obj))
    values = {}
    for prop in inspect(obj).mapper.column_attrs:
        column = prop.columns[0]
        value = _column_value(column, getattr(obj, prop.key))
        values[column.name] = REDACTED if column.name in redact else value
    return values


def _changed_values(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    redact = _redacted(type(obj))
    state = inspect(obj)
    old, new = {}, {}
    for prop in state.mapper.column_attrs:
        history = state.attrs[prop.key].history
        if not history.has_changes():
            continue
        column = prop.columns[0]
        before = _column_value(column, history.deleted[0] if history.deleted else None)
        after = _column_value(column, history.added[0] if history.added else None)
        if before == after:
            continue
        secret = column.name in redact
        old[column.name] = REDACTED if secret else before
        new[column.name] = REDACTED if secret else after
    return old, new


@dataclass
class _Change:
    action: str
    obj: Any
    old: dict[str, Any] | None
    new: dict[str, Any] | None


def _changes(session: Session) -> Iterator[_Change]:
    for obj in session.new:
        if is_audited(obj):
            yield _Change("create", obj, None, None)  # values once the flush assigned keys
    for obj in session.dirty:
        if is_audited(obj) and session.is_modified(obj, include_collections=False):
            old, new = _changed_values(obj)
            if old or new:
                yield _Change("update", obj, old, new)
    for obj in session.deleted:
        if is_audited(obj):
            yield _Change("delete", obj, row_values(obj), None)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, AuditEntry | AuditChainHead):
            raise AuditError("the audit trail is appended by the flush hook only")
    changes = list(_changes(session))
    session.info[_PENDING] = changes  # replaces what a failed flush may have left
    if not changes:
        return
    actor = session.info.get("actor")
    if not isinstance(actor, str) or not actor.strip():
        tables = sorted({c.obj.__table__.name for c in changes})
        raise AuditError(
            f"changes to audited records ({', '.join(tables)}) need an acting user: "
            f'set session.info["actor"]'
        )
    reason = session.info.get("reason")
    if not (isinstance(reason, str) and reason.strip()):
        for change in changes:
            if change.action != "create":
                raise AuditError(
                    f"{change.action} of {change.obj.__table__.name} {record_key(change.obj)} "
                    f'needs a reason: set session.info["reason"]'
                )


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    changes: list[_Change] = session.info.pop(_PENDING, [])
    if not changes:
        return
    for change in changes:
        if change.action == "create":
            change.new = row_values(change.obj)  # keys and defaults are assigned by now
    _append(
        session.connection(),
        session.info["actor"],
        session.info.get("reason") or None,
        [(c.action, c.obj.__table__.name, record_key(c.obj), c.old, c.new) for c in changes],
    )


def _append(
    conn: Connection,
    actor: str,
    reason: str | None,
    changes: list[tuple[str, str, str, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    head = AuditChainHead.__table__
    row = conn.execute(
        select(head.c.last_id, head.c.last_hash).where(head.c.id == 1).with_for_update()
    ).first()
    if row is None:  # a schema made by create_all rather than the migration
        conn.execute(insert(head).values(id=1, last_id=0, last_hash=GENESIS))
        last_id, last_hash = 0, GENESIS
    else:
        last_id, last_hash = row
    at = utcnow()
    rows = []
    for action, table, key, old, new in changes:
        entry = seal(
            ChainEntry(
                id=last_id + 1,
                at=at,
                actor=actor,
                action=action,
                table=table,
                key=key,
                old=old,
                new=new,
                reason=reason,
                prev_hash=last_hash,
            )
        )
        rows.append(
            {
                "id": entry.id,
                "at": entry.at,
                "actor": entry.actor,
                "action": entry.action,
                "record_table": entry.table,
                "record_key": entry.key,
                "old_values": entry.old,
                "new_values": entry.new,
                "reason": entry.reason,
                "prev_hash": entry.prev_hash,
                "hash": entry.hash,
            }
        )
        last_id, last_hash = entry.id, entry.hash
    conn.execute(insert(AuditEntry.__table__), rows)
    conn.execute(update(head).where(head.c.id == 1).values(last_id=last_id, last_hash=last_hash))


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_writes(state: ORMExecuteState) -> None:
    """ORM bulk INSERT/UPDATE/DELETE skip the flush, and so would skip the audit trail."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is not None and (is_audited(mapper.class_) or mapper.class_ is AuditEntry):
        raise AuditError(
            f"bulk writes to {mapper.local_table.description} bypass the audit trail: "
            f"load the objects and change them in the session"
        )


# A zone's limits decide what counts as an excursion: changing them is a regulated change.
# (Ingest writes zones from the gateways' inventory through Core, not the session, and so
# is not recorded here.)
audited(Zone)
audited(MasterDataProposal)
