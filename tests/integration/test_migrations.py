"""The migrations build exactly the schema the models describe, on one line of history."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from cloud.adapters.engine import normalise_url
from cloud.adapters.migrate import alembic_config
from cloud.adapters.orm import Base


def test_one_head():
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"open migration branches {heads}: add a merge revision"


def _differences(url: str) -> list[object]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_migrated_postgresql_matches_the_models(pg_url):
    assert _differences(pg_url) == []


def test_migrated_sqlite_matches_the_models(sqlite_url):
    assert _differences(sqlite_url) == []
