"""Schema migrations with Alembic, runnable without an alembic.ini, and the audit trail's
triggers on every audited table (cloud.adapters.audit_database), made after them."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from cloud.adapters.audit_database import install_audit_triggers
from cloud.adapters.engine import make_engine, normalise_url


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "cloud.adapters:migrations")
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at `url` to `revision` (every head, if branches are open), then
    put the audit triggers on every audited table (PostgreSQL; checked only, for a user who
    does not own the schema)."""
    command.upgrade(alembic_config(url), revision)
    if revision not in ("head", "heads"):
        return  # an older schema: the triggers are made for the models of this version
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            install_audit_triggers(conn)
    finally:
        engine.dispose()
