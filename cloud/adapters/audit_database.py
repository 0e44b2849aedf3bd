"""The audit trail's guard inside PostgreSQL: triggers that record every change of every
audited table, and the privileges that keep the application's role from rewriting the trail.

Two roles (docs/security.md): the OWNER runs migrations and owns the tables, the functions
and the triggers; the APPLICATION role (ingest, API, control room, scheduler) may read and
write the records but only read the trail (and insert seals). The trigger function runs
with the owner's rights (SECURITY DEFINER), so it is the only way entries get in.

The triggers are made from the `audited()` registry whenever the schema is migrated
(cloud.adapters.migrate.upgrade), so an audited table added later gets its trigger too.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import DBAPIError

import cloud.adapters.orm  # noqa: F401  (registers every audited model)
from cloud.adapters.orm.audit import AuditChainHead, AuditEntry, AuditSeal, audited_models

log = logging.getLogger(__name__)

RECORD, REFUSE, VALUES = (
    "coldchain_audit_record",
    "coldchain_audit_refuse",
    "coldchain_audit_values",
)
ROW_TRIGGER, TRUNCATE_TRIGGER = "coldchain_audit", "coldchain_audit_no_truncate"
SEALS_TRIGGER, SEALS_TRUNCATE = "audit_seals_insert_only", "audit_seals_no_truncate"
TRAIL = (AuditEntry.__tablename__, AuditChainHead.__tablename__)
SEALS = AuditSeal.__tablename__


class AuditSetupError(RuntimeError):
    """The database cannot record the audit trail as required (a trigger missing or off)."""


# JSON values as the application writes them: decimals as strings, whole floats as 8.0 not 8,
# times ISO 8601 in UTC with microseconds only when there are some (Python's isoformat).
VALUES_SQL = f"""
CREATE OR REPLACE FUNCTION {VALUES}(row_values jsonb, rel oid) RETURNS jsonb
LANGUAGE sql STABLE SET timezone = 'UTC' AS $body$
SELECT coalesce(jsonb_object_agg(r.key, CASE
    WHEN jsonb_typeof(r.value) = 'null' THEN r.value
    WHEN a.atttypid = 'numeric'::regtype THEN to_jsonb(r.value #>> '{{}}')
    WHEN a.atttypid IN ('float8'::regtype, 'float4'::regtype)
         AND jsonb_typeof(r.value) = 'number' AND r.value::text ~ '^-?[0-9]+$'
         THEN (r.value::text || '.0')::jsonb
    WHEN a.atttypid = 'timestamptz'::regtype THEN to_jsonb(
        to_char((r.value #>> '{{}}')::timestamptz, 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN mod(extract(microseconds FROM (r.value #>> '{{}}')::timestamptz)::bigint,
                         1000000) = 0
                THEN '' ELSE to_char((r.value #>> '{{}}')::timestamptz, '.US') END
        || '+00:00')
    ELSE r.value END), '{{}}'::jsonb)
FROM jsonb_each(row_values) AS r
LEFT JOIN pg_attribute AS a ON a.attrelid = rel AND a.attname = r.key
$body$"""

# One entry per changed row: who from the transaction's coldchain.actor, or the database user
# and outside_application when SQL did not say; the next id from the locked chain head.
RECORD_BODY = """
DECLARE
    keys text[] := string_to_array(TG_ARGV[0], ',');
    secrets text[] := string_to_array(coalesce(TG_ARGV[1], ''), ',');
    old_row jsonb;
    new_row jsonb;
    old_values jsonb;
    new_values jsonb;
    one_row jsonb;
    secret text;
    key_text text;
    who text := nullif(current_setting('coldchain.actor', true), '');
    why text := nullif(current_setting('coldchain.reason', true), '');
    entry_id bigint;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        old_row := coldchain_audit_values(to_jsonb(OLD), TG_RELID);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        new_row := coldchain_audit_values(to_jsonb(NEW), TG_RELID);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        SELECT jsonb_object_agg(o.key, o.value), jsonb_object_agg(o.key, new_row -> o.key)
          INTO old_values, new_values
          FROM jsonb_each(old_row) AS o
         WHERE o.value IS DISTINCT FROM new_row -> o.key;
        IF old_values IS NULL THEN
            RETURN NULL;  -- nothing changed
        END IF;
    ELSE
        old_values := old_row;
        new_values := new_row;
    END IF;
    FOREACH secret IN ARRAY coalesce(secrets, '{}') LOOP
        IF old_values ? secret THEN
            old_values := jsonb_set(old_values, ARRAY[secret], '"[redacted]"');
        END IF;
        IF new_values ? secret THEN
            new_values := jsonb_set(new_values, ARRAY[secret], '"[redacted]"');
        END IF;
    END LOOP;
    one_row := coalesce(new_row, old_row);
    IF array_length(keys, 1) = 1 THEN
        key_text := one_row ->> keys[1];
    ELSE
        SELECT '[' || string_agg((one_row -> k)::text, ',' ORDER BY n) || ']' INTO key_text
          FROM unnest(keys) WITH ORDINALITY AS u(k, n);
    END IF;
    UPDATE audit_chain_head SET last_id = last_id + 1 WHERE id = 1 RETURNING last_id
      INTO entry_id;
    IF entry_id IS NULL THEN
        INSERT INTO audit_chain_head (id, last_id) VALUES (1, 1);
        entry_id := 1;
    END IF;
    INSERT INTO audit_entries (id, at, actor, action, record_table, record_key, old_values,
                               new_values, reason, outside_application)
    VALUES (entry_id, clock_timestamp(), left(coalesce(who, session_user::text), 100),
            CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END,
            TG_TABLE_NAME, left(key_text, 200), old_values::json, new_values::json, why,
            who IS NULL);
    RETURN NULL;
END
"""

REFUSE_BODY = """
BEGIN
    RAISE EXCEPTION '% on % refused: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0];
END
"""


def _ddl(conn: Connection, statement: str) -> None:
    """Run DDL as written: the driver takes % for a placeholder, even without parameters."""
    conn.exec_driver_sql(statement.replace("%", "%%"))


def _function(name: str, body: str, schema: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
        f"SECURITY DEFINER SET search_path = pg_catalog, {schema}, pg_temp "
        f"SET timezone = 'UTC' AS $body${body}$body$"
    )


def _wanted(conn: Connection) -> dict[tuple[str, str], tuple[str, ...]]:
    """(table, trigger) -> the trigger's arguments, for every table that exists here."""
    wanted: dict[tuple[str, str], tuple[str, ...]] = {}
    for model, secrets in audited_models().items():
        table = model.__table__  # type: ignore[attr-defined]
        if conn.scalar(text("SELECT to_regclass(:t)"), {"t": table.name}) is None:
            continue  # registered by a module whose table this database does not have
        keys = ",".join(c.name for c in table.primary_key.columns)
        wanted[(table.name, ROW_TRIGGER)] = (keys, ",".join(sorted(secrets)))
        wanted[(table.name, TRUNCATE_TRIGGER)] = (
            "audited: delete the rows, so that each deletion is recorded",
        )
    wanted[(SEALS, SEALS_TRIGGER)] = ("the seals are insert-only",)
    wanted[(SEALS, SEALS_TRUNCATE)] = ("the seals are insert-only",)
    return wanted


def _installed(conn: Connection) -> dict[tuple[str, str], tuple[tuple[str, ...], bool]]:
    rows = conn.execute(
        text(
            "SELECT c.relname, t.tgname, t.tgargs, t.tgenabled "
            "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
        )
    )
    found = {}
    for table, name, args, enabled in rows:
        parts = bytes(args).split(b"\x00")[:-1] if args else []
        found[(table, name)] = (tuple(p.decode() for p in parts), enabled == "O")
    return found


def missing_triggers(conn: Connection) -> list[str]:
    """What is not as it must be: triggers missing, different or disabled, or a function changed."""
    schema = conn.scalar(text("SELECT current_schema()"))
    wanted, found = _wanted(conn), _installed(conn)
    problems = []
    for (table, name), args in sorted(wanted.items()):
        have = found.get((table, name))
        if have is None:
            problems.append(f"trigger {name} on {table} is missing")
        elif have[0] != args:
            problems.append(f"trigger {name} on {table} has other arguments")
        elif not have[1]:
            problems.append(f"trigger {name} on {table} is disabled")
    sources: dict[str, str] = dict(
        conn.execute(
            text(
                "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = CAST(:s AS regnamespace)"
            ),
            {"s": schema},
        ).all()
    )
    for name, body in ((RECORD, RECORD_BODY), (REFUSE, REFUSE_BODY)):
        if sources.get(name) != body:
            problems.append(f"function {name} is missing or changed")
    return problems


def install_audit_triggers(conn: Connection) -> list[str]:
    """Put the audit triggers on every audited table (PostgreSQL; nothing elsewhere).

    Returns what was wrong and is now put right. Run by the owner; for anyone else it only
    checks, and raises AuditSetupError if something is missing.
    """
    if conn.dialect.name != "postgresql":
        return []
    problems = missing_triggers(conn)
    if not problems:
        return []
    schema = conn.scalar(text("SELECT current_schema()"))
    try:
        with conn.begin_nested():
            _ddl(conn, VALUES_SQL)
            _ddl(conn, _function(RECORD, RECORD_BODY, schema))
            _ddl(conn, _function(REFUSE, REFUSE_BODY, schema))
            for function in (VALUES + "(jsonb, oid)", RECORD + "()", REFUSE + "()"):
                _ddl(conn, f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
            for (table, name), args in _wanted(conn).items():
                arguments = ", ".join("'" + a.replace("'", "''") + "'" for a in args)
                if name == ROW_TRIGGER:
                    when, each, function = "AFTER INSERT OR UPDATE OR DELETE", "ROW", RECORD
                elif name == SEALS_TRIGGER:
                    when, each, function = "BEFORE UPDATE OR DELETE", "ROW", REFUSE
                else:
                    when, each, function = "BEFORE TRUNCATE", "STATEMENT", REFUSE
                _ddl(
                    conn,
                    f'CREATE OR REPLACE TRIGGER {name} {when} ON "{table}" '
                    f"FOR EACH {each} EXECUTE FUNCTION {function}({arguments})",
                )
                _ddl(conn, f'ALTER TABLE "{table}" ENABLE TRIGGER {name}')
            _keep_trail_read_only(conn)
    except DBAPIError as exc:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise AuditSetupError(
            "the audit trail's triggers are not as they must be ("
            + "; ".join(problems[:3])
            + more
            + f") and could not be put right ({exc.orig}): run `coldchain-cloud migrate` "
            "with the owner's database URL"
        ) from exc
    for problem in problems:
        log.warning("audit trail: %s: put right", problem)
    return problems


def _keep_trail_read_only(conn: Connection) -> None:
    """No one but the owner may write the trail; seals may only be added."""
    grantees = conn.scalars(
        text(
            "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
            "WHERE table_schema = current_schema() AND table_name IN :tables "
            "AND privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER') "
            "AND grantee <> current_user"
        ).bindparams(bindparam("tables", expanding=True)),
        {"tables": [*TRAIL, SEALS]},
    ).all()
    quote = conn.dialect.identifier_preparer.quote
    for grantee in (*grantees, "PUBLIC"):
        who = "PUBLIC" if grantee == "PUBLIC" else quote(grantee)
        for table in TRAIL:
            _ddl(conn, f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER ON {table} FROM {who}")
        _ddl(conn, f"REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER ON {SEALS} FROM {who}")


def grant_application_role(conn: Connection, role: str) -> None:
    """Let `role` read and write the records, read the trail and add seals, nothing more.

    Run as the owner after the migrations. Tables the owner creates later get the same
    record rights (default privileges); the trail's are put right at every migration.
    """
    quote = conn.dialect.identifier_preparer.quote
    who = quote(role)
    schema = quote(conn.scalar(text("SELECT current_schema()")))
    for statement in (
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {who}",
        f"GRANT USAGE ON SCHEMA {schema} TO {who}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM {who}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {who}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {who}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {who}",
        f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {who}",
    ):
        _ddl(conn, statement)
    _keep_trail_read_only(conn)
    try:  # PostgreSQL before 15 lets everyone create tables in public
        with conn.begin_nested():
            _ddl(conn, f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC")
    except DBAPIError:
        log.warning("could not revoke CREATE on schema %s from PUBLIC (not its owner)", schema)


def create_login_role(conn: Connection, role: str, password: str | None) -> bool:
    """Create `role` with LOGIN unless it exists; True if it was created."""
    if conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}):
        return False
    statement = conn.scalar(
        text("SELECT format('CREATE ROLE %I LOGIN', CAST(:r AS text))")
        if password is None
        else text(
            "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', CAST(:r AS text), CAST(:p AS text))"
        ),
        {"r": role, "p": password},
    )
    _ddl(conn, statement)
    return True
