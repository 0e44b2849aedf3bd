"""accounts: login sessions kept on the server, wrong passwords, lock-outs, forced password
changes, and alerts that name a user (an account locked)

Revision ID: 0016_accounts_sessions_lockout
Revises: 0015_calibration_evidence
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_accounts_sessions_lockout"
down_revision = "0015_calibration_evidence"
branch_labels = None
depends_on = None

BEFORE = ("excursion", "hold", "expiry", "recall", "gateway", "zone")
AFTER = (*BEFORE, "user")


def _kinds(kinds: tuple[str, ...]) -> str:
    return f"subject_kind IN ({', '.join(repr(k) for k in kinds)})"


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _user_id() -> sa.Column:
    return sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch.add_column(_time("password_changed_at"))
    op.create_table(
        "login_sessions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        _user_id(),
        sa.Column("app", sa.String(16), nullable=False),
        _time("started_at", nullable=False),
        _time("last_seen_at", nullable=False),
        _time("signed_at"),
        _time("ended_at"),
        sa.Column("end_reason", sa.String(40), nullable=True),
        sa.CheckConstraint("app IN ('api', 'control_room')", name="login_sessions_app"),
    )
    op.create_index("ix_login_sessions_user_id", "login_sessions", ["user_id"])
    op.create_table(
        "password_failures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _user_id(),
        _time("failed_at", nullable=False),
        sa.Column("used_for", sa.String(16), nullable=False),
        sa.Column("client", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "used_for IN ('login', 'signature', 'password_change')",
            name="password_failures_used_for",
        ),
    )
    op.create_index("password_failures_user_time", "password_failures", ["user_id", "failed_at"])
    op.create_table(
        "account_locks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _user_id(),
        _time("locked_at", nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _time("unlocked_at"),
        sa.Column("unlocked_by", sa.String(64), nullable=True),
        sa.Column("unlock_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_account_locks_user_id", "account_locks", ["user_id"])
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("alerts_subject_kind", type_="check")
        batch.create_check_constraint("alerts_subject_kind", sa.text(_kinds(AFTER)))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("alerts_subject_kind", type_="check")
        batch.create_check_constraint("alerts_subject_kind", sa.text(_kinds(BEFORE)))
    op.drop_table("account_locks")
    op.drop_table("password_failures")
    op.drop_table("login_sessions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_changed_at")
        batch.drop_column("must_change_password")
