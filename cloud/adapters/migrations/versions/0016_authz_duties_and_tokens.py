"""segregation of duties and scoped tokens: users get a kind (person or machine) and a role
waiting for a second admin's confirmation; tokens get scopes, an expiry and their issuer;
the audit trail's actor (and a lifecycle step's) may name the token and its issuer

Tokens issued before this revision have no scope and no issuer: they open nothing and are
to be re-issued (to a machine user or to the admin themselves).

Revision ID: 0016_authz_duties_and_tokens
Revises: 0015_calibration_evidence
"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0016_authz_duties_and_tokens"
down_revision = "0015_calibration_evidence"
branch_labels = None
depends_on = None

ROLES = "('viewer', 'operator', 'qa', 'admin')"


def _users_upgrade_sqlite() -> None:
    # SQLite cannot rebuild users while other tables' rows reference it (foreign keys are
    # enforced), and a rebuild is what a foreign key or a CHECK added in a batch needs: the
    # columns are added in place (the reference inline, the CHECKs left to new databases),
    # and a downgrade leaves them, so only the missing ones are added.
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")}
    if "kind" not in present:
        op.add_column(
            "users", sa.Column("kind", sa.String(8), nullable=False, server_default="person")
        )
    if "pending_role" not in present:
        op.add_column("users", sa.Column("pending_role", sa.String(16), nullable=True))
    if "role_changed_by" not in present:
        op.execute("ALTER TABLE users ADD COLUMN role_changed_by INTEGER REFERENCES users (id)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _users_upgrade_sqlite()
    else:
        op.add_column(
            "users", sa.Column("kind", sa.String(8), nullable=False, server_default="person")
        )
        op.add_column("users", sa.Column("pending_role", sa.String(16), nullable=True))
        op.add_column(
            "users",
            sa.Column(
                "role_changed_by",
                sa.Integer(),
                sa.ForeignKey("users.id", name="users_role_changed_by_fkey"),
                nullable=True,
            ),
        )
        op.create_check_constraint("users_pending_role", "users", f"pending_role IN {ROLES}")
        op.create_check_constraint("users_kind", "users", "kind IN ('person', 'machine')")
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("scopes", sa.String(200), nullable=False, server_default=""))
        batch.add_column(
            sa.Column(
                "issued_by",
                sa.Integer(),
                sa.ForeignKey("users.id", name="api_tokens_issued_by_fkey"),
                nullable=True,
            )
        )
    tokens = sa.table(
        "api_tokens",
        sa.column("id", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    conn = op.get_bind()
    for token_id, created in conn.execute(sa.select(tokens.c.id, tokens.c.created_at)).all():
        conn.execute(
            tokens.update()
            .where(tokens.c.id == token_id)
            .values(expires_at=created + timedelta(days=90))
        )
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    _actor_length(200)


ACTORS = ("audit_entries", "transfer_states", "shipment_states")  # "<user> via token ..."


def _actor_length(length: int) -> None:
    # SQLite does not enforce a VARCHAR's length, and a batch rebuild of audit_entries would
    # drop its append-only triggers: only PostgreSQL's columns are altered.
    if op.get_bind().dialect.name == "postgresql":
        for table in ACTORS:
            op.alter_column(table, "actor", existing_type=sa.String(), type_=sa.String(length))


def downgrade() -> None:
    _actor_length(100)
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("issued_by")
        batch.drop_column("scopes")
        batch.drop_column("expires_at")
    if op.get_bind().dialect.name != "sqlite":  # SQLite keeps them: see above
        op.drop_constraint("users_kind", "users", type_="check")
        op.drop_constraint("users_pending_role", "users", type_="check")
        for column in ("role_changed_by", "pending_role", "kind"):
            op.drop_column("users", column)
