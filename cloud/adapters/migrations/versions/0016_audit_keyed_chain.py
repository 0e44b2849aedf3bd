"""audit trail: entries written by database triggers, chained by keyed seals (HMAC) in an
insert-only table; webhook secrets taken out of the entries written before

Revision ID: 0016_audit_keyed_chain
Revises: 0015_calibration_evidence

The unkeyed SHA-256 chain (prev_hash, hash, the head's last_hash) is dropped: anyone who
could write the table could recompute it. The triggers themselves are made from the models
after every migration (cloud.adapters.audit_database).
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_audit_keyed_chain"
down_revision = "0015_calibration_evidence"
branch_labels = None
depends_on = None

REDACTED = '"[redacted]"'


def _sqlite_append_only(table: str) -> None:
    for operation in ("UPDATE", "DELETE"):
        name = f"{table}_no_{operation.lower()}"
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(
            f"CREATE TRIGGER {name} BEFORE {operation} ON {table} BEGIN "
            f"SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
        )


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    # Webhook secrets were written in clear: the entries keep that the secret changed only.
    if postgresql:
        op.execute("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only")
        for column in ("old_values", "new_values"):
            op.execute(
                f"UPDATE audit_entries SET {column} = jsonb_set({column}::jsonb, '{{secret}}', "
                f"'{REDACTED}')::json WHERE record_table = 'notification_channels' "
                f"AND {column}::jsonb ? 'secret'"
            )
        op.execute("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_entries_no_update")
        for column in ("old_values", "new_values"):
            op.execute(
                f"UPDATE audit_entries SET {column} = json_set({column}, '$.secret', "
                f"'[redacted]') WHERE record_table = 'notification_channels' "
                f"AND json_type({column}, '$.secret') IS NOT NULL"
            )

    with op.batch_alter_table("audit_entries") as batch:
        batch.add_column(
            sa.Column(
                "outside_application", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch.drop_column("prev_hash")
        batch.drop_column("hash")
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.drop_column("last_hash")
    op.create_table(
        "audit_seals",
        sa.Column("entry_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    if not postgresql:  # on PostgreSQL the seals' triggers come with the audit triggers
        _sqlite_append_only("audit_entries")
        _sqlite_append_only("audit_seals")


def downgrade() -> None:
    # The SHA-256 chain cannot be rebuilt from here: entries come back with empty hashes,
    # and the previous `verify-audit` reports them as broken until the trail is re-hashed.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DO $$ DECLARE t record; BEGIN FOR t IN SELECT c.relname, g.tgname FROM pg_trigger g "
            "JOIN pg_class c ON c.oid = g.tgrelid WHERE g.tgname IN "
            "('coldchain_audit', 'coldchain_audit_no_truncate') LOOP "
            "EXECUTE format('DROP TRIGGER %I ON %I', t.tgname, t.relname); END LOOP; END $$"
        )
    op.drop_table("audit_seals")
    with op.batch_alter_table("audit_chain_head") as batch:
        batch.add_column(
            sa.Column("last_hash", sa.String(length=64), nullable=False, server_default="0" * 64)
        )
    with op.batch_alter_table("audit_entries") as batch:
        batch.drop_column("outside_application")
        batch.add_column(
            sa.Column("prev_hash", sa.String(length=64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=False, server_default=""))
    if op.get_bind().dialect.name != "postgresql":
        _sqlite_append_only("audit_entries")
