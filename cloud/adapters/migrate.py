"""Schema migrations with Alembic, runnable without an alembic.ini."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from cloud.adapters.engine import normalise_url


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "cloud.adapters:migrations")
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at `url` to `revision` (every head, if branches are open)."""
    command.upgrade(alembic_config(url), revision)
