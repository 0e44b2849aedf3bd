"""The tables of the system of record, one module per aggregate, and their one metadata.

Importing this package registers every table with `Base.metadata` (Alembic's env.py and the
tests rely on it); a new table module adds one line here.
"""

from cloud.adapters.orm import accounts, alerting, audit, people, quality, readings, traceability
from cloud.adapters.orm.base import Base, UTCDateTime

__all__ = [
    "Base",
    "accounts",
    "UTCDateTime",
    "alerting",
    "audit",
    "people",
    "quality",
    "readings",
    "traceability",
]
