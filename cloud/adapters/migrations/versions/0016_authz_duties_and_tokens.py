"""segregation of duties and scoped tokens: users get a kind (person or machine) and a role
waiting for a second admin's confirmation; tokens get scopes, an expiry and their issuer;
the audit trail's actor may name the token and its issuer

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


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default="person"))
        batch.add_column(sa.Column("pending_role", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column(
                "role_changed_by",
                sa.Integer(),
                sa.ForeignKey("users.id", name="users_role_changed_by_fkey"),
                nullable=True,
            )
        )
        batch.create_check_constraint("users_pending_role", f"pending_role IN {ROLES}")
        batch.create_check_constraint("users_kind", "kind IN ('person', 'machine')")
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


def _actor_length(length: int) -> None:
    # SQLite does not enforce a VARCHAR's length, and a batch rebuild of the table would drop
    # its append-only triggers: only PostgreSQL's column is altered.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "audit_entries", "actor", existing_type=sa.String(), type_=sa.String(length)
        )


def downgrade() -> None:
    _actor_length(100)
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("issued_by")
        batch.drop_column("scopes")
        batch.drop_column("expires_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("users_kind", type_="check")
        batch.drop_constraint("users_pending_role", type_="check")
        batch.drop_column("role_changed_by")
        batch.drop_column("pending_role")
        batch.drop_column("kind")
