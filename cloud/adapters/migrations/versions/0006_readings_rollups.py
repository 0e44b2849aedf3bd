"""reading rollups: one row per sensor, quantity and UTC hour, kept by ingest; no BRIN

Revision ID: 0006_readings_rollups
Revises: 0005_api_tokens
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_readings_rollups"
down_revision = "0005_api_tokens"
branch_labels = None
depends_on = None

# Readings stored before this revision are rolled up once, here; ingest keeps it from then on.
_OK = "CASE WHEN quality = 'ok' AND value IS NOT NULL THEN 1 ELSE 0 END"
_BACKFILL = """
INSERT INTO reading_rollups
    (sensor_id, quantity, bucket_start, n, sum, min, max, min_at, max_at, bad)
SELECT sensor_id, quantity, bucket,
    sum(ok), coalesce(sum(CASE WHEN ok = 1 THEN value END), 0),
    min(lo), max(hi),
    min(CASE WHEN ok = 1 AND value = lo THEN taken_at END),
    min(CASE WHEN ok = 1 AND value = hi THEN taken_at END),
    sum(1 - ok)
FROM (
    SELECT sensor_id, quantity, bucket, value, taken_at, ok,
        min(CASE WHEN ok = 1 THEN value END)
            OVER (PARTITION BY sensor_id, quantity, bucket) AS lo,
        max(CASE WHEN ok = 1 THEN value END)
            OVER (PARTITION BY sensor_id, quantity, bucket) AS hi
    FROM (
        SELECT sensor_id, quantity, value, taken_at, {bucket} AS bucket, {ok} AS ok
        FROM readings
    ) AS r
) AS w
GROUP BY sensor_id, quantity, bucket
"""
_BUCKET = {
    "postgresql": "date_trunc('hour', taken_at, 'UTC')",
    # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff' text (cloud.adapters.orm.base.UTCDateTime)
    "sqlite": "strftime('%Y-%m-%d %H:00:00.000000', taken_at)",
}


def upgrade() -> None:
    op.create_table(
        "reading_rollups",
        sa.Column("sensor_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.String(length=32), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("min", sa.Float(), nullable=True),
        sa.Column("max", sa.Float(), nullable=True),
        sa.Column("min_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bad", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sensor_id", "quantity", "bucket_start"),
    )
    dialect = op.get_bind().dialect.name
    op.execute(_BACKFILL.format(bucket=_BUCKET[dialect], ok=_OK))
    if dialect == "postgresql":
        # Every query of readings names the sensor (readings_sensor_time serves it) and long
        # ranges read the rollups; the BRIN index on taken_at served nothing and cost ingest
        # CPU on every row (a few per cent of the database's time per reading, README).
        op.execute("DROP INDEX IF EXISTS readings_taken_brin")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX IF NOT EXISTS readings_taken_brin ON readings USING brin (taken_at)"
        )
    op.drop_table("reading_rollups")
