"""The audit trail: an append-only log of every change to a regulated record.

A model opts in with `audited(Model)` (also usable as a class decorator). Every create,
update and delete of an audited row appends one entry, in the same transaction, with the
acting user and the reason taken from `session.info["actor"]` and `session.info["reason"]`
(21 CFR Part 11 11.10(e); EU GMP Annex 11 9: a change or deletion needs a reason).

On PostgreSQL a trigger on every audited table writes the entry (cloud.adapters.audit_database),
so SQL that bypasses the application is recorded too; the flush hook here checks the actor
and the reason and hands them to the trigger as transaction-local settings. On SQLite, which
has no such triggers, the flush hook writes the entry itself. Either way the entry id comes
from the one-row chain head, taken under a lock, so ids have no gaps. Entries are sealed
into a keyed chain after the commit (cloud.adapters.audit_seals).
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
    Float,
    Index,
    Integer,
    String,
    Text,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from cloud.adapters.orm.base import Base
from cloud.adapters.orm.readings import MasterDataProposal, Zone
from cloud.domain.audit_chain import ChainEntry, canonical_json, json_value
from cloud.domain.clock import utcnow

__all__ = [
    "AuditChainHead",
    "AuditEntry",
    "AuditError",
    "AuditSeal",
    "act_as",
    "audited",
    "audited_models",
    "is_audited",
    "record_key",
    "redacted_columns",
    "row_values",
]

ACTIONS = ("create", "update", "delete")
REDACTED = "[redacted]"
_PENDING = "coldchain.audit.pending"  # session.info key: changes seen by before_flush
ACTOR_SETTING, REASON_SETTING = "coldchain.actor", "coldchain.reason"

M = TypeVar("M")


class AuditError(Exception):
    """A change that cannot be recorded in the audit trail, so it is refused."""


# --- storage ------------------------------------------------------------------------------


class AuditEntry(Base):
    """One change to a regulated record. Rows are only appended; see cloud.adapters.audit_seals."""

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
    # True: SQL that did not say who acted (the actor is then the database user).
    outside_application: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (Index("audit_entries_record", "record_table", "record_key"),)

    def chain_entry(self) -> ChainEntry:
        return chain_entry({c.name: getattr(self, c.name) for c in self.__table__.columns})


class AuditChainHead(Base):
    """The last entry id given out: the row appenders lock, so ids follow one another
    without gaps, and where a verifier expects the log to end. One row, id 1."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigInteger)


class AuditSeal(Base):
    """An entry's place in the keyed chain (cloud.domain.audit_chain.link), written by a
    sealer that holds the key. Insert-only."""

    __tablename__ = "audit_seals"

    entry_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    mac: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    sealed_at: Mapped[datetime]


def chain_entry(row: Any) -> ChainEntry:
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
        outside_application=bool(row["outside_application"]),
    )


# --- opting in, and the flush hook --------------------------------------------------------

_AUDITED: dict[type, frozenset[str]] = {}  # model -> columns whose values are not written


def audited(model: type[M], *, redact: Iterable[str] = ()) -> type[M]:
    """Record every create, update and delete of `model` in the audit trail.

    Use as `@audited` on the class or call `audited(Model, redact={"password_hash"})`;
    redacted columns (secrets) show as changed without their values, in the trail and in
    every view of it.
    """
    mapper = inspect(model)
    for prop in mapper.column_attrs:
        # The old value of an expired or unloaded attribute is loaded before it is replaced,
        # so an update always knows what it changed from.
        event.listen(prop.class_attribute, "set", _keep_old_value, active_history=True)
    _AUDITED[model] = frozenset(redact)
    return model


def audited_models() -> dict[type, frozenset[str]]:
    """Every audited model and its redacted columns (what the database triggers are made of)."""
    return dict(_AUDITED)


def is_audited(obj_or_model: Any) -> bool:
    model = obj_or_model if isinstance(obj_or_model, type) else type(obj_or_model)
    return any(cls in _AUDITED for cls in model.__mro__)


def _redacted(model: type) -> frozenset[str]:
    return next((_AUDITED[cls] for cls in model.__mro__ if cls in _AUDITED), frozenset())


def redacted_columns() -> dict[str, frozenset[str]]:
    """Secret columns by table name, for views that show stored entries."""
    return {model.__table__.name: columns for model, columns in _AUDITED.items() if columns}  # type: ignore[attr-defined]


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


def _written_by_triggers(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def act_as(conn: Connection, actor: str, reason: str | None = None) -> None:
    """Tell the audit triggers who changes audited rows in this transaction, and why.

    Transaction-local settings (PostgreSQL); SQL run without them is recorded as made outside
    the application, by the database user. A no-op where triggers do not write the trail.
    """
    if conn.dialect.name != "postgresql":
        return
    conn.execute(
        select(
            func.set_config(ACTOR_SETTING, actor, True),
            func.set_config(REASON_SETTING, reason or "", True),
        )
    )


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, AuditEntry | AuditChainHead | AuditSeal):
            raise AuditError("the audit trail is appended by the audit trail's writers only")
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
    if _written_by_triggers(session):
        session.info.pop(_PENDING)
        act_as(session.connection(), actor, session.info.get("reason") or None)


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
    """Write entries where no trigger does (SQLite): ids from the locked chain head."""
    head = AuditChainHead.__table__
    row = conn.execute(select(head.c.last_id).where(head.c.id == 1).with_for_update()).first()
    if row is None:  # a schema made by create_all rather than the migration
        conn.execute(insert(head).values(id=1, last_id=0))
        last_id = 0
    else:
        last_id = row[0]
    at = utcnow()
    rows = []
    for action, table, key, old, new in changes:
        last_id += 1
        rows.append(
            {
                "id": last_id,
                "at": at,
                "actor": actor,
                "action": action,
                "record_table": table,
                "record_key": key,
                "old_values": old,
                "new_values": new,
                "reason": reason,
                "outside_application": False,
            }
        )
    conn.execute(insert(AuditEntry.__table__), rows)
    conn.execute(update(head).where(head.c.id == 1).values(last_id=last_id))


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_writes(state: ORMExecuteState) -> None:
    """ORM bulk INSERT/UPDATE/DELETE skip the flush, and so would skip its checks."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    trail = (AuditEntry, AuditChainHead, AuditSeal)
    if mapper is not None and (is_audited(mapper.class_) or mapper.class_ in trail):
        raise AuditError(
            f"bulk writes to {mapper.local_table.description} bypass the audit trail: "
            f"load the objects and change them in the session"
        )


# A zone's limits decide what counts as an excursion: changing them is a regulated change.
# (Ingest writes zones from the gateways' inventory through Core with act_as; on PostgreSQL
# the trigger records those writes, on SQLite they are not recorded.)
audited(Zone)
audited(MasterDataProposal)
